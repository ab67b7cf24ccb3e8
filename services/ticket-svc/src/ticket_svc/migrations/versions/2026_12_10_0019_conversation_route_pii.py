"""WeChat / WeCom conversation keys and reply routes without plaintext (issue 15)

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-10 10:00:00

- ``tickets.conversation_key`` keeps its type; a WeChat or WeCom ticket written from now on holds
  ``<channel>:#<blind index of the sender>`` instead of ``<channel>:<openid | userid>``
  (``pii/codec.py``); threading compares both forms until the rows are moved.
- ``ix_tickets_conversation_key``: every ticket by its conversation key, closed ones included (the
  erasure's "tickets of this person's conversations"; threading keeps its partial index on open
  tickets).
- ``reply_routes.route`` keeps its type; new routes hold ``{"sealed": token}``.

Like 0018 the migration holds no key and moves no row: ``python -m ticket_svc.pii reencrypt``
indexes the old keys and seals the old routes (docs/security.md, "ticket-svc: the requester on a
ticket"). Downgrading is refused once a row is in the new form.
"""
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE INDEX ix_tickets_conversation_key ON tickets (conversation_key) "
               "WHERE conversation_key IS NOT NULL")


def downgrade() -> None:
    # only for a base holding nothing in the new forms: this migration has no key to turn them back
    op.execute("""
        DO $$ BEGIN
          IF EXISTS (SELECT 1 FROM tickets WHERE conversation_key ~ '^(wechat|wecom):#')
             OR EXISTS (SELECT 1 FROM reply_routes WHERE route ? 'sealed') THEN
            RAISE EXCEPTION 'ticket-svc holds indexed conversation keys or sealed reply routes: '
                            'downgrading below 0019 would lose them';
          END IF;
        END $$""")
    op.execute("DROP INDEX ix_tickets_conversation_key")
