"""Migration 0008 (reply delivery) goes down and up again on a database with messages."""

import uuid
from concurrent.futures import ThreadPoolExecutor

from alembic import command
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from helpdesk_common.migrate import alembic_config, ensure_database


def migrate(url: str, revision: str, *, down: bool = False) -> None:
    def run() -> None:
        (command.downgrade if down else command.upgrade)(alembic_config("ticket_svc", url), revision)

    with ThreadPoolExecutor(1) as pool:
        pool.submit(run).result()


async def test_downgrade_and_upgrade_keep_messages(infra):
    url = f"{infra.db_base}/t_ticket_svc_m8_{uuid.uuid4().hex[:8]}"
    await ensure_database(url)
    migrate(url, "0007")
    engine = create_async_engine(url)
    ticket_id = uuid.uuid4()
    try:
        async with engine.begin() as conn:
            await conn.execute(text(
                "INSERT INTO tickets (id, subject, status, priority, requester, created_by, created_at, updated_at) "
                "VALUES (:id, 's', 'open', 'normal', '{}', 'api:k', now(), now())"), {"id": ticket_id})
            await conn.execute(text(
                "INSERT INTO messages (id, ticket_id, author_kind, public, body_text, created_at) "
                "VALUES (:id, :t, 'agent', true, 'old reply', now())"), {"id": uuid.uuid4(), "t": ticket_id})
        migrate(url, "head")
        async with engine.connect() as conn:
            row = (await conn.execute(text("SELECT delivery_status, delivery_attempts FROM messages"))).one()
            assert tuple(row) == (None, None)  # replies from before were never sent: no state to show
            assert await conn.scalar(text("SELECT count(*) FROM reply_routes")) == 0
        migrate(url, "0007", down=True)
        migrate(url, "head")
        async with engine.connect() as conn:
            assert await conn.scalar(text("SELECT count(*) FROM messages")) == 1
    finally:
        await engine.dispose()
