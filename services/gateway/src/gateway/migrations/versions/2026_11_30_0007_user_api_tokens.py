"""per-user API tokens (random, SHA-256 at rest, acting as their user)

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 22:10:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('user_api_tokens',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('token_prefix', sa.Text(), nullable=False),
    sa.Column('token_hash', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_user_api_tokens_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_user_api_tokens')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_user_api_tokens_token_hash'))
    )
    op.create_index('ix_user_api_tokens_user_id', 'user_api_tokens', ['user_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_user_api_tokens_user_id', table_name='user_api_tokens')
    op.drop_table('user_api_tokens')
