"""issue 9 rough edges: public message counts; versions of teams and custom statuses; search
vectors rebuilt with weights and NFKC folding; one-line subjects and remote-free HTML for rows
stored before the rules

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29 23:30:00

Schema: ``tickets.public_message_count`` (what a channel key is shown), counted from the stored
messages; ``teams.version`` and ``custom_statuses.version`` (ETag / If-Match, like tickets).

Data, for rows written before this release (the rules now applied on the way in):

- every ticket's ``search`` vector is rebuilt from its subject (weight A), description, public
  messages, their attachments' names and the subjects of tickets merged into it (B) and internal
  notes (C), folded by ``tickets.search`` (NFKC). Old vectors had no weights, so a channel's
  search could match words of internal notes, a subject change could not drop the old
  subject's words, and full-width text was stored unfolded;
- subjects are cleaned by ``helpdesk_common.text.one_line`` (``(no subject)`` when nothing
  visible is left). This is a data fix: no audit entry, no event;
- HTML message bodies are sanitised again by ``conversation.sanitize`` (remote images dropped).

The data steps use the application's current functions, in batches keyed by id (one pass over
tickets and messages; on a large database run the migration in a maintenance window). The
downgrade drops the column only: the fixed data stays fixed.
"""
from __future__ import annotations

import uuid
from collections import defaultdict
from typing import Any

from alembic import op
from sqlalchemy import text

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

BATCH = 200
_ZERO = uuid.UUID(int=0)


def upgrade() -> None:
    op.execute("ALTER TABLE tickets ADD COLUMN public_message_count integer NOT NULL DEFAULT 0")
    op.execute("UPDATE tickets t SET public_message_count = c.n FROM "
               "(SELECT ticket_id, count(*) AS n FROM messages WHERE public GROUP BY ticket_id) c "
               "WHERE c.ticket_id = t.id")
    op.execute("ALTER TABLE teams ADD COLUMN version integer NOT NULL DEFAULT 1")
    op.execute("ALTER TABLE custom_statuses ADD COLUMN version integer NOT NULL DEFAULT 1")
    bind = op.get_bind()
    rebuild_tickets(bind)
    resanitise_messages(bind)


def downgrade() -> None:
    op.execute("ALTER TABLE custom_statuses DROP COLUMN version")
    op.execute("ALTER TABLE teams DROP COLUMN version")
    op.execute("ALTER TABLE tickets DROP COLUMN public_message_count")


def rebuild_tickets(bind: Any) -> None:
    from helpdesk_common.text import one_line
    from ticket_svc.tickets import search

    last = _ZERO
    while True:
        tickets = bind.execute(text("SELECT id, subject, description FROM tickets WHERE id > :last ORDER BY id "
                                    "LIMIT :n"), {"last": last, "n": BATCH}).all()
        if not tickets:
            return
        ids = [t.id for t in tickets]
        public: dict[Any, list[str]] = defaultdict(list)
        internal: dict[Any, list[str]] = defaultdict(list)
        for m in bind.execute(text(
                "SELECT ticket_id, public, body_text, ARRAY(SELECT a->>'filename' FROM jsonb_array_elements(attachments) a) "
                "AS files FROM messages WHERE ticket_id = ANY(CAST(:ids AS uuid[])) ORDER BY created_at, id"),
                {"ids": ids}):
            (public if m.public else internal)[m.ticket_id].extend([m.body_text, *(f for f in m.files if f)])
        for merged in bind.execute(text("SELECT merged_into, subject FROM tickets "
                                        "WHERE merged_into = ANY(CAST(:ids AS uuid[]))"), {"ids": ids}):
            public[merged.merged_into].append(merged.subject)
        updates = []
        for t in tickets:
            subject = one_line(t.subject) or "(no subject)"
            updates.append({"id": t.id, "subject": subject, "search": search.document(
                subject=subject, public=[t.description, *public[t.id]], internal=internal[t.id])})
        bind.execute(text("UPDATE tickets SET subject = :subject, search = CAST(CAST(:search AS text) AS tsvector) "
                          "WHERE id = :id"), updates)
        last = tickets[-1].id


def resanitise_messages(bind: Any) -> None:
    from ticket_svc.conversation.sanitize import sanitize_html

    last = _ZERO
    while True:
        rows = bind.execute(text("SELECT id, body_html FROM messages WHERE id > :last AND body_html IS NOT NULL "
                                 "ORDER BY id LIMIT :n"), {"last": last, "n": BATCH * 5}).all()
        if not rows:
            return
        changed = [{"id": r.id, "html": clean} for r in rows if (clean := sanitize_html(r.body_html)) != r.body_html]
        if changed:
            bind.execute(text("UPDATE messages SET body_html = :html WHERE id = :id"), changed)
        last = rows[-1].id
