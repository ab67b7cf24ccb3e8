"""Migration 0024: the two indexes of a ticket's primary requester identity that no query reads
are gone (every insert and update of a ticket wrote them), and it goes down and up again."""

import uuid
from concurrent.futures import ThreadPoolExecutor

from alembic import command
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from helpdesk_common.migrate import alembic_config, ensure_database

DROPPED = {"ix_tickets_unlinked_identity", "ix_tickets_unlinked_identity_bidx"}
INDEXES = text("SELECT indexname FROM pg_indexes WHERE tablename = 'tickets'")


def migrate(url: str, revision: str, *, down: bool = False) -> None:
    def run() -> None:
        (command.downgrade if down else command.upgrade)(alembic_config("ticket_svc", url), revision)

    with ThreadPoolExecutor(1) as pool:
        pool.submit(run).result()


async def test_unread_identity_indexes_are_dropped_and_come_back_on_downgrade(infra):
    url = f"{infra.db_base}/t_ticket_svc_m24_{uuid.uuid4().hex[:8]}"
    await ensure_database(url)
    engine = create_async_engine(url)
    try:
        migrate(url, "0023")
        async with engine.connect() as conn:
            before = set((await conn.execute(INDEXES)).scalars())
        assert DROPPED <= before
        migrate(url, "head")
        async with engine.connect() as conn:
            assert set((await conn.execute(INDEXES)).scalars()) == before - DROPPED
        migrate(url, "0023", down=True)
        async with engine.connect() as conn:
            assert set((await conn.execute(INDEXES)).scalars()) == before
        migrate(url, "head")
    finally:
        await engine.dispose()
