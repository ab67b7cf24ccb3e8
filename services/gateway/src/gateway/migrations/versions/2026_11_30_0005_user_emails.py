"""users.events: announce every existing user's sign-in address once (for notify-svc)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 10:00:00

``UserData.email`` is new (issue 10): notify-svc e-mails agents their notifications. Users created
or changed from now on carry it in their events; those that exist already are announced once more
as a ``user.updated`` at their *current* version with no ``changes``. Consumers that keep the
highest version (ticket-svc) ignore an event of a version they have; notify-svc takes the address
from it (an equal version fills a missing address, nothing else).
"""
from alembic import op
import sqlalchemy as sa

from helpdesk_common.db import new_metadata
from helpdesk_common.outbox import outbox_row, outbox_table

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    from gateway.auth.users import user_updated

    bind = op.get_bind()
    existing = bind.execute(sa.text(
        "SELECT id, email, name, role, active, version FROM users ORDER BY created_at, id")).all()
    if existing:
        bind.execute(outbox_table(new_metadata()).insert(),
                     [outbox_row(user_updated(row, {}, actor="system:migration")) for row in existing])


def downgrade() -> None:
    pass  # events already written stay written: an outbox is history
