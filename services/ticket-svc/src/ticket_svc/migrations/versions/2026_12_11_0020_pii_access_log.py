"""the audit of unmasked requester reads and exports (issue 15)

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-11 10:00:00

- ``pii_access_log``: one row per ticket whose requester (e-mail address, phone number, openid,
  external id) an answer showed a user unmasked — who, when, which ticket, which fields, why
  (``role`` or ``assignee``), for what (``read`` or ``export``), through which route, with the
  request id. Ids only, no personal data: it survives the erasure of the person it is about.
"""
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
        CREATE TABLE pii_access_log (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            at timestamptz NOT NULL DEFAULT now(),
            actor text NOT NULL,
            actor_role text,
            ticket_id uuid NOT NULL,
            fields text[] NOT NULL,
            reason text NOT NULL CONSTRAINT ck_pii_access_log_reason CHECK (reason IN ('role', 'assignee')),
            purpose text NOT NULL CONSTRAINT ck_pii_access_log_purpose CHECK (purpose IN ('read', 'export')),
            route text NOT NULL,
            request_id text
        )""")
    op.execute("CREATE INDEX ix_pii_access_log_ticket ON pii_access_log (ticket_id, id DESC)")
    op.execute("CREATE INDEX ix_pii_access_log_actor ON pii_access_log (actor, id DESC)")


def downgrade() -> None:
    op.execute("DROP TABLE pii_access_log")
