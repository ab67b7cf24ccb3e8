"""The metric read model: ticket_history, ticket_metrics, metric_rollups, sla_rollups, sla_targets,
business_calendars, customer_dims, delivery_failures, and hist_add() for the histogram columns
(issue 13)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 12:00:00
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# element-wise sum of two histograms (a missing or shorter one counts as zeros): the rollup
# upsert adds a ticket's +1/-1 bins to the stored counts in one statement
HIST_ADD = """
CREATE FUNCTION hist_add(a integer[], b integer[]) RETURNS integer[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN a IS NULL THEN b WHEN b IS NULL THEN a ELSE
    ARRAY(SELECT coalesce(x, 0) + coalesce(y, 0) FROM unnest(a, b) WITH ORDINALITY AS u(x, y, i) ORDER BY i)
  END
$$
"""


def upgrade() -> None:
    op.create_table('business_calendars',
    sa.Column('team_key', sa.Text(), nullable=False),
    sa.Column('calendar_id', sa.Uuid(), nullable=True),
    sa.Column('calendar', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('version', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('team_key', name=op.f('pk_business_calendars'))
    )
    op.create_table('customer_dims',
    sa.Column('customer_id', sa.Uuid(), nullable=False),
    sa.Column('tier', sa.Text(), nullable=True),
    sa.Column('organization_id', sa.Uuid(), nullable=True),
    sa.Column('event_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('customer_id', name=op.f('pk_customer_dims'))
    )
    op.create_table('delivery_failures',
    sa.Column('delivery_id', sa.Uuid(), nullable=False),
    sa.Column('ticket_id', sa.Uuid(), nullable=True),
    sa.Column('channel', sa.Text(), nullable=False),
    sa.Column('kind', sa.Text(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('delivery_id', name=op.f('pk_delivery_failures'))
    )
    op.create_table('metric_rollups',
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
    sa.PrimaryKeyConstraint('dim', 'bucket', 'dim_value', name=op.f('pk_metric_rollups'))
    )
    op.create_table('sla_rollups',
    sa.Column('dim', sa.Text(), nullable=False),
    sa.Column('bucket', sa.DateTime(timezone=True), nullable=False),
    sa.Column('dim_value', sa.Text(), nullable=False),
    sa.Column('policy', sa.Text(), nullable=False),
    sa.Column('metric', sa.Text(), nullable=False),
    sa.Column('achieved', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
    sa.Column('breached', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
    sa.PrimaryKeyConstraint('dim', 'bucket', 'dim_value', 'policy', 'metric', name=op.f('pk_sla_rollups'))
    )
    op.create_table('sla_targets',
    sa.Column('ticket_id', sa.Uuid(), nullable=False),
    sa.Column('metric', sa.Text(), nullable=False),
    sa.Column('policy', sa.Text(), nullable=True),
    sa.Column('target_minutes', sa.Integer(), nullable=True),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('state', sa.Text(), nullable=False),
    sa.Column('colour', sa.Text(), server_default=sa.text("'green'"), nullable=False),
    sa.Column('event_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('ticket_id', 'metric', name=op.f('pk_sla_targets'))
    )
    op.create_index('ix_sla_targets_running_due', 'sla_targets', ['due_at'], unique=False, postgresql_where=sa.text("state = 'running'"))
    op.create_table('ticket_history',
    sa.Column('ticket_id', sa.Uuid(), nullable=False),
    sa.Column('fact_key', sa.Text(), nullable=False),
    sa.Column('kind', sa.Text(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('body', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.PrimaryKeyConstraint('ticket_id', 'fact_key', name=op.f('pk_ticket_history'))
    )
    op.create_table('ticket_metrics',
    sa.Column('ticket_id', sa.Uuid(), nullable=False),
    sa.Column('number', sa.BigInteger(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('status', sa.Text(), nullable=True),
    sa.Column('first_reply_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('team_id', sa.Uuid(), nullable=True),
    sa.Column('assignee_id', sa.Text(), nullable=True),
    sa.Column('channel', sa.Text(), nullable=True),
    sa.Column('ticket_type', sa.Text(), nullable=True),
    sa.Column('priority', sa.Text(), nullable=True),
    sa.Column('customer_id', sa.Uuid(), nullable=True),
    sa.Column('customer_tier', sa.Text(), nullable=True),
    sa.Column('organization_id', sa.Uuid(), nullable=True),
    sa.Column('brand', sa.Text(), nullable=True),
    sa.Column('tags', sa.ARRAY(sa.Text()), server_default=sa.text("'{}'::text[]"), nullable=False),
    sa.Column('calendar_id', sa.Uuid(), nullable=True),
    sa.Column('first_reply_minutes', sa.Float(), nullable=True),
    sa.Column('first_reply_business_minutes', sa.Float(), nullable=True),
    sa.Column('full_resolution_minutes', sa.Float(), nullable=True),
    sa.Column('full_resolution_business_minutes', sa.Float(), nullable=True),
    sa.Column('requester_wait_minutes', sa.Float(), nullable=True),
    sa.Column('requester_wait_business_minutes', sa.Float(), nullable=True),
    sa.Column('agent_wait_minutes', sa.Float(), nullable=True),
    sa.Column('agent_wait_business_minutes', sa.Float(), nullable=True),
    sa.Column('on_hold_minutes', sa.Float(), nullable=True),
    sa.Column('on_hold_business_minutes', sa.Float(), nullable=True),
    sa.Column('next_replies_total_minutes', sa.Float(), nullable=True),
    sa.Column('next_replies_total_business_minutes', sa.Float(), nullable=True),
    sa.Column('next_replies', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('reopens', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('replies', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('assignee_hops', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('team_hops', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('resolved', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('one_touch', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('first_contact', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('merged', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('csat', sa.SmallInteger(), nullable=True),
    sa.Column('nps', sa.SmallInteger(), nullable=True),
    sa.Column('sla_achieved', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('sla_breached', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('contributions', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'[]'::jsonb"), nullable=False),
    sa.Column('event_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('folded_at', sa.DateTime(timezone=True), server_default=sa.text('clock_timestamp()'), nullable=False),
    sa.PrimaryKeyConstraint('ticket_id', name=op.f('pk_ticket_metrics'))
    )
    op.create_index('ix_ticket_metrics_created_at', 'ticket_metrics', ['created_at'], unique=False)
    op.create_index('ix_ticket_metrics_customer', 'ticket_metrics', ['customer_id'], unique=False)
    op.create_index('ix_ticket_metrics_event_at', 'ticket_metrics', ['event_at'], unique=False)
    op.create_index('ix_ticket_metrics_first_reply_at', 'ticket_metrics', ['first_reply_at'], unique=False)
    op.create_index('ix_ticket_metrics_open_assignee', 'ticket_metrics', ['assignee_id', 'created_at'], unique=False, postgresql_where=sa.text('created_at IS NOT NULL AND NOT resolved AND NOT merged'))
    op.create_index('ix_ticket_metrics_open_team', 'ticket_metrics', ['team_id', 'created_at'], unique=False, postgresql_where=sa.text('created_at IS NOT NULL AND NOT resolved AND NOT merged'))
    op.create_index('ix_ticket_metrics_resolved_at', 'ticket_metrics', ['resolved_at'], unique=False)
    op.execute(HIST_ADD)


def downgrade() -> None:
    op.execute("DROP FUNCTION hist_add(integer[], integer[])")
    op.drop_table("ticket_metrics")
    op.drop_table("ticket_history")
    op.drop_table("sla_targets")
    op.drop_table("sla_rollups")
    op.drop_table("metric_rollups")
    op.drop_table("delivery_failures")
    op.drop_table("customer_dims")
    op.drop_table("business_calendars")
