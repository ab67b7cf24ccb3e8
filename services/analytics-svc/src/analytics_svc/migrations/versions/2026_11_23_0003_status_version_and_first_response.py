"""status follows ticket.status_changed (newest version wins); first response time

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 02:40:00
"""
from alembic import op
import sqlalchemy as sa

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("ticket_facts", sa.Column("status_version", sa.Integer(), nullable=True))
    op.add_column("ticket_facts", sa.Column("first_response_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column("ticket_facts", "first_response_at")
    op.drop_column("ticket_facts", "status_version")
