"""ticket timers: one row per (kind, ticket, ref, episode), fired exactly once (issue 12)

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30 11:45:00

- ``ticket_timers``: what ticket-svc must do to a ticket at a given instant — a process step's
  deadline (kind ``step_deadline``, ref the step id), a time-based automation (kind
  ``automation``, ref the automation id, episode the anchors the automation counts from). The
  row stays after it fires (``fired_at`` set): that is what makes a timer fire once per
  episode, because scheduling a fired (kind, ticket, ref, episode) again changes nothing.
  ``attempts`` and ``last_error`` record a failing handler; ``due_at`` is then pushed back.
- The partial index on ``due_at`` holds only unfired rows, so the scheduler's "what is due
  next" stays one index probe however many timers have fired; the one on (kind, ref) lets a
  deleted automation's pending timers be dropped without scanning every ticket.
"""
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
CREATE TABLE ticket_timers (
    id bigserial PRIMARY KEY,
    kind text NOT NULL,
    ticket_id uuid NOT NULL,
    ref text NOT NULL,
    episode text NOT NULL DEFAULT '',
    due_at timestamptz NOT NULL,
    fired_at timestamptz,
    attempts integer NOT NULL DEFAULT 0,
    last_error text,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT ticket_timers_once UNIQUE (kind, ticket_id, ref, episode)
)""")
    op.execute("CREATE INDEX ticket_timers_due ON ticket_timers (due_at) WHERE fired_at IS NULL")
    op.execute("CREATE INDEX ticket_timers_pending_ref ON ticket_timers (kind, ref) WHERE fired_at IS NULL")


def downgrade() -> None:
    op.execute("DROP TABLE ticket_timers")
