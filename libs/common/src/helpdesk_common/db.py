"""Async SQLAlchemy engine plumbing.

Hot paths use SQLAlchemy Core on an ``AsyncConnection`` (one transaction per request,
committed at the boundary); the ORM is left for places where its convenience is worth it.
"""

from __future__ import annotations

import weakref
from typing import Any

import orjson
from sqlalchemy import MetaData, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def new_metadata() -> MetaData:
    return MetaData(naming_convention=NAMING_CONVENTION)


async def driver_of(conn: AsyncConnection | Any) -> Any:
    """The asyncpg connection under ``conn``, in ``conn``'s transaction, for a hot statement
    without SQLAlchemy's per-statement work: compiling the text, adapting every parameter and
    wrapping every row cost sla-svc more CPU than the statements themselves (a profile under
    intake: 40 % of the process in SQLAlchemy). Statements run here use ``$n`` parameters and
    the connection's own codecs, the ones SQLAlchemy's ``text()`` statements use too (its jsonb
    codec takes the JSON text), so values go in and come out alike; rows come back as
    ``RecordRow`` (read by attribute, as SQLAlchemy's rows are). Errors are asyncpg's.

    SQLAlchemy begins the driver's transaction lazily, at its first statement; when none has
    run yet, it is begun here with the BEGIN that statement would have sent (SQLAlchemy's own
    transaction first, so its commit or rollback ends the driver's): one round trip where a
    trivial first statement cost two, once per consumer batch. If that BEGIN fails, the trivial
    statement runs through SQLAlchemy after all, so the error is SQLAlchemy's and a dead pooled
    connection is invalidated (a failure later in the transaction is too: the rollback meets the
    closed connection). A connection that is already asyncpg's (a raw consumer's) is returned
    as it is."""
    if not isinstance(conn, AsyncConnection):
        return conn
    raw = await conn.get_raw_connection()
    driver = raw.driver_connection
    if not driver.is_in_transaction():
        await _begin_on_driver(conn, raw.dbapi_connection, driver)
    return driver


async def _begin_on_driver(conn: AsyncConnection, adapted: Any, driver: Any) -> None:
    """Begin ``conn``'s transaction on the driver as SQLAlchemy's asyncpg adapter does before its
    first statement (its ``_start_transaction``: the isolation level and read-only setting the
    connection was given; nothing under autocommit). A private method of SQLAlchemy's, pinned
    with it (``test_driver_of.py`` fails if it changes); without it, the trivial statement.

    A BEGIN that fails or is cancelled on a live connection may leave asyncpg believing a
    transaction is open that SQLAlchemy's adapter does not know (its commit and the pool's reset
    would then end nothing): that connection is invalidated, never pooled again. On a closed
    one the trivial statement raises SQLAlchemy's error for it, which invalidates it too."""
    start = getattr(adapted, "_transaction", False) is None and getattr(adapted, "_start_transaction", None)
    if not start:
        await conn.exec_driver_sql("SELECT 1")
        return
    if not conn.in_transaction():
        await conn.begin()  # SQLAlchemy's transaction; the asyncpg dialect's do_begin sends nothing
        if adapted._transaction is not None:  # a listener of SQLAlchemy's begin ran a statement
            return
    try:
        await start()
    except Exception:
        if driver.is_closed():
            await conn.exec_driver_sql("SELECT 1")  # raises SQLAlchemy's error for it, invalidating it
        await conn.invalidate()
        raise
    except BaseException:  # cancelled mid-BEGIN
        await conn.invalidate()
        raise


async def driver_read(conn: AsyncConnection | Any, query: str, *args: Any) -> list[Any]:
    """One read statement on the driver connection: in ``conn``'s transaction when SQLAlchemy
    has begun one, else in autocommit (a single statement reads one snapshot either way) with
    no BEGIN, trivial first statement and ROLLBACK around it. A connection that died under it
    is invalidated, as SQLAlchemy would, so the pool does not hand it out again."""
    if not isinstance(conn, AsyncConnection) or conn.in_transaction():
        return await (await driver_of(conn)).fetch(query, *args)
    driver = (await conn.get_raw_connection()).driver_connection
    try:
        return await driver.fetch(query, *args)
    except Exception:
        if driver.is_closed():
            await conn.invalidate()
        raise


