"""users.version and the gateway's outbox: users are announced on users.events

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30 09:00:00

The outbox table comes from the shared definition (``helpdesk_common.outbox.create_outbox_table``).
Every user that exists already is announced once, as a ``user.created`` of version 1 in the new
outbox (the gateway's relay publishes it on start), so ticket-svc learns the users it has never
heard of — their agent profiles, made before with ``PUT /v1/agents/{user id}``, stay usable — and
gives the others (the dev admin, users never given a profile) one.
"""
from alembic import op
import sqlalchemy as sa

from helpdesk_common.db import new_metadata
from helpdesk_common.outbox import create_outbox_table, drop_outbox_table, outbox_row, outbox_table

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    from gateway.auth.users import user_created

    op.add_column('users', sa.Column('version', sa.BigInteger(), server_default=sa.text('1'), nullable=False))
    create_outbox_table(op)
    bind = op.get_bind()
    existing = bind.execute(sa.text("SELECT id, name, role, active, version FROM users ORDER BY created_at, id")).all()
    if existing:
        bind.execute(outbox_table(new_metadata()).insert(),
                     [outbox_row(user_created(row, actor="system:migration")) for row in existing])


def downgrade() -> None:
    drop_outbox_table(op)
    op.drop_column('users', 'version')
