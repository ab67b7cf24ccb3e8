"""live stream: stream_events and the consumer inbox

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 09:00:00
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('inbox',
    sa.Column('consumer', sa.Text(), nullable=False),
    sa.Column('event_id', sa.Uuid(), nullable=False),
    sa.Column('event_type', sa.Text(), nullable=False),
    sa.Column('processed_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('consumer', 'event_id', name=op.f('pk_inbox'))
    )
    op.create_table('stream_events',
    sa.Column('seq', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('event_id', sa.Uuid(), nullable=False),
    sa.Column('type', sa.Text(), nullable=False),
    sa.Column('ticket_id', sa.Uuid(), nullable=False),
    sa.Column('team_id', sa.Uuid(), nullable=True),
    sa.Column('assignee_id', sa.Text(), nullable=True),
    sa.Column('previous_team_id', sa.Uuid(), nullable=True),
    sa.Column('previous_assignee_id', sa.Text(), nullable=True),
    sa.Column('payload', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('seq', name=op.f('pk_stream_events')),
    sa.UniqueConstraint('event_id', name=op.f('uq_stream_events_event_id'))
    )
    op.create_index('ix_stream_events_created_at', 'stream_events', ['created_at'], unique=False)
    # the inbox is pruned by age too (stream/service.py), so it needs the same index
    op.create_index('ix_inbox_processed_at', 'inbox', ['processed_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_inbox_processed_at', table_name='inbox')
    op.drop_index('ix_stream_events_created_at', table_name='stream_events')
    op.drop_table('stream_events')
    op.drop_table('inbox')
