"""Migration 0006 on rows written before it: public message counts, subjects cleaned, HTML
re-sanitised, search vectors rebuilt with weights and folding (issue 9, "Also fix" 1-4)."""

import asyncio
import uuid
from concurrent.futures import ThreadPoolExecutor

from alembic import command
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from helpdesk_common.migrate import alembic_config, ensure_database


def migrate(url: str, revision: str) -> None:
    def run() -> None:
        command.upgrade(alembic_config("ticket_svc", url), revision)

    with ThreadPoolExecutor(1) as pool:
        pool.submit(run).result()


async def test_upgrade_fixes_rows_written_before(infra):
    url = f"{infra.db_base}/t_ticket_svc_m6_{uuid.uuid4().hex[:8]}"
    await ensure_database(url)
    migrate(url, "0005")
    engine = create_async_engine(url)
    old, source = uuid.uuid4(), uuid.uuid4()
    try:
        async with engine.begin() as conn:
            for ticket_id, subject, merged_into in ((old, "ＶＰＮ\r\nBcc: x@example.com\u202e down", None),
                                                    (source, "Merged away", old)):
                await conn.execute(text(
                    "INSERT INTO tickets (id, subject, description, status, priority, requester, created_by, "
                    "created_at, updated_at, message_count, merged_into, search) VALUES (:id, :s, 'printer smoke', "
                    "'open', 'normal', '{}', 'api:k', now(), now(), 3, :m, array_to_tsvector('{vpn,down,secretword}'))"),
                    {"id": ticket_id, "s": subject, "m": merged_into})
            for public, body, html in ((True, "hello", '<p>hi</p><img src="https://t.example/p.gif" alt="x">'),
                                       (False, "secretword in a note", None),
                                       (True, "second", '<img src="cid:a@b">')):
                await conn.execute(text(
                    "INSERT INTO messages (id, ticket_id, author_kind, public, body_text, body_html, created_at, "
                    "attachments) VALUES (:id, :t, 'agent', :p, :b, :h, clock_timestamp(), "
                    "CAST(:a AS jsonb))"),
                    {"id": uuid.uuid4(), "t": old, "p": public, "b": body, "h": html,
                     "a": '[{"filename": "invoice.pdf"}]' if public else "[]"})
        migrate(url, "head")
        async with engine.connect() as conn:
            row = (await conn.execute(text("SELECT subject, public_message_count, message_count, search::text AS v "
                                           "FROM tickets WHERE id = :id"), {"id": old})).one()
            html = (await conn.execute(text("SELECT array_agg(body_html ORDER BY created_at) FROM messages"))).scalar()

            async def matches(query: str) -> bool:
                return bool(await conn.scalar(text("SELECT search @@ CAST(:q AS tsquery) FROM tickets WHERE id = :id"),
                                              {"q": query, "id": old}))

            assert row.subject == "ＶＰＮ Bcc: x@example.com down"  # cleaned, letters untouched
            assert (row.public_message_count, row.message_count) == (2, 3)
            assert html == ['<p>hi</p><img alt="x">', None, '<img src="cid:a@b">']
            assert await matches("'vpn':A")  # folded subject, weight A
            assert await matches("'secretword':C") and not await matches("'secretword':AB")  # a note is internal
            assert await matches("'invoice':B & 'smoke':B & 'merged':B")  # files, description, merged subject
    finally:
        await engine.dispose()
