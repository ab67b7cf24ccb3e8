"""process definitions: immutable numbered versions of each ticket type's steps (issue 12)

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30 10:30:00

- ``process_definitions``: one row per version of a ticket type's process. A save appends the
  next version; a deactivation (DELETE) appends one too, with ``active`` false and no steps, so
  the version number orders every change of a type (it is the ETag) and the history says who
  deactivated it and when. Rows are never updated: a ticket that started under a version keeps
  reading that version, whatever admins do later.
"""
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
CREATE TABLE process_definitions (
    ticket_type text NOT NULL,
    version integer NOT NULL CHECK (version >= 1),
    active boolean NOT NULL,
    steps jsonb NOT NULL CHECK (jsonb_typeof(steps) = 'array' AND (active OR steps = '[]'::jsonb)),
    created_by text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (ticket_type, version)
)""")


def downgrade() -> None:
    op.execute("DROP TABLE process_definitions")
