"""deliveries and their attempt log

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30 02:50:00
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'deliveries',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('kind', sa.Text(), nullable=False),
        sa.Column('channel', sa.Text(), nullable=False),
        sa.Column('destination', sa.Text(), nullable=False),
        sa.Column('ticket_id', sa.Uuid(), nullable=True),
        sa.Column('message_id', sa.Uuid(), nullable=True),
        sa.Column('subscription_id', sa.Uuid(), nullable=True),
        sa.Column('event_id', sa.Uuid(), nullable=True),
        sa.Column('dedupe_key', sa.Text(), nullable=False),
        sa.Column('payload', pg.JSONB(), nullable=False),
        sa.Column('status', sa.Text(), server_default='queued', nullable=False),
        sa.Column('attempts', sa.Integer(), server_default='0', nullable=False),
        sa.Column('max_attempts', sa.Integer(), nullable=False),
        sa.Column('next_attempt_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.Column('lease_until', sa.DateTime(timezone=True), nullable=True),
        sa.Column('reason', sa.Text(), nullable=True),
        sa.Column('last_code', sa.Text(), nullable=True),
        sa.Column('provider_id', sa.Text(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("kind IN ('reply', 'notification', 'webhook')", name=op.f('ck_deliveries_kind')),
        sa.CheckConstraint("status IN ('queued', 'sending', 'sent', 'failed', 'undeliverable')",
                           name=op.f('ck_deliveries_status')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_deliveries')),
    )
    op.create_index('uq_deliveries_dedupe_key', 'deliveries', ['dedupe_key'], unique=True)
    op.create_index('ix_deliveries_due', 'deliveries', ['next_attempt_at'],
                    postgresql_where=sa.text("status IN ('queued', 'sending')"))
    op.create_index('ix_deliveries_created', 'deliveries', ['created_at', 'id'])
    op.create_index('ix_deliveries_ticket', 'deliveries', ['ticket_id', 'created_at'],
                    postgresql_where=sa.text('ticket_id IS NOT NULL'))
    op.create_table(
        'delivery_attempts',
        sa.Column('delivery_id', sa.Uuid(), nullable=False),
        sa.Column('number', sa.Integer(), nullable=False),
        sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('duration_ms', sa.Float(), nullable=False),
        sa.Column('outcome', sa.Text(), nullable=False),
        sa.Column('code', sa.Text(), nullable=True),
        sa.Column('error', sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(['delivery_id'], ['deliveries.id'], ondelete='CASCADE',
                                name=op.f('fk_delivery_attempts_delivery_id_deliveries')),
        sa.PrimaryKeyConstraint('delivery_id', 'number', name=op.f('pk_delivery_attempts')),
    )


def downgrade() -> None:
    op.drop_table('delivery_attempts')
    op.drop_index('ix_deliveries_ticket', table_name='deliveries')
    op.drop_index('ix_deliveries_created', table_name='deliveries')
    op.drop_index('ix_deliveries_due', table_name='deliveries')
    op.drop_index('uq_deliveries_dedupe_key', table_name='deliveries')
    op.drop_table('deliveries')
