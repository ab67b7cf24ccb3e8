"""restricted_customers: customers whose data must not be processed while an erasure waits or a
data subject request is suspended (customer.restricted; docs/security.md "Erasure"). Deliveries
about their tickets stay queued until the restriction ends.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-09 09:00:00
"""
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE TABLE restricted_customers (customer_id uuid PRIMARY KEY, since timestamptz NOT NULL)")


def downgrade() -> None:
    op.execute("DROP TABLE restricted_customers")
