"""Migration 0024: the two indexes of a ticket's primary requester identity that no query reads
are gone (every insert and update of a ticket wrote them), and it goes down and up again."""

import uuid
from concurrent.futures import ThreadPoolExecutor

from alembic import command
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from helpdesk_common.migrate import alembic_config, ensure_database

DROPPED = {"ix_tickets_unlinked_identity", "ix_tickets_unlinked_identity_bidx"}
INDEXES = text("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'tickets'")


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
            before = dict((await conn.execute(INDEXES)).all())
        assert DROPPED <= before.keys()
        migrate(url, "0024")
        async with engine.connect() as conn:
            assert dict((await conn.execute(INDEXES)).all()) == {n: d for n, d in before.items() if n not in DROPPED}
        migrate(url, "0023", down=True)
        async with engine.connect() as conn:  # the same definitions back, not only the names
            assert dict((await conn.execute(INDEXES)).all()) == before
        migrate(url, "head")
    finally:
        await engine.dispose()
