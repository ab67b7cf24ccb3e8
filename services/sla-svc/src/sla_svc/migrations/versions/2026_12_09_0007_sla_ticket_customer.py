"""sla_tickets.customer_id: the ticket's customer from ticket.created, so that an erasure can find
the person's tickets and redact their free-text custom-field values (docs/security.md "Erasure").

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-09 09:00:00
"""
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE sla_tickets ADD COLUMN customer_id uuid NULL")
    op.execute("CREATE INDEX ix_sla_tickets_customer ON sla_tickets (customer_id) WHERE customer_id IS NOT NULL")


def downgrade() -> None:
    op.execute("DROP INDEX ix_sla_tickets_customer")
    op.execute("ALTER TABLE sla_tickets DROP COLUMN customer_id")
