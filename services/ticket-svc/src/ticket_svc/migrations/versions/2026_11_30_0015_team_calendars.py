"""team calendars: ticket-svc's projection of sla-svc's business calendars (issue 12)

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-30 12:00:00

- ``team_calendars``: one row per team with a calendar event from sla-svc, plus the row
  ``team_key = 'default'`` (``team_id`` null) for the default calendar. Fed only by
  ``sla.team_calendar_changed``; time-based automations that count business hours read it
  (``ticket_svc.sla.calendars.business_time_fn``), so ticket-svc never calls sla-svc.
- ``calendar`` null keeps the row of a team whose own calendar was cleared (the default then
  applies): deleting it would let an older, redelivered event bring the old calendar back,
  since ``version`` (which only grows) is what decides which event is the newest.
"""
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
CREATE TABLE team_calendars (
    team_key text PRIMARY KEY,
    team_id uuid,
    calendar_id uuid,
    calendar jsonb,
    version bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT team_calendars_key CHECK (
        (team_id IS NULL AND team_key = 'default') OR (team_id IS NOT NULL AND team_key = team_id::text))
)""")


def downgrade() -> None:
    op.execute("DROP TABLE team_calendars")
