"""soft-deleted tickets (issue 18: Zendesk's DELETE /api/v2/tickets/{id}.json)

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-13 10:00:00

- ``tickets.deleted_at`` / ``deleted_by``: a deleted ticket is closed and hidden from every read,
  list, search and view, and kept (with its messages) until it is restored or erased;
- ``tickets.status_before_delete``: the status a restore gives back;
- a partial index on the deleted ones, newest first (the deleted tickets' list), which costs
  nothing for the others.
"""
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
        ALTER TABLE tickets
          ADD COLUMN deleted_at timestamptz,
          ADD COLUMN deleted_by text,
          ADD COLUMN status_before_delete text
    """)
    op.execute("CREATE INDEX ix_tickets_deleted ON tickets (deleted_at DESC, id DESC) WHERE deleted_at IS NOT NULL")


def downgrade() -> None:
    op.execute("DROP INDEX ix_tickets_deleted")
    op.execute("ALTER TABLE tickets DROP COLUMN deleted_at, DROP COLUMN deleted_by, DROP COLUMN status_before_delete")
