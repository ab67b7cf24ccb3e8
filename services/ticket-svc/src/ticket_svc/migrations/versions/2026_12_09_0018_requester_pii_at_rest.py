"""the requester's personal data encrypted at rest (issue 15)

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-09 10:00:00

- ``tickets.requester`` keeps its type; new rows hold ``{"sealed": token}`` (``pii/codec.py``).
- ``tickets.requester_identity_bidx``: the primary identity's blind index, replacing the plaintext
  ``requester_identity_value`` (left NULL by new rows, cleared by the re-encrypt command);
  ``ix_tickets_unlinked_identity_bidx`` takes the old index's place (the erasure's and the
  intake's lookups by identity).
- ``tickets.requester_bidx``: every identity's index, GIN (``GET /v1/tickets?requester=``).
- ``customer_identity_projection``: ``value_enc`` and ``value_bidx``; the primary key on the
  plaintext goes (``value`` becomes nullable), unique on ``(kind, value_bidx)`` instead, and a
  partial unique index keeps the plaintext rows unique until they are moved.

The migration holds no key and moves no row: ``python -m ticket_svc.pii reencrypt`` does
(docs/security.md, "Personal data at rest"). Downgrading is refused once a row is encrypted.
"""
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE tickets ADD COLUMN requester_identity_bidx text, "
               "ADD COLUMN requester_bidx text[] NOT NULL DEFAULT '{}'")
    op.execute("CREATE INDEX ix_tickets_unlinked_identity_bidx ON tickets "
               "(requester_identity_kind, requester_identity_bidx) WHERE requester_identity_bidx IS NOT NULL")
    op.execute("CREATE INDEX ix_tickets_requester_bidx ON tickets USING gin (requester_bidx)")
    op.execute("ALTER TABLE customer_identity_projection ADD COLUMN value_enc text, ADD COLUMN value_bidx text")
    op.execute("ALTER TABLE customer_identity_projection DROP CONSTRAINT pk_customer_identity_projection")
    op.execute("ALTER TABLE customer_identity_projection ALTER COLUMN value DROP NOT NULL")
    op.execute("CREATE UNIQUE INDEX uq_customer_identity_projection_bidx "
               "ON customer_identity_projection (kind, value_bidx)")
    op.execute("CREATE UNIQUE INDEX uq_customer_identity_projection_plain "
               "ON customer_identity_projection (kind, value) WHERE value IS NOT NULL")


def downgrade() -> None:
    # only for a base holding no ciphertext yet: this migration has no key to turn it back
    op.execute("""
        DO $$ BEGIN
          IF EXISTS (SELECT 1 FROM tickets WHERE requester ? 'sealed' OR requester_identity_bidx IS NOT NULL)
             OR EXISTS (SELECT 1 FROM customer_identity_projection WHERE value IS NULL) THEN
            RAISE EXCEPTION 'ticket-svc holds encrypted personal data: downgrading below 0018 would lose it';
          END IF;
        END $$""")
    op.execute("DROP INDEX uq_customer_identity_projection_plain")
    op.execute("DROP INDEX uq_customer_identity_projection_bidx")
    op.execute("ALTER TABLE customer_identity_projection ALTER COLUMN value SET NOT NULL")
    op.execute("ALTER TABLE customer_identity_projection ADD CONSTRAINT pk_customer_identity_projection "
               "PRIMARY KEY (kind, value)")
    op.execute("ALTER TABLE customer_identity_projection DROP COLUMN value_bidx, DROP COLUMN value_enc")
    op.execute("DROP INDEX ix_tickets_requester_bidx")
    op.execute("DROP INDEX ix_tickets_unlinked_identity_bidx")
    op.execute("ALTER TABLE tickets DROP COLUMN requester_bidx, DROP COLUMN requester_identity_bidx")
