"""Customer tier on tickets (from customer-svc's customer.updated) and a versioned tier projection

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 09:10:00
"""
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

UPGRADE = """
ALTER TABLE customer_tier_projection ADD COLUMN version integer NOT NULL DEFAULT 0;
ALTER TABLE tickets ADD COLUMN customer_tier text
"""

DOWNGRADE = """
ALTER TABLE tickets DROP COLUMN customer_tier;
ALTER TABLE customer_tier_projection DROP COLUMN version
"""


def _run(script: str) -> None:
    for statement in script.split(";"):
        if statement.strip():
            op.execute(statement)


def upgrade() -> None:
    _run(UPGRADE)


def downgrade() -> None:
    _run(DOWNGRADE)
