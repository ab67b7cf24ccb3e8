"""Soft-deleted tickets leave the customer's 360 (docs/customers.md)

- ``customer_tickets.deleted_at``: set by a ``ticket.status_changed`` with reason ``deleted``,
  cleared by its restore. The 360's figures, its ticket lists and the scores leave such a ticket
  out, as they leave out a merged one; the timeline keeps a "deleted" and a "restored" entry.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-14 09:00:00
"""
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE customer_tickets ADD COLUMN deleted_at timestamptz NULL")


def downgrade() -> None:
    op.execute("ALTER TABLE customer_tickets DROP COLUMN deleted_at")
