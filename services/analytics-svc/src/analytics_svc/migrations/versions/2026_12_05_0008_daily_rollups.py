"""metric_rollups_daily (the hourly sums per UTC day, for long ranges) and the board's all-time
counters as rollup columns: linked, with_sla (issue 13)

Revision 0007 ships in the same release, so there are no rows to carry over.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05 12:00:00
"""
from alembic import op
import sqlalchemy as sa

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('metric_rollups_daily',
    sa.Column('dim', sa.Text(), nullable=False),
    sa.Column('bucket', sa.DateTime(timezone=True), nullable=False),
    sa.Column('dim_value', sa.Text(), nullable=False),
    sa.Column('created', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
    sa.Column('solved', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
    sa.Column('first_reply_n', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
    sa.Column('first_reply_sum', sa.Float(), server_default=sa.text('0'), nullable=False),
    sa.Column('first_reply_bsum', sa.Float(), server_default=sa.text('0'), nullable=False),
    sa.Column('first_reply_hist', sa.ARRAY(sa.Integer()), nullable=True),
    sa.Column('resolution_sum', sa.Float(), server_default=sa.text('0'), nullable=False),
    sa.Column('resolution_bsum', sa.Float(), server_default=sa.text('0'), nullable=False),
    sa.Column('resolution_hist', sa.ARRAY(sa.Integer()), nullable=True),
    sa.Column('requester_wait_sum', sa.Float(), server_default=sa.text('0'), nullable=False),
    sa.Column('requester_wait_bsum', sa.Float(), server_default=sa.text('0'), nullable=False),
    sa.Column('agent_wait_sum', sa.Float(), server_default=sa.text('0'), nullable=False),
    sa.Column('agent_wait_bsum', sa.Float(), server_default=sa.text('0'), nullable=False),
    sa.Column('on_hold_sum', sa.Float(), server_default=sa.text('0'), nullable=False),
    sa.Column('on_hold_bsum', sa.Float(), server_default=sa.text('0'), nullable=False),
    sa.Column('next_reply_n', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
    sa.Column('next_reply_sum', sa.Float(), server_default=sa.text('0'), nullable=False),
    sa.Column('next_reply_bsum', sa.Float(), server_default=sa.text('0'), nullable=False),
    sa.Column('reopens', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
    sa.Column('replies', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
    sa.Column('assignee_hops', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
    sa.Column('team_hops', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
    sa.Column('one_touch', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
    sa.Column('first_contact', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
    sa.Column('csat_n', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
    sa.Column('csat_satisfied', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
    sa.Column('csat_rating_sum', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
    sa.Column('nps_n', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
    sa.Column('nps_promoters', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
    sa.Column('nps_detractors', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
    sa.Column('sla_n', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
    sa.Column('sla_achieved', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
    sa.Column('delivery_failures', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
    sa.Column('deflections', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
    sa.Column('linked', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
    sa.Column('with_sla', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
    sa.PrimaryKeyConstraint('dim', 'bucket', 'dim_value', name=op.f('pk_metric_rollups_daily'))
    )
    op.add_column('metric_rollups', sa.Column('linked', sa.BigInteger(), server_default=sa.text('0'), nullable=False))
    op.add_column('metric_rollups', sa.Column('with_sla', sa.BigInteger(), server_default=sa.text('0'), nullable=False))


def downgrade() -> None:
    op.drop_column("metric_rollups", "with_sla")
    op.drop_column("metric_rollups", "linked")
    op.drop_table("metric_rollups_daily")
