"""Survey comments encrypted at rest (docs/security.md, "Personal data at rest")

- ``surveys.comment_enc``: the answer's comment, AES-256-GCM under ``CUSTOMER_PII_KEYS`` with
  ``surveys.comment`` as the associated data. A customer writes what they like there (names,
  phone numbers, order details, complaints), so it is personal data like the notes.
  ``comment`` (the plaintext) stays for rows answered before; reads take both forms, new answers
  write only ``comment_enc``, and ``python -m customer_svc.pii reencrypt`` moves the old rows
  (the migration holds no key and changes no row).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-10 09:00:00
"""
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE surveys ADD COLUMN comment_enc text NULL")


def downgrade() -> None:
    # ciphertext cannot be turned back without the key: a downgrade loses encrypted comments
    op.execute("ALTER TABLE surveys DROP COLUMN comment_enc")
