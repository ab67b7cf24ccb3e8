"""``db.driver_of``: statements on the driver connection belong to the SQLAlchemy connection's
transaction (also as its first statement), and values go in and come out as ``text()``'s do."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import asyncpg
import pytest
from sqlalchemy import event, text

from helpdesk_common.db import RecordRow, create_engine, driver_of, driver_read
from helpdesk_common.migrate import ensure_database


@pytest.fixture
async def engine(infra):  # type: ignore[no-untyped-def]
    url = f"{infra.db_base}/t_driver_{uuid.uuid4().hex[:8]}"
    await ensure_database(url)
    engine = create_engine(url, pool_size=1)
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE t (id uuid PRIMARY KEY, tags text[], doc jsonb, at timestamptz)"))
    yield engine
    await engine.dispose()


async def count(engine) -> int:  # type: ignore[no-untyped-def]
    async with engine.connect() as conn:
        return int(await conn.scalar(text("SELECT count(*) FROM t")))


async def test_a_first_statement_on_the_driver_is_in_the_transaction(engine) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(RuntimeError):
        async with engine.begin() as conn:
            # nothing ran through SQLAlchemy yet: its transaction has not begun on the driver
            driver = await driver_of(conn)
            assert driver.is_in_transaction()
            await driver.execute("INSERT INTO t (id) VALUES ($1)", uuid.uuid4())
            raise RuntimeError("roll back")
    assert await count(engine) == 0
    async with engine.begin() as conn:
        await conn.execute(text("SELECT 1"))
        await (await driver_of(conn)).execute("INSERT INTO t (id) VALUES ($1)", uuid.uuid4())
    assert await count(engine) == 1
    async with engine.begin() as conn:  # a driver error mid-transaction: it rolls back, whole
        await conn.execute(text("INSERT INTO t (id) VALUES (:id)"), {"id": uuid.uuid4()})
        driver = await driver_of(conn)
        with pytest.raises(asyncpg.UniqueViolationError):
            await driver.execute("INSERT INTO t (id) SELECT id FROM t LIMIT 1")
        await conn.rollback()
    assert await count(engine) == 1


async def test_a_dead_connection_is_invalidated_not_pooled_again(engine) -> None:  # type: ignore[no-untyped-def]
    async with engine.connect() as conn:
        pid = (await conn.get_raw_connection()).driver_connection.get_server_pid()
    killer = await asyncpg.connect(engine.url.set(drivername="postgresql").render_as_string(hide_password=False))
    try:
        await killer.execute("SELECT pg_terminate_backend($1, 5000)", pid)  # returns once it is gone
    finally:
        await killer.close()
    with pytest.raises(Exception):
        async with engine.connect() as conn:  # the pool's only connection: the dead one
            await (await driver_of(conn)).fetchval("SELECT 1")
    async with engine.connect() as conn:  # a fresh one
        assert await (await driver_of(conn)).fetchval("SELECT 1") == 1
        assert (await conn.get_raw_connection()).driver_connection.get_server_pid() != pid


def test_record_rows_copy_pickle_compare() -> None:
    import copy
    import pickle

    row = RecordRow({"a": 1, "b": "票"})
    assert copy.copy(row) == copy.deepcopy(row) == pickle.loads(pickle.dumps(row)) == row == (1, "票")
    assert hash(row) == hash((1, "票")) and row._asdict() == {"a": 1, "b": "票"} and row._fields == ("a", "b")
    assert row.a == 1 and row["b"] == "票"


async def test_values_go_in_and_come_out_as_through_text(engine) -> None:  # type: ignore[no-untyped-def]
    at = datetime(2026, 12, 3, 8, 30, tzinfo=UTC)
    doc = {"名": "张三", "n": [1, 2]}
    import orjson

    async with engine.begin() as conn:
        one, two = uuid.uuid4(), uuid.uuid4()
        await conn.execute(text("INSERT INTO t VALUES (:id, :tags, CAST(:doc AS jsonb), :at)"),
                           {"id": one, "tags": ["a", "票"], "doc": orjson.dumps(doc).decode(), "at": at})
        raw = await (await driver_of(conn)).fetchrow(
            "INSERT INTO t VALUES ($1, $2, CAST($3 AS jsonb), $4) RETURNING *", two, ["a", "票"],
            orjson.dumps(doc).decode(), at)
        row = RecordRow(raw)
        via_text = (await conn.execute(text("SELECT * FROM t WHERE id = :id"), {"id": one})).first()
    assert (row.tags, row.doc, row.at) == (via_text.tags, via_text.doc, via_text.at) == (["a", "票"], doc, at)
    assert row["id"] == row[0] == two and row._mapping["tags"] == ["a", "票"] and len(row) == 4
    with pytest.raises(AttributeError):
        row.missing  # noqa: B018


async def test_the_transaction_is_begun_with_one_round_trip_and_its_settings(engine) -> None:  # type: ignore[no-untyped-def]
    """The driver's transaction begins with the BEGIN alone (a trivial first statement through
    SQLAlchemy cost a second round trip), at the isolation level the connection was given, and
    SQLAlchemy's commit ends it."""
    async with engine.connect() as probe:
        driver = (await probe.get_raw_connection()).driver_connection
    seen: list[str] = []

    def log(record) -> None:  # type: ignore[no-untyped-def]
        seen.append(record.query)

    through_sqlalchemy: list[str] = []

    def before(_conn, _cursor, statement, *_args) -> None:  # type: ignore[no-untyped-def]
        through_sqlalchemy.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", before)
    driver.add_query_logger(log)
    try:
        async with engine.connect() as conn:  # not begun: SQLAlchemy's "commit as you go"
            assert (await driver_of(conn)) is driver and driver.is_in_transaction()
            await asyncio.sleep(0.05)  # query loggers run just after the statement
            assert [q.split()[0].rstrip(";") for q in seen] == ["BEGIN"], seen
            assert through_sqlalchemy == [], through_sqlalchemy  # the old trivial first statement
            await driver.execute("INSERT INTO t (id) VALUES ($1)", uuid.uuid4())
            await conn.commit()
            assert not driver.is_in_transaction()
    finally:
        driver.remove_query_logger(log)
        event.remove(engine.sync_engine, "before_cursor_execute", before)
    assert await count(engine) == 1
    serializable = engine.execution_options(isolation_level="SERIALIZABLE")
    async with serializable.begin() as conn:
        assert await (await driver_of(conn)).fetchval("SHOW transaction_isolation") == "serializable"
    with pytest.raises(RuntimeError):
        async with engine.begin() as conn:
            await (await driver_of(conn)).execute("INSERT INTO t (id) VALUES ($1)", uuid.uuid4())
            raise RuntimeError("roll back")
    assert await count(engine) == 1
    autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
    async with autocommit.connect() as conn:
        driver = await driver_of(conn)
        assert not driver.is_in_transaction()
        await driver.execute("INSERT INTO t (id) VALUES ($1)", uuid.uuid4())
    assert await count(engine) == 2


