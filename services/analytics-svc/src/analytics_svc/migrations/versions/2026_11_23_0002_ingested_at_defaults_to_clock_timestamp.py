"""ingested_at defaults to clock_timestamp

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 00:09:32.084357
"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # clock_timestamp(), not now(): the fold time inside a long consumer transaction, so that
    # ingested_at - created_at measures propagation lag (autogenerate does not compare defaults)
    op.alter_column("ticket_facts", "ingested_at", server_default=sa.text("clock_timestamp()"))


def downgrade() -> None:
    op.alter_column("ticket_facts", "ingested_at", server_default=None)
