"""Zendesk-compatible integer ids (issue 18)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 03:30:00

One row per (kind, native id) the ``/api/v2`` surface has shown or been given; the id is what
Zendesk clients see. It holds no personal data (only the owning services' ids), so erasure has
nothing to scrub here.
"""
from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('zendesk_ids',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=True), nullable=False),
    sa.Column('kind', sa.Text(), nullable=False),
    sa.Column('native', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_zendesk_ids')),
    sa.UniqueConstraint('kind', 'native', name='uq_zendesk_ids_kind_native')
    )


def downgrade() -> None:
    op.drop_table('zendesk_ids')
