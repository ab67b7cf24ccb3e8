"""CC lists, CSAT comments and messages' personal metadata sealed at rest (issue 15)

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-12 10:00:00

No column changes type: from this revision on, ticket-svc writes

- ``tickets.cc`` (other people's addresses) as ``{"sealed": token}`` (``[]`` when empty);
- ``tickets.csat_comment`` (the customer's words) as a token;
- a message's personal metadata (an e-mail's ``to`` / ``cc`` / ``reply_to``, a call's transcript
  and recording link, a group chat's title) as ``metadata.personal = {"sealed": token}``
  (``pii/codec.py``).

Like 0018 and 0019 the migration holds no key and moves no row: every read takes both forms,
and ``python -m ticket_svc.pii reencrypt`` seals the old ones (its report's ``ticket_fields`` and
``messages``). Downgrading is refused once a row is in the new form.
"""
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass  # the code's new forms need no schema change; the revision marks where they begin


def downgrade() -> None:
    # only for a base holding nothing in the new forms: this migration has no key to turn them back
    op.execute("""
        DO $$ BEGIN
          IF EXISTS (SELECT 1 FROM tickets WHERE jsonb_typeof(cc) = 'object')
             OR EXISTS (SELECT 1 FROM tickets WHERE csat_comment ~ '^v1[.][^.]+[.][A-Za-z0-9_-]+$')
             OR EXISTS (SELECT 1 FROM messages WHERE metadata ? 'personal') THEN
            RAISE EXCEPTION 'ticket-svc holds sealed CC lists, CSAT comments or message metadata: '
                            'downgrading below 0021 would lose them';
          END IF;
        END $$""")
