"""ticket change positions for the incremental export (issue 13)

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-04 10:00:00

- ``tickets.change_xid`` (``xid8``): the id of the transaction that last wrote the row — set by
  the column default on insert and by a ``BEFORE UPDATE`` trigger on every update, so no write
  path (PATCH, messages, merges, SLA and CSAT projections, bulk updates) can forget it.
  ``GET /v1/export/tickets`` pages on ``(change_xid, id)`` and only up to the oldest transaction
  still running (``pg_snapshot_xmin``), the point below which no row can still appear: a
  transaction that commits late carries its own, higher-than-the-cursor id, which a keyset on
  ``updated_at`` would have skipped (docs/exports.md, "Why a transaction id").
- Rows written before this migration read ``0`` (a constant default: no table rewrite) and are
  exported first, in id order.
- ``ix_tickets_change_xid_id``: the export's keyset walk.

The column is deliberately not in the SQLAlchemy table (``tickets.models``): every ticket
SELECT is generated from that table, and none but the export needs the position.
"""
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE tickets ADD COLUMN change_xid xid8 NOT NULL DEFAULT '0'")
    op.execute("ALTER TABLE tickets ALTER COLUMN change_xid SET DEFAULT pg_current_xact_id()")
    op.execute("""
CREATE FUNCTION tickets_stamp_change_xid() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.change_xid := pg_current_xact_id();
    RETURN NEW;
END
$$""")
    op.execute("CREATE TRIGGER tickets_change_xid BEFORE UPDATE ON tickets "
               "FOR EACH ROW EXECUTE FUNCTION tickets_stamp_change_xid()")
    op.execute("CREATE INDEX ix_tickets_change_xid_id ON tickets (change_xid, id)")


def downgrade() -> None:
    op.execute("DROP INDEX ix_tickets_change_xid_id")
    op.execute("DROP TRIGGER tickets_change_xid ON tickets")
    op.execute("DROP FUNCTION tickets_stamp_change_xid()")
    op.execute("ALTER TABLE tickets DROP COLUMN change_xid")
