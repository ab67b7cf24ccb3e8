"""The stream consumer's flush (on a bare asyncpg connection, as the consumer's) is one
statement that takes the append lock before it draws any ``seq`` (so seq order stays commit
order across replicas) and notifies at commit; the tail reads its rows without a transaction
around the read."""

from __future__ import annotations

import asyncio
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import asyncpg
import pytest
from sqlalchemy import event

from gateway.stream import repository
from gateway.stream.handlers import StreamBatch
from helpdesk_common.db import create_engine, create_raw_pool
from helpdesk_common.migrate import ensure_database, upgrade


@pytest.fixture
async def engine(infra):  # type: ignore[no-untyped-def]
    url = f"{infra.db_base}/t_gwstream_{uuid.uuid4().hex[:10]}"
    with ThreadPoolExecutor(1) as pool:  # alembic's env runs its own event loop
        pool.submit(lambda: (asyncio.run(ensure_database(url)), upgrade("gateway", url))).result()
    engine = create_engine(url, pool_size=3)
    yield engine
    await engine.dispose()


@pytest.fixture
async def raw_pool(engine):  # type: ignore[no-untyped-def]
    """The consumer's kind of connection (``ConsumerSpec(raw=True)``), on the same database."""
    pool = await create_raw_pool(engine.url.render_as_string(hide_password=False), size=1)
    yield pool
    await pool.close()


def row(n: int) -> dict:
    return dict(event_id=uuid.uuid4(), type="ticket.created", ticket_id=uuid.uuid4(), team_id=None,
                assignee_id=None, previous_team_id=None, previous_assignee_id=None,
                payload=f'{{"n": {n}, "subject": "打印机"}}', occurred_at=datetime.now(UTC))


def plain_url(engine) -> str:  # type: ignore[no-untyped-def]
    return engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


async def last_seq(conn: asyncpg.Connection) -> int:
    return int(await conn.fetchval("SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM stream_events_seq_seq"))


async def test_the_flush_draws_no_seq_before_it_holds_the_append_lock(engine, raw_pool) -> None:  # type: ignore[no-untyped-def]
    """A replica holding the lock makes the flush wait with no sequence value drawn; the rows
    then take consecutive seq values in the batch's order, and listeners are woken once."""
    holder = await asyncpg.connect(plain_url(engine))
    listener = await asyncpg.connect(plain_url(engine))
    woken: list[str] = []
    await listener.add_listener("stream_t", lambda *_args: woken.append(_args[3]))
    try:
        tx = holder.transaction()
        await tx.start()
        await holder.execute("SELECT pg_advisory_xact_lock($1)", repository.APPEND_LOCK_KEY)
        batch = StreamBatch("stream_t")
        rows = [row(n) for n in range(5)]

        async def flush() -> None:
            async with raw_pool.acquire() as conn, conn.transaction():
                await batch.begin(conn)
                for r in rows:
                    batch.add(conn, r)
                await batch.flush(conn)

        writer = asyncio.create_task(flush())
        await asyncio.sleep(0.5)
        assert not writer.done()
        assert await last_seq(listener) == 0  # nothing drawn while the lock is elsewhere
        await tx.commit()
        await asyncio.wait_for(writer, 10)
        stored = await listener.fetch("SELECT seq, event_id FROM stream_events ORDER BY seq")
        assert [r["event_id"] for r in stored] == [r["event_id"] for r in rows]
        assert [r["seq"] for r in stored] == list(range(stored[0]["seq"], stored[0]["seq"] + 5))
        async with asyncio.timeout(5):
            while not woken:
                await asyncio.sleep(0.02)
        await asyncio.sleep(0.1)  # and no second one
        assert woken == [""]
    finally:
        await holder.close()
        await listener.close()


async def test_the_flush_is_one_statement_and_a_redelivery_adds_nothing(engine, raw_pool) -> None:  # type: ignore[no-untyped-def]
    statements: list[str] = []

    def log(record) -> None:  # type: ignore[no-untyped-def]
        statements.append(record.query)

    batch = StreamBatch("stream_t")
    rows = [row(n) for n in range(3)]
    # the first pass prepares the statement (asyncpg reads the types it has not met yet); the
    # next ones are the same events delivered again
    for attempt in range(3):
        async with raw_pool.acquire() as conn, conn.transaction():
            if attempt:
                conn.add_query_logger(log)
            try:
                await batch.begin(conn)
                for r in rows:
                    batch.add(conn, r)
                await batch.flush(conn)
                await asyncio.sleep(0.05)  # query loggers run just after the statement
            finally:
                conn.remove_query_logger(log)
        assert not attempt or len(statements) == 1, statements
        assert not attempt or ("pg_advisory_xact_lock" in statements[0] and "pg_notify" in statements[0])
        statements.clear()
    async with engine.connect() as conn:
        assert len(await repository.rows_after(conn, after=0, limit=10)) == 3


async def test_the_tails_read_runs_on_either_connection_without_sqlalchemy(engine, raw_pool) -> None:  # type: ignore[no-untyped-def]
    """The hub reads the tail on the raw pool (once per NOTIFY); the same reads work on a
    SQLAlchemy connection (``current_tail``) without a transaction and without sending anything
    through SQLAlchemy."""
    async with raw_pool.acquire() as conn, conn.transaction():
        batch = StreamBatch("stream_t")
        await batch.begin(conn)
        batch.add(conn, row(1))
        await batch.flush(conn)
    async with raw_pool.acquire() as conn:
        found = await repository.rows_after(conn, after=0, limit=10)
        newest = await repository.newest_seq(conn)
    assert [r.payload for r in found] == [{"n": 1, "subject": "打印机"}] and newest == found[0].seq
    through_sqlalchemy: list[str] = []

    def before(_conn, _cursor, statement, *_args) -> None:  # type: ignore[no-untyped-def]
        through_sqlalchemy.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", before)
    try:
        async with engine.connect() as conn:
            again = await repository.rows_after(conn, after=0, limit=10)
            assert await repository.newest_seq(conn) == newest
            driver = (await conn.get_raw_connection()).driver_connection
            assert not driver.is_in_transaction() and not conn.in_transaction()
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", before)
    assert [r.payload for r in again] == [{"n": 1, "subject": "打印机"}] and through_sqlalchemy == []


async def test_a_batch_of_links_alone_wakes_no_stream(engine, raw_pool) -> None:  # type: ignore[no-untyped-def]
    """``ticket.customer_linked`` is no stream event: a batch with links only writes them and
    sends no NOTIFY (every replica's hub would read the tail for nothing)."""
    listener = await asyncpg.connect(plain_url(engine))
    woken: list[str] = []
    await listener.add_listener("stream_t", lambda *_args: woken.append(_args[3]))
    try:
        batch = StreamBatch("stream_t")
        ticket, customer = uuid.uuid4(), uuid.uuid4()
        async with raw_pool.acquire() as conn, conn.transaction():
            await batch.begin(conn)
            batch.link(conn, ticket, customer)
            await batch.flush(conn)
        assert dict(await listener.fetch("SELECT ticket_id, customer_id FROM stream_ticket_customers")) == {
            ticket: customer}
        async with raw_pool.acquire() as conn, conn.transaction():
            await batch.begin(conn)
            batch.add(conn, row(1))
            await batch.flush(conn)
        async with asyncio.timeout(5):
            while not woken:
                await asyncio.sleep(0.02)
        await asyncio.sleep(0.1)
        assert woken == [""]  # the batch with a row only
    finally:
        await listener.close()
