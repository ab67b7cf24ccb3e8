"""The board's overdue and at-risk counts maintained by the fold: open_rollups.overdue_from /
at_risk_from (open tickets becoming overdue / at risk per UTC hour), ticket_metrics.sla_overdue_at /
sla_at_risk_at and their open-ticket partial indexes (issue 13)

Revision 0007 ships in the same release, so there are no rows to carry over.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 12:00:00
"""
from alembic import op
import sqlalchemy as sa

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_OPEN = sa.text('created_at IS NOT NULL AND NOT resolved AND NOT merged')


def upgrade() -> None:
    op.add_column('open_rollups', sa.Column('overdue_from', sa.BigInteger(), server_default=sa.text('0'),
                                            nullable=False))
    op.add_column('open_rollups', sa.Column('at_risk_from', sa.BigInteger(), server_default=sa.text('0'),
                                            nullable=False))
    op.add_column('ticket_metrics', sa.Column('sla_overdue_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('ticket_metrics', sa.Column('sla_at_risk_at', sa.DateTime(timezone=True), nullable=True))
    op.create_index('ix_ticket_metrics_open_overdue', 'ticket_metrics', ['sla_overdue_at'], unique=False,
                    postgresql_where=_OPEN, postgresql_include=['team_id', 'assignee_id'])
    op.create_index('ix_ticket_metrics_open_at_risk', 'ticket_metrics', ['sla_at_risk_at'], unique=False,
                    postgresql_where=_OPEN, postgresql_include=['team_id', 'assignee_id'])


def downgrade() -> None:
    op.drop_index('ix_ticket_metrics_open_at_risk', table_name='ticket_metrics', postgresql_where=_OPEN)
    op.drop_index('ix_ticket_metrics_open_overdue', table_name='ticket_metrics', postgresql_where=_OPEN)
    op.drop_column('ticket_metrics', 'sla_at_risk_at')
    op.drop_column('ticket_metrics', 'sla_overdue_at')
    op.drop_column('open_rollups', 'at_risk_from')
    op.drop_column('open_rollups', 'overdue_from')
