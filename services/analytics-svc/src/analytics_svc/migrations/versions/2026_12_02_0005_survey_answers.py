"""survey_answers: one row per answered survey, folded from survey.answered (issue 11)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 12:00:00
"""
from alembic import op
import sqlalchemy as sa

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # no comment column: counting needs the figure, not the customer's words (personal data)
    op.create_table(
        "survey_answers",
        sa.Column("survey_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("ticket_id", sa.Uuid(), nullable=True),
        sa.Column("rating", sa.SmallInteger(), nullable=True),
        sa.Column("score", sa.SmallInteger(), nullable=True),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ingested_at", sa.DateTime(timezone=True), server_default=sa.text("clock_timestamp()"),
                  nullable=False),
        sa.PrimaryKeyConstraint("survey_id", name=op.f("pk_survey_answers")),
    )
    op.create_index("ix_survey_answers_answered_at", "survey_answers", ["answered_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_survey_answers_answered_at", table_name="survey_answers")
    op.drop_table("survey_answers")
