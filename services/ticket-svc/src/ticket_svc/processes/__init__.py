"""Service processes: approval, countersign, customer-confirmation and task steps on a ticket.

``machine`` is the pure step machine (a decision in, a new step state and an outcome out;
a finished step's outcome in, the next step out), so decisions can be taken inside the
transaction that locks the step and tested without a database. Definitions, storage, the
decision API, triggers and automations build on it. Model and worked examples:
docs/workflow.md.
"""
