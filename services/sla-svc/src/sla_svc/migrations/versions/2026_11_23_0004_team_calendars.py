"""team calendars: the business calendar of a team's tickets when a target names none

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 10:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'team_calendars',
        sa.Column('team_id', sa.Uuid(), nullable=False),
        sa.Column('calendar_id', sa.Uuid(), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.ForeignKeyConstraint(['calendar_id'], ['calendars.id'], name=op.f('fk_team_calendars_calendar_id_calendars')),
        sa.PrimaryKeyConstraint('team_id', name=op.f('pk_team_calendars')),
    )


def downgrade() -> None:
    op.drop_table('team_calendars')