class RecordRow:
    """An asyncpg record read by attribute (``row.ticket_id``), by name or by position, like
    the SQLAlchemy rows the code around it already takes."""

    __slots__ = ("_record",)

    def __init__(self, record: Any) -> None:
        self._record = record

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name == "_record":  # copy/pickle probing an empty instance
            raise AttributeError(name)
        try:
            return self._record[name]
        except KeyError:
            raise AttributeError(name) from None

    def __reduce__(self) -> Any:
        return RecordRow, (dict(self._record.items()),)

    def __eq__(self, other: object) -> bool:
        return tuple(self) == tuple(other) if isinstance(other, (RecordRow, tuple)) else NotImplemented

    def __hash__(self) -> int:
        return hash(tuple(self))

    def _asdict(self) -> dict[str, Any]:
        return dict(self._record.items())

    @property
    def _fields(self) -> tuple[str, ...]:
        return tuple(self._record.keys())

    def __getitem__(self, key: Any) -> Any:
        return self._record[key]

    def __iter__(self) -> Any:
        return iter(self._record.values())

    def __len__(self) -> int:
        return len(self._record)

    @property
    def _mapping(self) -> dict[str, Any]:
        return dict(self._record.items())

    def __repr__(self) -> str:
        return f"RecordRow({dict(self._record.items())!r})"


def create_engine(url: str, *, pool_size: int = 20, max_overflow: int = 0, pool_timeout: float = 10.0) -> AsyncEngine:
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_timeout=pool_timeout,
        pool_recycle=1800,
        connect_args={"server_settings": {"timezone": "UTC"}},
    )


async def _init_raw_connection(conn) -> None:  # type: ignore[no-untyped-def]
    for name in ("json", "jsonb"):
        await conn.set_type_codec(
            name, schema="pg_catalog", encoder=lambda v: orjson.dumps(v).decode(), decoder=orjson.loads, format="text"
        )


#: raw-pool connections whose session holds state beyond a transaction (``holds_session_state``)
_SESSION_STATE: weakref.WeakSet[Any] = weakref.WeakSet()


def holds_session_state(conn: Any) -> None:
    """Mark a connection of a raw pool whose session is about to hold state that outlives a
    transaction: a session-level advisory lock (``pg_advisory_lock``, ``pg_try_advisory_lock``),
    ``LISTEN``, a ``SET`` without ``LOCAL``. It then gets asyncpg's full reset when it goes back
    to the pool (``_reset_if_marked``). Call it *before* the statement: a task cancelled right
    after it still leaves the lock for the reset to drop. The rule is checked by
    libs/common/tests/test_raw_pool_reset.py, which fails on such a statement in a module that
    never calls this."""
    _SESSION_STATE.add(getattr(conn, "_con", None) or conn)  # a pool's proxy, or the connection


async def _reset_if_marked(conn: Any) -> None:
    """The raw pools' reset. asyncpg's default sends ``pg_advisory_unlock_all(); CLOSE ALL;
    UNLISTEN *; RESET ALL`` on every release: one more round trip per request, 7 % of
    ticket-svc's samples under search (docs/performance.md, round 5) for state no request
    leaves. Before calling this, the pool has already rolled back an open transaction and
    dropped the connection's client-side listeners; only a marked connection needs the rest."""
    if conn in _SESSION_STATE:
        _SESSION_STATE.discard(conn)
        if query := conn.get_reset_query():  # empty on a server without these features
            await conn.execute(query)


async def create_raw_pool(url: str, *, size: int, server_settings: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    """An asyncpg pool on the same database as the engine (jsonb as Python values);
    ``server_settings`` adds session settings (e.g. a read-model rebuild's ``search_path``)."""
    import asyncpg

    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    return await asyncpg.create_pool(
        dsn, min_size=size, max_size=size, init=_init_raw_connection, reset=_reset_if_marked,
        server_settings={"timezone": "UTC", **(server_settings or {})},
    )
