"""Data subject requests (privacy/): export and erasure of one customer across every service

- ``privacy_requests``: one row per request, kept after completion as the audit of what was asked,
  by whom and when (ids, states and times only: never a name or an identity). ``services`` holds
  each service's acknowledgement of an erasure; ``bundle`` the assembled export until it is
  deleted (``bundle_expires_at``). At most one open request per customer and kind.
- ``privacy_audit``: who did what to a request (created, suspended, resumed, export downloaded,
  completed), with no personal data.
- ``customers.restricted``: processing of the customer's data is stopped while an erasure is
  suspended (PIPL Art. 47): no survey is sent, no notification leaves.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-09 09:00:00
"""
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
        CREATE TABLE privacy_requests (
            id uuid PRIMARY KEY,
            customer_id uuid NOT NULL,
            kind text NOT NULL CHECK (kind IN ('export', 'erase')),
            state text NOT NULL CHECK (state IN ('pending', 'in_progress', 'suspended', 'completed')),
            requested_by text NOT NULL,
            services jsonb NOT NULL DEFAULT '{}',
            log_state text NULL,
            suspended_reason text NULL,
            bundle jsonb NULL,
            bundle_expires_at timestamptz NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now(),
            completed_at timestamptz NULL
        )""")
    op.execute("CREATE UNIQUE INDEX uq_privacy_requests_open ON privacy_requests (customer_id, kind) "
               "WHERE state <> 'completed'")
    op.execute("CREATE INDEX ix_privacy_requests_state_created ON privacy_requests (state, created_at DESC, id DESC)")
    op.execute("CREATE INDEX ix_privacy_requests_created ON privacy_requests (created_at DESC, id DESC)")
    op.execute("""
        CREATE TABLE privacy_audit (
            id bigserial PRIMARY KEY,
            request_id uuid NOT NULL REFERENCES privacy_requests (id),
            action text NOT NULL,
            actor text NOT NULL,
            at timestamptz NOT NULL DEFAULT now(),
            detail jsonb NOT NULL DEFAULT '{}'
        )""")
    op.execute("CREATE INDEX ix_privacy_audit_request ON privacy_audit (request_id, id)")
    op.execute("ALTER TABLE customers ADD COLUMN restricted boolean NOT NULL DEFAULT false")
    op.execute("ALTER TABLE customers ADD COLUMN erased_at timestamptz NULL")


def downgrade() -> None:
    op.execute("ALTER TABLE customers DROP COLUMN erased_at")
    op.execute("ALTER TABLE customers DROP COLUMN restricted")
    op.execute("DROP TABLE privacy_audit")
    op.execute("DROP TABLE privacy_requests")
