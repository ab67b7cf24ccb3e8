"""step_runs and step_decisions: process steps folded from ticket.step_started / step_completed /
approval_decided; ticket_facts.ticket_type (issue 12)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 12:00:00
"""
from alembic import op
import sqlalchemy as sa

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("ticket_facts", sa.Column("ticket_type", sa.Text(), nullable=True))
    op.create_table(
        "step_runs",
        sa.Column("step_id", sa.Uuid(), nullable=False),
        sa.Column("ticket_id", sa.Uuid(), nullable=False),
        sa.Column("step", sa.Text(), nullable=True),
        sa.Column("kind", sa.Text(), nullable=True),
        sa.Column("ticket_type", sa.Text(), nullable=True),
        sa.Column("process_version", sa.Integer(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.Text(), nullable=True),
        sa.Column("rejected", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("duration_s", sa.Float(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("clock_timestamp()"),
                  nullable=False),
        sa.PrimaryKeyConstraint("step_id", name=op.f("pk_step_runs")),
    )
    op.create_index("ix_step_runs_step_started", "step_runs", ["step", "started_at"], unique=False)
    op.create_index("ix_step_runs_open", "step_runs", ["step"], unique=False,
                    postgresql_where=sa.text("completed_at IS NULL"))
    op.create_table(
        "step_decisions",
        sa.Column("step_id", sa.Uuid(), nullable=False),
        sa.Column("decided_by", sa.Text(), nullable=False),
        sa.Column("decision", sa.Text(), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("step_id", "decided_by", name=op.f("pk_step_decisions")),
    )


def downgrade() -> None:
    op.drop_table("step_decisions")
    op.drop_index("ix_step_runs_open", table_name="step_runs")
    op.drop_index("ix_step_runs_step_started", table_name="step_runs")
    op.drop_table("step_runs")
    op.drop_column("ticket_facts", "ticket_type")
