"""open_rollups (the open backlog per dimension value and UTC hour of creation, maintained by the
fold) and a partial index of the open tickets' created_at, for the board's live counts (issue 13)

Revision 0007 ships in the same release, so there are no rows to carry over.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 12:00:00
"""
from alembic import op
import sqlalchemy as sa

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('open_rollups',
    sa.Column('dim', sa.Text(), nullable=False),
    sa.Column('bucket', sa.DateTime(timezone=True), nullable=False),
    sa.Column('dim_value', sa.Text(), nullable=False),
    sa.Column('open', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
    sa.Column('unassigned', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
    sa.PrimaryKeyConstraint('dim', 'bucket', 'dim_value', name=op.f('pk_open_rollups'))
    )
    op.create_index('ix_ticket_metrics_open_created', 'ticket_metrics', ['created_at'], unique=False,
                    postgresql_where=sa.text('created_at IS NOT NULL AND NOT resolved AND NOT merged'),
                    postgresql_include=['team_id', 'assignee_id'])


def downgrade() -> None:
    op.drop_index('ix_ticket_metrics_open_created', table_name='ticket_metrics',
                  postgresql_where=sa.text('created_at IS NOT NULL AND NOT resolved AND NOT merged'))
    op.drop_table("open_rollups")
