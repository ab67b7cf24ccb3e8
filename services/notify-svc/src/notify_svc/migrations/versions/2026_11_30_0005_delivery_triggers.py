"""deliveries: what asked for each attempt (the schedule, a manual retry, a webhook replay), the
number of replays, and the per-subscription delivery log's index

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 05:30:00
"""
from alembic import op
import sqlalchemy as sa

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

_TRIGGERS = "IN ('schedule', 'retry', 'replay')"


def upgrade() -> None:
    op.add_column('deliveries', sa.Column('next_trigger', sa.Text(), server_default='schedule', nullable=False))
    op.add_column('deliveries', sa.Column('replays', sa.Integer(), server_default='0', nullable=False))
    op.create_check_constraint(op.f('ck_deliveries_next_trigger'), 'deliveries', f'next_trigger {_TRIGGERS}')
    op.add_column('delivery_attempts', sa.Column('trigger', sa.Text(), server_default='schedule', nullable=False))
    op.create_check_constraint(op.f('ck_delivery_attempts_trigger'), 'delivery_attempts', f'trigger {_TRIGGERS}')
    op.create_index('ix_deliveries_subscription', 'deliveries', ['subscription_id', 'created_at', 'id'],
                    postgresql_where=sa.text('subscription_id IS NOT NULL'))


def downgrade() -> None:
    op.drop_index('ix_deliveries_subscription', table_name='deliveries')
    op.drop_constraint(op.f('ck_delivery_attempts_trigger'), 'delivery_attempts', type_='check')
    op.drop_column('delivery_attempts', 'trigger')
    op.drop_constraint(op.f('ck_deliveries_next_trigger'), 'deliveries', type_='check')
    op.drop_column('deliveries', 'replays')
    op.drop_column('deliveries', 'next_trigger')
