"""Triggers and time-based automations: the pure core.

Triggers are ordered event-condition-action rules run when a ticket is created or updated;
automations are rules whose conditions include "hours since ..." and that a scheduler fires at
the second their conditions become true, once per condition episode. Everything in this
package is plain functions over plain values (no I/O), so the write path can run triggers
inside its transaction and the scheduler can compute due times without a database:

* ``conditions`` - routing's condition language, extended with the fields an update has
  (status, assignee, team, the process step, the update itself) and change operators;
* ``actions`` - actions as data: validation, and ``apply_actions`` returning field changes and
  side effects (notes, notifications, webhooks, process starts) for the caller to carry out;
* ``triggers`` - the trigger rule schema and the loop-safe evaluation;
* ``schedule`` - the automation schema, ``due_at`` and ``episode_key``;
* ``dry_run`` - what would fire on a ticket, and when, with the reasons.

Model and examples: docs/workflow.md, "Triggers" and "Automations".
"""
