"""SLA projection: per-metric state from sla-svc events, and the ticket's colour

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 02:50:00
"""
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

UPGRADE = """
CREATE TABLE sla_projection (
    ticket_id uuid NOT NULL,
    metric text NOT NULL,
    state text NOT NULL,
    due_at timestamptz,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (ticket_id, metric)
);
ALTER TABLE tickets ADD COLUMN sla_state text, ADD COLUMN sla_due_at timestamptz;
CREATE INDEX ix_tickets_sla_state ON tickets (sla_state, created_at DESC, id DESC) WHERE sla_state IS NOT NULL
"""

DOWNGRADE = """
DROP INDEX ix_tickets_sla_state;
ALTER TABLE tickets DROP COLUMN sla_state, DROP COLUMN sla_due_at;
DROP TABLE sla_projection
"""


def _run(script: str) -> None:
    for statement in script.split(";"):
        if statement.strip():
            op.execute(statement)


def upgrade() -> None:
    _run(UPGRADE)


def downgrade() -> None:
    _run(DOWNGRADE)
