"""customer tier: the commercial level (vip, gold, ...) that routing rules and SLA policies match

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 09:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('customers', sa.Column('tier', sa.Text(), nullable=True))
    op.create_index('ix_customers_tier_created_at_id', 'customers',
                    ['tier', sa.text('created_at DESC'), sa.text('id DESC')],
                    postgresql_where=sa.text('tier IS NOT NULL'))


def downgrade() -> None:
    op.drop_index('ix_customers_tier_created_at_id', table_name='customers')
    op.drop_column('customers', 'tier')
