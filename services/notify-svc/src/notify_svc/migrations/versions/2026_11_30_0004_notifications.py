"""notifications: rules (seeded) and team overrides, templates, opt-outs, agents' chat ids, the
ticket and user projections, and the log of what each event sent or skipped

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30 03:30:00
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

#: the rules as shipped (a copy, not an import: a migration must not change when the code does)
_DEFAULT_RULES = [
    ('ticket_received', True, ['customer']),
    ('ticket_solved', True, ['customer']),
    ('ticket_assigned', True, ['assignee']),
    ('sla_warning', True, ['assignee']),
    ('sla_breached', True, ['assignee', 'team_supervisors']),
    ('escalation', True, ['assignee', 'team_supervisors']),
]


def _now():
    return sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False)


def upgrade() -> None:
    rules = op.create_table(
        'notification_rules',
        sa.Column('key', sa.Text(), nullable=False),
        sa.Column('enabled', sa.Boolean(), nullable=False),
        sa.Column('recipients', pg.ARRAY(sa.Text()), nullable=False),
        sa.Column('user_ids', pg.ARRAY(sa.Text()), server_default='{}', nullable=False),
        sa.Column('agent_channel', sa.Text(), server_default='email', nullable=False),
        sa.Column('version', sa.Integer(), server_default='1', nullable=False),
        sa.Column('updated_by', sa.Text(), nullable=True),
        _now(),
        sa.CheckConstraint("agent_channel IN ('email', 'wecom', 'dingtalk')",
                           name=op.f('ck_notification_rules_agent_channel')),
        sa.PrimaryKeyConstraint('key', name=op.f('pk_notification_rules')),
    )
    op.bulk_insert(rules, [{'key': k, 'enabled': e, 'recipients': r, 'user_ids': [], 'agent_channel': 'email',
                            'version': 1} for k, e, r in _DEFAULT_RULES])
    op.create_table(
        'notification_rule_teams',
        sa.Column('rule_key', sa.Text(), nullable=False),
        sa.Column('team_id', sa.Uuid(), nullable=False),
        sa.Column('brand', sa.Text(), nullable=True),
        sa.Column('enabled', sa.Boolean(), nullable=False),
        sa.Column('updated_by', sa.Text(), nullable=True),
        _now(),
        sa.ForeignKeyConstraint(['rule_key'], ['notification_rules.key'], ondelete='CASCADE',
                                name=op.f('fk_notification_rule_teams_rule_key_notification_rules')),
        sa.PrimaryKeyConstraint('rule_key', 'team_id', name=op.f('pk_notification_rule_teams')),
    )
    op.create_table(
        'notification_templates',
        sa.Column('key', sa.Text(), nullable=False),
        sa.Column('language', sa.Text(), nullable=False),
        sa.Column('subject', sa.Text(), nullable=False),
        sa.Column('body_text', sa.Text(), nullable=False),
        sa.Column('body_html', sa.Text(), server_default='', nullable=False),
        sa.Column('version', sa.Integer(), server_default='1', nullable=False),
        sa.Column('updated_by', sa.Text(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        _now(),
        sa.PrimaryKeyConstraint('key', 'language', name=op.f('pk_notification_templates')),
    )
    op.create_table(
        'notification_opt_outs',
        sa.Column('kind', sa.Text(), nullable=False),
        sa.Column('value', sa.Text(), nullable=False),
        sa.Column('opted_out', sa.Boolean(), nullable=False),
        sa.Column('version', sa.Integer(), server_default='1', nullable=False),
        sa.Column('updated_by', sa.Text(), nullable=True),
        _now(),
        sa.CheckConstraint("kind IN ('customer', 'email')", name=op.f('ck_notification_opt_outs_kind')),
        sa.PrimaryKeyConstraint('kind', 'value', name=op.f('pk_notification_opt_outs')),
    )
    op.create_table(
        'notification_contacts',
        sa.Column('user_id', sa.Uuid(), nullable=False),
        sa.Column('wecom_userid', sa.Text(), nullable=True),
        sa.Column('dingtalk_userid', sa.Text(), nullable=True),
        sa.Column('version', sa.Integer(), server_default='1', nullable=False),
        sa.Column('updated_by', sa.Text(), nullable=True),
        _now(),
        sa.PrimaryKeyConstraint('user_id', name=op.f('pk_notification_contacts')),
    )
    op.create_table(
        'notification_users',
        sa.Column('user_id', sa.Uuid(), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('name', sa.Text(), nullable=True),
        sa.Column('role', sa.Text(), nullable=False),
        sa.Column('active', sa.Boolean(), nullable=False),
        sa.Column('email', sa.Text(), nullable=True),
        _now(),
        sa.PrimaryKeyConstraint('user_id', name=op.f('pk_notification_users')),
    )
    op.create_table(
        'notification_tickets',
        sa.Column('ticket_id', sa.Uuid(), nullable=False),
        sa.Column('number', sa.BigInteger(), nullable=True),
        sa.Column('subject', sa.Text(), nullable=True),
        sa.Column('status', sa.Text(), nullable=True),
        sa.Column('priority', sa.Text(), nullable=True),
        sa.Column('channel', sa.Text(), nullable=True),
        sa.Column('language', sa.Text(), nullable=True),
        sa.Column('requester', pg.JSONB(), server_default='{}', nullable=False),
        sa.Column('customer_id', sa.Uuid(), nullable=True),
        sa.Column('team_id', sa.Uuid(), nullable=True),
        sa.Column('assignee_id', sa.Text(), nullable=True),
        sa.Column('created_by', sa.Text(), nullable=True),
        sa.Column('version', sa.Integer(), nullable=True),
        _now(),
        sa.PrimaryKeyConstraint('ticket_id', name=op.f('pk_notification_tickets')),
    )
    op.create_table(
        'notification_log',
        sa.Column('event_id', sa.Uuid(), nullable=False),
        sa.Column('key', sa.Text(), nullable=False),
        sa.Column('recipient', sa.Text(), nullable=False),
        sa.Column('ticket_id', sa.Uuid(), nullable=True),
        sa.Column('status', sa.Text(), nullable=False),
        sa.Column('reason', sa.Text(), nullable=True),
        sa.Column('channel', sa.Text(), nullable=True),
        sa.Column('delivery_id', sa.Uuid(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.CheckConstraint("status IN ('queued', 'skipped')", name=op.f('ck_notification_log_status')),
        sa.PrimaryKeyConstraint('event_id', 'key', 'recipient', name=op.f('pk_notification_log')),
    )
    op.create_index('ix_notification_log_ticket', 'notification_log', ['ticket_id', 'created_at'])


def downgrade() -> None:
    op.drop_index('ix_notification_log_ticket', table_name='notification_log')
    for table in ('notification_log', 'notification_tickets', 'notification_users', 'notification_contacts',
                  'notification_opt_outs', 'notification_templates', 'notification_rule_teams', 'notification_rules'):
        op.drop_table(table)
