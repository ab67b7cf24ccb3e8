"""issue 12: the approval notifications' rules (seeded), the rule name of a trigger's or an
automation's notification in the log, and a fifth delivery kind, ``confirmation`` (the customer
is asked to confirm a resolution)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 09:00:00
"""
from alembic import op
import sqlalchemy as sa

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

#: the rules as shipped (a copy, not an import: a migration must not change when the code does)
_DEFAULT_RULES = [
    ('approval_requested', True, ['approvers']),
    ('approval_decided', True, ['assignee']),
]


def upgrade() -> None:
    op.drop_constraint(op.f('ck_deliveries_kind'), 'deliveries', type_='check')
    op.create_check_constraint(op.f('ck_deliveries_kind'), 'deliveries',
                               "kind IN ('reply', 'notification', 'webhook', 'survey', 'confirmation')")
    op.add_column('notification_log', sa.Column('rule', sa.Text(), nullable=True))
    rules = sa.table('notification_rules', sa.column('key', sa.Text()), sa.column('enabled', sa.Boolean()),
                     sa.column('recipients', sa.ARRAY(sa.Text())), sa.column('user_ids', sa.ARRAY(sa.Text())),
                     sa.column('agent_channel', sa.Text()), sa.column('version', sa.Integer()))
    op.bulk_insert(rules, [{'key': k, 'enabled': e, 'recipients': r, 'user_ids': [], 'agent_channel': 'email',
                            'version': 1} for k, e, r in _DEFAULT_RULES])


def downgrade() -> None:
    op.execute("DELETE FROM notification_rules WHERE key IN ('approval_requested', 'approval_decided')")
    op.drop_column('notification_log', 'rule')
    op.execute("DELETE FROM deliveries WHERE kind = 'confirmation'")
    op.drop_constraint(op.f('ck_deliveries_kind'), 'deliveries', type_='check')
    op.create_check_constraint(op.f('ck_deliveries_kind'), 'deliveries',
                               "kind IN ('reply', 'notification', 'webhook', 'survey')")
