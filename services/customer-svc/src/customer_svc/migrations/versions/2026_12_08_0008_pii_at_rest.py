"""Personal data at rest: encrypted columns, blind indexes, the audit of unmasked reads

customer-svc stores identities, names and notes encrypted (AES-256-GCM) and finds them through
keyed blind indexes (customer_svc/pii/codec.py; docs/security.md, "Personal data at rest"):

- ``customer_identities``: ``value_enc`` (ciphertext), ``value_bidx`` (unique per kind),
  ``phone_key`` and ``email_local`` (duplicate suggestions). ``value`` (the plaintext) becomes
  nullable and is NULL on every row written from now on; the primary key moves to ``id`` and the
  plaintext's uniqueness becomes a partial index, so rows not yet re-encrypted stay unique too.
- ``customers``: ``name_enc``, ``notes_enc``, ``name_key`` (duplicates: same name in one
  organisation); ``search`` holds opaque terms for new rows.
- ``pii_access_log``: one row per customer whose identities a caller was shown unmasked, or who was
  exported (who, when, which fields, why), read by admins.

This migration holds no key and changes no row: existing plaintext stays readable until
``python -m customer_svc.pii reencrypt`` (batched, resumable) has encrypted it and cleared it.
The plaintext duplicate indexes of 0007 go: duplicates are found through the blind indexes.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-08 09:00:00
"""
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE customer_identities ADD COLUMN value_enc text NULL, ADD COLUMN value_bidx text NULL, "
               "ADD COLUMN phone_key text NULL, ADD COLUMN email_local text NULL")
    op.execute("ALTER TABLE customer_identities DROP CONSTRAINT pk_customer_identities")
    op.execute("ALTER TABLE customer_identities ALTER COLUMN value DROP NOT NULL")
    op.execute("ALTER TABLE customer_identities ADD CONSTRAINT pk_customer_identities PRIMARY KEY (id)")
    op.execute("ALTER TABLE customer_identities DROP CONSTRAINT uq_customer_identities_id")  # the key now
    op.execute("CREATE UNIQUE INDEX uq_customer_identities_plain ON customer_identities (kind, value) "
               "WHERE value IS NOT NULL")
    op.execute("CREATE UNIQUE INDEX uq_customer_identities_bidx ON customer_identities (kind, value_bidx) "
               "WHERE value_bidx IS NOT NULL")
    # ?q= and the same value under another kind (unionid duplicates)
    op.execute("CREATE INDEX ix_customer_identities_bidx ON customer_identities (value_bidx) "
               "WHERE value_bidx IS NOT NULL")
    op.execute("CREATE INDEX ix_customer_identities_phone_key ON customer_identities (phone_key) "
               "WHERE phone_key IS NOT NULL")
    op.execute("CREATE INDEX ix_customer_identities_email_local_bidx ON customer_identities (email_local) "
               "WHERE email_local IS NOT NULL")
    # the re-encrypt command walks the rows still holding plaintext
    op.execute("CREATE INDEX ix_customer_identities_plain_id ON customer_identities (id) WHERE value IS NOT NULL")
    op.execute("DROP INDEX IF EXISTS ix_customer_identities_phone_digits")
    op.execute("DROP INDEX IF EXISTS ix_customer_identities_email_local")

    op.execute("ALTER TABLE customers ADD COLUMN name_enc text NULL, ADD COLUMN notes_enc text NULL, "
               "ADD COLUMN name_key text NULL")
    op.execute("DROP INDEX IF EXISTS ix_customers_org_name_key")
    op.execute("CREATE INDEX ix_customers_org_name_bidx ON customers (organization_id, name_key) "
               "WHERE merged_into IS NULL AND organization_id IS NOT NULL AND name_key IS NOT NULL")
    op.execute("CREATE INDEX ix_customers_plain_id ON customers (id) WHERE name IS NOT NULL OR notes IS NOT NULL")

    op.execute("""
        CREATE TABLE pii_access_log (
            id bigserial PRIMARY KEY,
            at timestamptz NOT NULL DEFAULT clock_timestamp(),
            actor text NOT NULL,
            actor_role text NULL,
            customer_id uuid NOT NULL,
            fields text[] NOT NULL,
            purpose text NOT NULL CHECK (purpose IN ('read', 'export')),
            reason text NOT NULL,
            route text NOT NULL,
            request_id text NULL
        )""")
    op.execute("CREATE INDEX ix_pii_access_log_customer ON pii_access_log (customer_id, id DESC)")
    op.execute("CREATE INDEX ix_pii_access_log_actor ON pii_access_log (actor, id DESC)")


def downgrade() -> None:
    # only for a base holding no ciphertext yet: this migration has no key to turn it back
    op.execute("""
        DO $$ BEGIN
          IF EXISTS (SELECT 1 FROM customer_identities WHERE value IS NULL)
             OR EXISTS (SELECT 1 FROM customers WHERE name_enc IS NOT NULL OR notes_enc IS NOT NULL) THEN
            RAISE EXCEPTION 'customer-svc holds encrypted personal data: downgrading below 0008 would lose it';
          END IF;
        END $$""")
    op.execute("DROP TABLE pii_access_log")
    op.execute("DROP INDEX ix_customers_plain_id")
    op.execute("DROP INDEX ix_customers_org_name_bidx")
    op.execute("CREATE INDEX ix_customers_org_name_key ON customers "
               "(organization_id, lower(normalize(btrim(name), NFKC))) "
               "WHERE merged_into IS NULL AND organization_id IS NOT NULL AND name IS NOT NULL")
    op.execute("ALTER TABLE customers DROP COLUMN name_key, DROP COLUMN notes_enc, DROP COLUMN name_enc")
    op.execute("CREATE INDEX ix_customer_identities_email_local ON customer_identities "
               "(split_part(value, '@', 1)) WHERE kind = 'email'")
    op.execute("CREATE INDEX ix_customer_identities_phone_digits ON customer_identities "
               "(right(regexp_replace(value, '[^0-9]', '', 'g'), 10)) WHERE kind = 'phone'")
    for index in ("ix_customer_identities_plain_id", "ix_customer_identities_email_local_bidx",
                  "ix_customer_identities_phone_key", "ix_customer_identities_bidx", "uq_customer_identities_bidx",
                  "uq_customer_identities_plain"):
        op.execute(f"DROP INDEX {index}")
    op.execute("ALTER TABLE customer_identities DROP CONSTRAINT pk_customer_identities")
    op.execute("ALTER TABLE customer_identities ALTER COLUMN value SET NOT NULL")
    op.execute("ALTER TABLE customer_identities ADD CONSTRAINT pk_customer_identities PRIMARY KEY (kind, value)")
    op.execute("ALTER TABLE customer_identities ADD CONSTRAINT uq_customer_identities_id UNIQUE (id)")
    op.execute("ALTER TABLE customer_identities DROP COLUMN email_local, DROP COLUMN phone_key, "
               "DROP COLUMN value_bidx, DROP COLUMN value_enc")
