"""running processes: the process a ticket runs and each run of each of its steps (issue 12)

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-30 11:45:00

- ``ticket_processes``: one row per process a ticket ran. At most one is ``running`` per ticket
  (partial unique index: two concurrent starts cannot both win). ``version`` is the definition
  version the ticket started with and keeps following, whatever admins save later.
  ``current_step_id`` points at the step running now, so the ticket read and the
  ``before_change`` hook find it with one primary-key lookup. ``flagged``: a rejection said
  ``continue_flagged``.
- ``ticket_steps``: one row per run of a step (``return_to`` and a customer's ``reopen`` run a
  step again: a new row, a new ``id``, which is the ``step_id`` of the events and sla-svc's
  per-step timer). Skipped steps get a row too (status ``skipped``), so the history says why a
  step never ran. ``approvers`` / ``parties`` are the user ids resolved when the step started
  (a team that changes later does not change who decides a running step); ``settings`` is the
  definition's step as stored; ``state`` is ``machine.state_to_json``. ``waiting_for`` (who may
  decide now and has not) and ``decided_by`` are kept with each decision so the approvals queue
  is one GIN index lookup instead of a scan of every active step's JSON.
"""
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
CREATE TABLE ticket_processes (
    id uuid PRIMARY KEY,
    ticket_id uuid NOT NULL REFERENCES tickets (id),
    ticket_type text NOT NULL,
    version integer NOT NULL CHECK (version >= 1),
    state text NOT NULL CHECK (state IN ('running', 'finished', 'closed', 'reopened', 'cancelled')),
    flagged boolean NOT NULL DEFAULT false,
    current_step_id uuid,
    started_by text NOT NULL,
    started_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    CHECK ((state = 'running') = (finished_at IS NULL))
)""")
    op.execute("CREATE UNIQUE INDEX ux_ticket_processes_running ON ticket_processes (ticket_id) WHERE state = 'running'")
    op.execute("CREATE INDEX ix_ticket_processes_ticket ON ticket_processes (ticket_id, started_at DESC)")
    op.execute("""
CREATE TABLE ticket_steps (
    id uuid PRIMARY KEY,
    process_id uuid NOT NULL REFERENCES ticket_processes (id),
    ticket_id uuid NOT NULL REFERENCES tickets (id),
    position integer NOT NULL CHECK (position >= 0),
    key text NOT NULL,
    kind text NOT NULL CHECK (kind IN ('approval', 'countersign', 'customer_confirmation', 'task')),
    name text NOT NULL,
    status text NOT NULL CHECK (status IN ('pending', 'active', 'completed', 'rejected', 'expired', 'skipped',
                                           'cancelled')),
    outcome text,
    approvers text[] NOT NULL DEFAULT '{}',
    parties jsonb NOT NULL DEFAULT '[]'::jsonb,
    settings jsonb NOT NULL,
    state jsonb,
    waiting_for text[] NOT NULL DEFAULT '{}',
    decided_by text[] NOT NULL DEFAULT '{}',
    target_minutes integer,
    deadline timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    started_at timestamptz,
    finished_at timestamptz
)""")
    op.execute("CREATE UNIQUE INDEX ux_ticket_steps_active ON ticket_steps (ticket_id) WHERE status = 'active'")
    op.execute("CREATE INDEX ix_ticket_steps_process ON ticket_steps (process_id, created_at, position)")
    op.execute("CREATE INDEX ix_ticket_steps_waiting ON ticket_steps USING gin (waiting_for) WHERE status = 'active'")
    op.execute("CREATE INDEX ix_ticket_steps_decided ON ticket_steps USING gin (decided_by)")


def downgrade() -> None:
    op.execute("DROP TABLE ticket_steps")
    op.execute("DROP TABLE ticket_processes")
