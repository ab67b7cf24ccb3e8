"""kb_suggestion_outcomes: the last outcome of each knowledge-base suggestion, so the fold can
count deflections once and move one when kb-svc corrects an outcome (issue 14)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-08 18:00:00
"""
from alembic import op
import sqlalchemy as sa

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "kb_suggestion_outcomes",
        sa.Column("suggestion_id", sa.Uuid(), nullable=False),
        sa.Column("deflected", sa.Boolean(), nullable=False),
        sa.Column("channel", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("suggestion_id", name=op.f("pk_kb_suggestion_outcomes")),
    )


def downgrade() -> None:
    op.drop_table("kb_suggestion_outcomes")
