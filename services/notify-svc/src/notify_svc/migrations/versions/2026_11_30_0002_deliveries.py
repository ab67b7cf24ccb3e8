"""deliveries (placeholder: the deliveries table's migration is being written separately)

This file only keeps the revision chain whole (0001 -> 0002 -> 0003) until the real 0002
replaces it; it creates nothing.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30 02:50:00
"""

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
