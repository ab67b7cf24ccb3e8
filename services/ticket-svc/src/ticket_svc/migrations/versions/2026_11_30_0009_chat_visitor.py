"""chat visitor: wake long-polls on new public chat messages, find a conversation's tickets

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30 14:00:00

A chat visitor long-polls ``GET /v1/chat/conversations/{id}/messages`` (ticket_svc/visitor/).
A trigger rather than application code sends the wake-up, so every path that writes a public
message (an agent's reply, a macro, intake, a merge's note) wakes the visitor without each
one having to remember it, and ``pg_notify`` is transactional: the NOTIFY leaves at commit,
never for a rolled-back reply, and reaches the replicas that hold the waiting requests. It
costs one primary-key read of the ticket per public message, and sends only for chat tickets.

``ix_tickets_chat_conversation``: a visitor reads every ticket of the conversation (closed
ones too), which the partial index of 0002 (open tickets only) does not cover.
"""
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
CREATE INDEX ix_tickets_chat_conversation ON tickets (conversation_key) WHERE conversation_key LIKE 'chat:%'""")
    op.execute("""
CREATE FUNCTION notify_chat_message() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    key text;
BEGIN
    SELECT conversation_key INTO key FROM tickets WHERE id = NEW.ticket_id;
    IF key LIKE 'chat:%' THEN
        PERFORM pg_notify('chat_messages', key);
    END IF;
    RETURN NULL;
END
$$""")
    op.execute("""
CREATE TRIGGER tr_messages_notify_chat AFTER INSERT ON messages
    FOR EACH ROW WHEN (NEW.public) EXECUTE FUNCTION notify_chat_message()""")


def downgrade() -> None:
    op.execute("DROP TRIGGER tr_messages_notify_chat ON messages")
    op.execute("DROP FUNCTION notify_chat_message()")
    op.execute("DROP INDEX ix_tickets_chat_conversation")
