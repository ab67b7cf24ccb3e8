"""Migration 0017 (tickets.change_xid): existing tickets read 0, every later write stamps its
transaction (inserts by default, any update by the trigger, also those that leave ``version``),
and it goes down and up again."""

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


INSERT = text("INSERT INTO tickets (id, subject, status, priority, requester, created_by, created_at, updated_at) "
              "VALUES (:id, 's', 'open', 'normal', '{}', 'api:k', now(), now())")


async def test_change_xid_stamps_every_write_and_migrates_down_and_up(infra):
    url = f"{infra.db_base}/t_ticket_svc_m17_{uuid.uuid4().hex[:8]}"
    await ensure_database(url)
    migrate(url, "0016")
    engine = create_async_engine(url)
    old, new = uuid.uuid4(), uuid.uuid4()
    try:
        async with engine.begin() as conn:
            await conn.execute(INSERT, {"id": old})
        migrate(url, "head")
        async with engine.begin() as conn:
            assert await conn.scalar(text("SELECT change_xid::text FROM tickets WHERE id = :id"), {"id": old}) == "0"
            await conn.execute(INSERT, {"id": new})
            inserted_by = await conn.scalar(text("SELECT pg_current_xact_id()::text"))
            assert await conn.scalar(text("SELECT change_xid::text FROM tickets WHERE id = :id"),
                                     {"id": new}) == inserted_by
        async with engine.begin() as conn:
            # an SLA projection's write: no version bump, still a change of the exported row
            await conn.execute(text("UPDATE tickets SET sla_state = 'red' WHERE id = :id"), {"id": old})
            updated_by = await conn.scalar(text("SELECT pg_current_xact_id()::text"))
        async with engine.connect() as conn:
            stamps = dict((await conn.execute(text("SELECT id, change_xid::text FROM tickets"))).all())
        assert stamps[old] == updated_by and int(updated_by) > int(inserted_by)
        migrate(url, "0016", down=True)
        migrate(url, "head")
        async with engine.connect() as conn:
            assert await conn.scalar(text("SELECT count(*) FROM tickets WHERE change_xid = '0'")) == 2
    finally:
        await engine.dispose()
