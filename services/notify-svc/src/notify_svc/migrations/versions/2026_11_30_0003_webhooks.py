"""webhook subscriptions (secrets encrypted at rest) and their create idempotency keys

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30 03:00:00
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'webhook_subscriptions',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('url', sa.Text(), nullable=False),
        sa.Column('event_types', pg.ARRAY(sa.Text()), nullable=False),
        sa.Column('description', sa.Text(), server_default='', nullable=False),
        sa.Column('enabled', sa.Boolean(), server_default='true', nullable=False),
        sa.Column('disabled_reason', sa.Text(), nullable=True),
        sa.Column('secret_encrypted', sa.LargeBinary(), nullable=False),
        sa.Column('previous_secret_encrypted', sa.LargeBinary(), nullable=True),
        sa.Column('previous_secret_expires_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('failing_since', sa.DateTime(timezone=True), nullable=True),
        sa.Column('created_by', sa.Text(), nullable=False),
        sa.Column('version', sa.Integer(), server_default='1', nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_subscriptions')),
    )
    op.create_index('ix_webhook_subscriptions_created', 'webhook_subscriptions', ['created_at', 'id'])
    op.create_index('ix_webhook_subscriptions_event_types', 'webhook_subscriptions', ['event_types'],
                    postgresql_using='gin', postgresql_where=sa.text('enabled'))
    op.create_table(
        'webhook_idempotency_keys',
        sa.Column('caller', sa.Text(), nullable=False),
        sa.Column('key', sa.Text(), nullable=False),
        sa.Column('request_hash', sa.Text(), nullable=False),
        sa.Column('subscription_id', sa.Uuid(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.PrimaryKeyConstraint('caller', 'key', name=op.f('pk_webhook_idempotency_keys')),
    )


def downgrade() -> None:
    op.drop_table('webhook_idempotency_keys')
    op.drop_index('ix_webhook_subscriptions_event_types', table_name='webhook_subscriptions')
    op.drop_index('ix_webhook_subscriptions_created', table_name='webhook_subscriptions')
    op.drop_table('webhook_subscriptions')
