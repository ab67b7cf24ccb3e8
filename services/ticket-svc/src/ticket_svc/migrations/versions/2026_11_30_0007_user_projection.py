"""user projection: the gateway's users (from users.events), behind agent profiles

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 09:00:00

``user_projection`` keeps each gateway user's name, role, state and version (the highest
version seen wins). Agent profiles are only for users: profiles, listings, team membership and
routing join this table. Profiles made before this release for ids that are no user stay in
``agents`` untouched (a migration cannot tell them apart: the gateway's users arrive as events
after it) — they are hidden and never routed; the gateway's migration 0004 announces every
existing user, which makes their profiles visible again as soon as ticket-svc consumes it.
"""
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
CREATE TABLE user_projection (
    id text PRIMARY KEY,
    display_name text,
    role text NOT NULL,
    active boolean NOT NULL,
    version bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
)""")


def downgrade() -> None:
    op.execute("DROP TABLE user_projection")
