"""outbox dead letters: attempts, last error and failed_at on outbox rows; the unsent index
narrowed to rows the relay may still publish (issue 9, High 2)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 09:00:00
"""
from alembic import op

from helpdesk_common.outbox import downgrade_outbox_dead_letters, upgrade_outbox_dead_letters

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    upgrade_outbox_dead_letters(op)


def downgrade() -> None:
    downgrade_outbox_dead_letters(op)
