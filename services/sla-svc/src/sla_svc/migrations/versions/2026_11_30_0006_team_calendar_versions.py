"""team calendar versions: the growing version of each team's (and the default's)
``sla.team_calendar_changed`` event; where a timer's target came from (issue 12)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 12:00:00

One counter per team that ever had a calendar (kept after the team's calendar is removed, so
the "cleared" event is newer than every earlier one) and a ``default`` row once any calendar
exists. Bumping it row-locks the team, which orders concurrent changes of one team; the
start-up republish reads it without bumping, so republishing is idempotent for consumers.
Existing team calendars start at version 1.

``sla_timers.target_from``: ``policy`` (the ticket's policy names the metric) or ``step`` (a
workflow step's own ``target_minutes`` from its process definition, carried by
``ticket.step_started``), so a re-target keeps a step's own target instead of cancelling the
timer for want of a policy target.
"""
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
CREATE TABLE team_calendar_versions (
    team_key text NOT NULL,
    version bigint NOT NULL DEFAULT 1,
    CONSTRAINT pk_team_calendar_versions PRIMARY KEY (team_key)
)""")
    op.execute("INSERT INTO team_calendar_versions (team_key) SELECT team_id::text FROM team_calendars")
    op.execute("INSERT INTO team_calendar_versions (team_key) SELECT 'default' WHERE EXISTS (SELECT 1 FROM calendars)")
    op.execute("ALTER TABLE sla_timers ADD COLUMN target_from text NOT NULL DEFAULT 'policy'")


def downgrade() -> None:
    op.execute("ALTER TABLE sla_timers DROP COLUMN target_from")
    op.execute("DROP TABLE team_calendar_versions")
