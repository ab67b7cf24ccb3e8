"""automation planning: what the pending automation timers were last planned under (issue 12)

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-30 12:20:00

- ``automation_planning``: at most one row, the fingerprint of the automations (id, version,
  active) and team calendars (key, version) that the last complete re-planning sweep planned
  every open ticket under. A replica starting (or reconnecting its LISTEN connection) sweeps
  only when the current fingerprint differs, so a restart of a deployment with many open tickets
  does not re-plan every one of them for nothing; a replica hearing a change stops its own sweep
  once another replica has finished one under the same fingerprint.
"""
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
CREATE TABLE automation_planning (
    id smallint PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    fingerprint text NOT NULL,
    planned_at timestamptz NOT NULL DEFAULT now()
)""")


def downgrade() -> None:
    op.execute("DROP TABLE automation_planning")
