"""drop the two indexes of the requester's primary identity nothing reads (issue 19)

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-15 09:00:00

``ix_tickets_unlinked_identity`` (plaintext, unlinked tickets) and
``ix_tickets_unlinked_identity_bidx`` (its blind index, 0018) served the link of a requester's
earlier tickets when customer-svc announced a new customer. ticket-svc links a ticket on
customer-svc's resolution of its requester now, by the ticket's id; no query reads either index
(the erasure's lookup of a person's tickets goes by ``customer_id``, ``requester_bidx`` and
``conversation_key``, and by the plaintext pair only for rows from before 0018, which neither
index could serve: the first holds unlinked rows only). Every ticket's insert still wrote one or
both, and so did every later update of a ticket (``change_xid`` is indexed, so no update of
``tickets`` is a HOT update): 22 indexes on ``tickets`` before this, 20 after.
"""
from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_tickets_unlinked_identity")
    op.execute("DROP INDEX IF EXISTS ix_tickets_unlinked_identity_bidx")


def downgrade() -> None:
    op.execute("CREATE INDEX ix_tickets_unlinked_identity ON tickets (requester_identity_kind, requester_identity_value) "
               "WHERE customer_id IS NULL")
    op.execute("CREATE INDEX ix_tickets_unlinked_identity_bidx ON tickets "
               "(requester_identity_kind, requester_identity_bidx) WHERE requester_identity_bidx IS NOT NULL")