async def test_a_read_outside_a_transaction_begins_none(engine) -> None:  # type: ignore[no-untyped-def]
    seen: list[str] = []

    def log(record) -> None:  # type: ignore[no-untyped-def]
        seen.append(record.query)

    async with engine.connect() as conn:
        driver = (await conn.get_raw_connection()).driver_connection
        driver.add_query_logger(log)
        try:
            rows = await driver_read(conn, "SELECT 7 AS seven")
            await asyncio.sleep(0.05)  # query loggers run just after the statement
        finally:
            driver.remove_query_logger(log)
        assert rows[0]["seven"] == 7 and seen == ["SELECT 7 AS seven"], seen
        assert not driver.is_in_transaction() and not conn.in_transaction()
    async with engine.begin() as conn:  # inside an open transaction it reads in that transaction
        await (await driver_of(conn)).execute("INSERT INTO t (id) VALUES ($1)", uuid.uuid4())
        assert len(await driver_read(conn, "SELECT id FROM t")) == 1
        await conn.rollback()
    async with engine.execution_options(isolation_level="REPEATABLE READ").begin() as conn:
        # begun by SQLAlchemy, nothing sent yet: the read begins the driver's transaction (its snapshot)
        await driver_read(conn, "SELECT 1")
        assert (await conn.get_raw_connection()).driver_connection.is_in_transaction()
        assert (await driver_read(conn, "SHOW transaction_isolation"))[0][0] == "repeatable read"
    async with engine.connect() as conn:
        pid = (await conn.get_raw_connection()).driver_connection.get_server_pid()
    killer = await asyncpg.connect(engine.url.set(drivername="postgresql").render_as_string(hide_password=False))
    try:
        await killer.execute("SELECT pg_terminate_backend($1, 5000)", pid)  # returns once it is gone
    finally:
        await killer.close()
    with pytest.raises(Exception):
        async with engine.connect() as conn:  # the pool's only connection: the dead one
            await driver_read(conn, "SELECT 1")
    async with engine.connect() as conn:  # invalidated: a fresh one
        assert (await driver_read(conn, "SELECT 1 AS one"))[0]["one"] == 1
        assert (await conn.get_raw_connection()).driver_connection.get_server_pid() != pid


@pytest.mark.parametrize("failure", [RuntimeError("after the BEGIN"), asyncio.CancelledError()])
async def test_a_begin_that_fails_on_a_live_connection_invalidates_it(engine, failure) -> None:  # type: ignore[no-untyped-def]
    """asyncpg may then believe a transaction open that SQLAlchemy's adapter does not know, whose
    commit would end nothing: the connection must never be pooled again."""
    async with engine.connect() as conn:
        first = await conn.get_raw_connection()
        pid = first.driver_connection.get_server_pid()
        adapter = type(first.dbapi_connection)
        real = adapter._start_transaction

        async def begun_then_failed(self) -> None:  # type: ignore[no-untyped-def]
            await real(self)
            raise failure

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(adapter, "_start_transaction", begun_then_failed)
            with pytest.raises(type(failure)):
                await driver_of(conn)
    async with engine.begin() as conn:  # a fresh connection, whose commit commits
        driver = await driver_of(conn)
        assert driver.get_server_pid() != pid
        await driver.execute("INSERT INTO t (id) VALUES ($1)", uuid.uuid4())
    assert await count(engine) == 1
