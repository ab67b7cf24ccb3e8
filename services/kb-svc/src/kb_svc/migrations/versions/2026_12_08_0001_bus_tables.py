"""bus tables: the outbox and the inbox, by the one DDL every service shares

Revision ID: 0001
Revises:
Create Date: 2026-12-08 12:00:00
"""
from alembic import op

from helpdesk_common.consumer import create_inbox_table
from helpdesk_common.outbox import create_outbox_table, drop_outbox_table

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_inbox_table(op)
    create_outbox_table(op)


def downgrade() -> None:
    drop_outbox_table(op)
    op.drop_table("inbox")
