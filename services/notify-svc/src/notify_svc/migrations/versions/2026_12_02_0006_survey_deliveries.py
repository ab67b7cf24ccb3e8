"""deliveries: a fourth kind, ``survey`` (customer-svc's CSAT and NPS invitations, issue 11)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 09:00:00
"""
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_constraint(op.f('ck_deliveries_kind'), 'deliveries', type_='check')
    op.create_check_constraint(op.f('ck_deliveries_kind'), 'deliveries',
                               "kind IN ('reply', 'notification', 'webhook', 'survey')")


def downgrade() -> None:
    op.execute("DELETE FROM deliveries WHERE kind = 'survey'")
    op.drop_constraint(op.f('ck_deliveries_kind'), 'deliveries', type_='check')
    op.create_check_constraint(op.f('ck_deliveries_kind'), 'deliveries', "kind IN ('reply', 'notification', 'webhook')")
