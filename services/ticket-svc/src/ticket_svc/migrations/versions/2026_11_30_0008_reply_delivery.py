"""reply delivery: delivery status on messages, and the customer's reply routes

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30 12:00:00

Public agent messages are delivered by notify-svc (``ticket.reply_requested``); ticket-svc shows
what became of each one. ``delivery_status`` (queued | sent | failed | undeliverable) is null for
every other message and for messages written before this release (they were never sent), so
no backfill: "null" honestly says "not a delivery".

``reply_routes`` holds, per ticket and channel, the newest way to reach the customer that the
messages themselves do not keep: a DingTalk robot's session webhook is a bearer URL (anyone
holding it can post into the chat until it expires), so it lives only here, a table no API
answer reads from; WeChat / WeCom callbacks' account ids go here too, so a reply needs one
primary-key read for these channels.
"""
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
ALTER TABLE messages
    ADD COLUMN delivery_status text,
    ADD COLUMN delivery_reason text,
    ADD COLUMN delivery_attempts integer,
    ADD COLUMN delivery_updated_at timestamptz,
    ADD CONSTRAINT ck_messages_delivery_status
        CHECK (delivery_status IN ('queued', 'sent', 'failed', 'undeliverable'))""")
    op.execute("""
CREATE TABLE reply_routes (
    ticket_id uuid NOT NULL REFERENCES tickets (id),
    channel text NOT NULL,
    route jsonb NOT NULL DEFAULT '{}',
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (ticket_id, channel)
)""")


def downgrade() -> None:
    op.execute("DROP TABLE reply_routes")
    op.execute("""
ALTER TABLE messages
    DROP CONSTRAINT ck_messages_delivery_status,
    DROP COLUMN delivery_updated_at,
    DROP COLUMN delivery_attempts,
    DROP COLUMN delivery_reason,
    DROP COLUMN delivery_status""")
