"""Transactional outbox: the event row is written in the same transaction as the state change.

The relay publishes unsent rows in sequence order with acks=all, marks them sent in the same
database transaction that claimed them, and re-scans from the oldest unsent row on every
start, so a crash between publish and mark never loses a row. Such a row is not published twice
either: the next pass finds it on the topic (``_skip_published``), and on Apache Kafka each pass
is one Kafka transaction that the replica's next producer aborts if it was left open, while the
consumers read committed records only (docs/kafka.md "Exactly one record per row"); the
consumers' inboxes dedupe by event id all the same. One relay per database is active at a time
(advisory lock), which keeps the per-key order of the log.

A row that cannot be published because of the row itself (too large for the producer or the
broker, not serialisable), or that keeps failing while the rows around it are acknowledged, is
dead-lettered: it stays in the table with ``failed_at`` and ``error`` set and the queue moves
on, so one bad event can no longer hold back every later one. A failure of every row of a pass
is a broker outage and is retried without limit, as before. ``python -m
helpdesk_common.outbox_admin replay`` puts dead-lettered rows back in the queue. The backlog
and dead-letter gauges are read from the database by their own loop, so they keep moving
while publishing fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter as Tally
from collections.abc import AsyncIterator, Iterator
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.producer.transaction_manager import TransactionState
from aiokafka.errors import (
    CorruptRecordException,
    InvalidProducerEpoch,
    InvalidProducerIdMapping,
    MessageSizeTooLargeError,
    OutOfOrderSequenceNumber,
    ProducerFenced,
    RecordTooLargeError,
    UnknownProducerId,
)
import orjson
from pydantic import BaseModel
from prometheus_client import Counter, Gauge
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    Text,
    Uuid,
    bindparam,
    delete,
    func,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from . import events, tracing
from .kafka import (
    broker_profile,
    delivery_timeout_s,
    ensure_topics,
    isolation_level,
    new_producer,
    recent_event_ids,
    relay_transactional_id,
    transactional_relay,
)
from .db import RecordRow, driver_of
from .observability import Children
from .problems import Problem
from .settings import ServiceSettings

log = logging.getLogger(__name__)

OUTBOX_BACKLOG = Gauge("outbox_backlog", "Outbox rows not yet published (dead-lettered rows excluded)")
OUTBOX_PUBLISHED = Counter("outbox_published_total", "Outbox rows published", ["topic"])
OUTBOX_PUBLISHED_BY = Children(OUTBOX_PUBLISHED)  # per row: its children looked up once
OUTBOX_OLDEST_AGE = Gauge(
    "outbox_oldest_unsent_age_seconds", "Age of the oldest unsent outbox row (dead-lettered rows excluded)"
)
OUTBOX_DEAD_LETTERED = Counter(
    "outbox_dead_lettered_total", "Outbox rows set aside after a per-record publish failure", ["topic", "reason"]
)
OUTBOX_DEAD = Gauge("outbox_dead_letters", "Dead-lettered outbox rows present (waiting for a replay)")
OUTBOX_REPUBLISH_SKIPPED = Counter(
    "outbox_republish_skipped_total",
    "Outbox rows an interrupted relay pass had published, found on the topic and marked sent instead of sent twice",
    ["topic"],
)

#: records read beyond the uncertain rows' count at the end of each partition (``_skip_published``);
#: with transactions, markers and aborted passes' records take offsets too (a pass's worth: 500)
TAIL_MARGIN = 1000
_RELAY_LOCK_ID = 0x6F7574626F78  # "outbox"; one database per service, so one id suffices

#: Errors that are about the record, not the broker: retrying cannot help, so the row is
#: dead-lettered at once. aiokafka raises MessageSizeTooLargeError from ``send`` itself when the
#: record exceeds ``max_request_size``; the broker answers MESSAGE_SIZE_TOO_LARGE (the same
#: class) or CORRUPT_MESSAGE for the batch; TypeError / ValueError are serialisation failures.
#: Other non-retriable Kafka errors (authorization, unsupported versions) concern every record
#: alike, so they block and retry like an outage and show up as a stuck outbox.
RECORD_ERRORS: tuple[type[BaseException], ...] = (
    MessageSizeTooLargeError,
    RecordTooLargeError,
    CorruptRecordException,
    TypeError,
    ValueError,
)

#: Errors about the idempotent producer's state on the broker, not about a row: after a broker
#: is killed, its partitions' new leaders may answer OUT_OF_ORDER_SEQUENCE_NUMBER (or an unknown
#: producer id) for every batch that producer sends them. Only a new producer (a new producer id)
#: gets past it, so the pass is abandoned like an outage: the producer is rebuilt and the rows are
#: sent again, none counted against. Counted as row failures, they dead-lettered 379 ticket.created
#: rows in fault-suite run 6 (docs/kafka.md), whose tickets were never linked to their customers.
PRODUCER_STATE_ERRORS: tuple[type[BaseException], ...] = (
    OutOfOrderSequenceNumber,
    UnknownProducerId,
    InvalidProducerEpoch,
    InvalidProducerIdMapping,
    ProducerFenced,
)



class TransactionAborted(Exception):
    """A row acknowledged inside a relay transaction that was then aborted (another row of the
    pass failed): it is not on the topic for any consumer and goes out again with the next pass,
    without an attempt counted against it."""


#: Hard cap on one encoded event (``EVENT_MAX_BYTES``); the Runtime sets it from the settings.
_max_event_bytes = ServiceSettings.model_fields["event_max_bytes"].default


def set_max_event_bytes(limit: int) -> None:
    """Called once per process by the app Runtime (enqueue has no settings at hand)."""
    global _max_event_bytes
    _max_event_bytes = limit


class EventTooLarge(Problem):
    """An event would exceed ``EVENT_MAX_BYTES``: the write that caused it is refused (422)
    rather than committed with an event that no consumer would ever receive."""

    def __init__(self, event_type: str, size: int, limit: int) -> None:
        super().__init__(
            422, "event-too-large", "Change too large to announce",
            f"The {event_type} event for this change would be {size} bytes; events are limited to "
            f"{limit} bytes. Shorten the largest values (custom fields, names) and retry.",
            event_type=event_type, size=size, limit=limit,
        )


def outbox_table(metadata: MetaData) -> Table:
    table = Table(
        "outbox",
        metadata,
        Column("seq", BigInteger, primary_key=True, autoincrement=True),
        Column("event_id", Uuid, nullable=False, unique=True),
        Column("event_type", Text, nullable=False),
        Column("topic", Text, nullable=False),
        Column("key", Text, nullable=False),
        Column("payload", LargeBinary, nullable=False),
        Column("traceparent", Text, nullable=True),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("sent_at", DateTime(timezone=True), nullable=True),
        # publish failures: attempts and the last error; failed_at set = dead-lettered (kept,
        # skipped by the relay until replayed)
        Column("attempts", Integer, nullable=False, server_default=text("0")),
        Column("error", Text, nullable=True),
        Column("failed_at", DateTime(timezone=True), nullable=True),
    )
    # the relay's claim scans this one; dead rows are out of it, so they cost the hot path nothing
    Index("ix_outbox_unsent", table.c.seq, postgresql_where=text("sent_at IS NULL AND failed_at IS NULL"))
    Index("ix_outbox_dead", table.c.seq, postgresql_where=text("failed_at IS NOT NULL"))
    return table


def create_outbox_table(op: Any) -> None:
    """Migration step for a service that gets an outbox: the table and its indexes exactly as
    ``outbox_table`` defines them (one DDL for every service, not a copy per migration)."""
    from .db import new_metadata

    outbox_table(new_metadata()).create(op.get_bind())


def drop_outbox_table(op: Any) -> None:
    op.drop_table("outbox")


def upgrade_outbox_dead_letters(op: Any, table: str = "outbox") -> None:
    """Migration step every service with an outbox runs (one DDL, shared): the dead-letter
    columns, and the unsent index narrowed to rows the relay may still publish."""
    import sqlalchemy as sa

    op.add_column(table, sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False))
    op.add_column(table, sa.Column("error", sa.Text(), nullable=True))
    op.add_column(table, sa.Column("failed_at", sa.DateTime(timezone=True), nullable=True))
    op.drop_index("ix_outbox_unsent", table_name=table)
    op.create_index("ix_outbox_unsent", table, ["seq"], postgresql_where=sa.text("sent_at IS NULL AND failed_at IS NULL"))
    op.create_index("ix_outbox_dead", table, ["seq"], postgresql_where=sa.text("failed_at IS NOT NULL"))


def downgrade_outbox_dead_letters(op: Any, table: str = "outbox") -> None:
    import sqlalchemy as sa

    op.drop_index("ix_outbox_dead", table_name=table)
    op.drop_index("ix_outbox_unsent", table_name=table)
    op.create_index("ix_outbox_unsent", table, ["seq"], postgresql_where=sa.text("sent_at IS NULL"))
    op.drop_column(table, "failed_at")
    op.drop_column(table, "error")
    op.drop_column(table, "attempts")


def outbox_row(event: BaseModel, *, traceparent: str | None = None) -> dict[str, Any]:
    """The outbox row of ``event``; its ``traceparent`` is the current span's unless given, so
    the relay publishes it in the trace of the request or event that wrote it (tracing.py)."""
    event_type = event.type  # type: ignore[attr-defined]
    if traceparent is None:
        traceparent = tracing.current_traceparent()
    return {
        "event_id": event.id,  # type: ignore[attr-defined]
        "event_type": event_type,
        "topic": events.TOPIC_BY_TYPE[event_type],
        "key": event.subject,  # type: ignore[attr-defined]
        "payload": events.encode(event),
        "traceparent": traceparent,
    }


_INSERT_SQL: dict[str, Any] = {}


def _insert_statement(table: Table) -> Any:
    """A prepared-once textual INSERT: building a Core insert per call costs more CPU than
    the database round trip on the intake path (measured: ~1.4x slower per transaction)."""
    stmt = _INSERT_SQL.get(table.name)
    if stmt is None:
        stmt = text(
            f"INSERT INTO {table.name} (event_id, event_type, topic, key, payload, traceparent) "
            "VALUES (:event_id, :event_type, :topic, :key, :payload, :traceparent)"
        ).bindparams(bindparam("payload", type_=LargeBinary), bindparam("event_id", type_=Uuid))
        _INSERT_SQL[table.name] = stmt
    return stmt


def _unnest_sql(table_name: str, cast: str) -> str:
    """One INSERT for several rows, from parallel arrays (``cast`` formats a parameter and its
    array type: asyncpg's ``$n::type[]`` or SQLAlchemy's ``CAST(:name AS type[])``). One
    statement instead of one execution per row; ``ORDER BY`` the arrays' ordinality keeps the
    rows' ``seq`` in the order given, which the relay publishes in."""
    columns = ", ".join(cast(i, name, kind) for i, (name, kind) in enumerate(_ARRAYS, start=1))
    return (f"INSERT INTO {table_name} (event_id, event_type, topic, key, payload, traceparent) "
            "SELECT u.event_id, u.event_type, u.topic, u.key, u.payload, u.traceparent "
            f"FROM unnest({columns}) WITH ORDINALITY "
            "AS u(event_id, event_type, topic, key, payload, traceparent, n) ORDER BY u.n")


_ARRAYS = (("event_id", "uuid"), ("event_type", "text"), ("topic", "text"), ("key", "text"),
           ("payload", "bytea"), ("traceparent", "text"))
_UNNEST_SQL: dict[tuple[str, bool], Any] = {}


def _unnest_statement(table: Table, *, raw: bool) -> Any:
    stmt = _UNNEST_SQL.get((table.name, raw))
    if stmt is None:
        if raw:
            stmt = _unnest_sql(table.name, lambda i, _name, kind: f"${i}::{kind}[]")
        else:
            stmt = text(_unnest_sql(table.name, lambda _i, name, kind: f"CAST(:{name} AS {kind}[])"))
        _UNNEST_SQL[(table.name, raw)] = stmt
    return stmt


def _columns(rows: Sequence[dict[str, Any]]) -> list[list[Any]]:
    return [[r[name] for r in rows] for name, _ in _ARRAYS]


class OutboxWrites:
    """Whether a unit of work (a request's transaction, a consumer's batch) wrote outbox rows."""

    __slots__ = ("wrote",)

    def __init__(self) -> None:
        self.wrote = False


_WRITES: ContextVar[OutboxWrites | None] = ContextVar("outbox_writes", default=None)


@contextlib.contextmanager
def watching_writes() -> Iterator[OutboxWrites]:
    """Notes whether the work inside writes outbox rows (``note_write``), so the relay is woken
    after its commit only then. Woken after every transaction, the relay made a pass (a
    transaction, the advisory lock, the pending-rows query) after every request and consumer batch
    of its service, nearly all of them finding nothing: one notify-svc pass for every two tickets
    in ``bench/profile.py``, 16 % of that process's samples. A unit inside another shares the
    outer one's record. A write this misses is published at the relay's next poll
    (``relay_poll_interval_s``), never lost."""
    current = _WRITES.get()
    if current is not None:
        yield current
        return
    writes = OutboxWrites()
    token = _WRITES.set(writes)
    try:
        yield writes
    finally:
        try:
            _WRITES.reset(token)
        except ValueError:  # left in another context than it was entered in: forget it there
            _WRITES.set(None)


def note_write() -> None:
    """Every writer of outbox rows calls this (the functions below, and sla-svc's firing loop,
    which writes its rows with its own statement)."""
    writes = _WRITES.get()
    if writes is not None:
        writes.wrote = True


def _checked_rows(evts: Sequence[BaseModel]) -> list[dict[str, Any]]:
    """Outbox rows of ``evts``, refusing one above ``EVENT_MAX_BYTES`` (a length check on the
    bytes already encoded for the row: no extra work on the intake path)."""
    rows = [outbox_row(e) for e in evts]
    limit = _max_event_bytes
    for row in rows:
        if len(row["payload"]) > limit:
            raise EventTooLarge(row["event_type"], len(row["payload"]), limit)
    return rows


async def enqueue(conn: AsyncConnection, table: Table, *evts: BaseModel) -> None:
    """Add events to the outbox inside the caller's transaction; EventTooLarge (422) if one
    is above ``EVENT_MAX_BYTES``."""
    await insert_rows(conn, table, outbox_rows(*evts))


def outbox_rows(*evts: BaseModel) -> list[dict[str, Any]]:
    """The outbox rows of ``evts`` as of now (the current span's trace context, the size
    check), for a caller that writes them later in the same transaction (``insert_rows``)."""
    return _checked_rows(evts)


async def insert_rows(conn: AsyncConnection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Write rows made by ``outbox_rows``, in their order."""
    if rows:
        note_write()
    if len(rows) == 1:
        await conn.execute(_insert_statement(table), rows[0])
    elif rows:
        await conn.execute(_unnest_statement(table, raw=False),
                           dict(zip((name for name, _ in _ARRAYS), _columns(rows))))


#: the most bytes the fields a statement splices into an event (``insert_from_sql``'s
#: ``data_from``) can add to it, counted in its size check: each is a number, a uuid or a
#: short text of the row
SPLICED_FIELD_MAX_BYTES = 256


def insert_from_sql(table: Table, *, source: str, first: int, data_from: Sequence[str] = ()) -> str:
    """An INSERT of one outbox row for each row of ``source`` (a CTE of the caller's statement),
    its columns the parameters ``$first`` .. ``$first + 5`` (``insert_from_params``): the event
    goes in the statement whose change it announces, and only when that statement changed a row.
    The caller calls ``note_write`` when it did.

    ``data_from``: fields of the event's ``data`` that the statement decides (a number from a
    sequence, a link found by a lookup): the payload parameter is the event's JSON up to the end
    of its ``data`` object's other fields, and each of these follows as PostgreSQL's JSON of the
    ``source`` column of that name (``to_json``), then the two closing braces. The payload's own
    bytes stay orjson's: a ``jsonb`` round trip writes numbers without exponents (``5e-324`` in
    326 characters), past the size check the event passed."""
    payload = f"${first + 4}::bytea"
    if data_from:
        assert all(name.isidentifier() for name in data_from), data_from
        fields = " || ".join(f"',\"{name}\":' || coalesce(to_json({source}.{name})::text, 'null')"
                             for name in data_from)
        payload = f"{payload} || convert_to({fields} || '}}}}', 'UTF8')"
    return (f"INSERT INTO {table.name} (event_id, event_type, topic, key, payload, traceparent) "
            f"SELECT ${first}::uuid, ${first + 1}::text, ${first + 2}::text, ${first + 3}::text, "
            f"{payload}, ${first + 5}::text FROM {source}")


def insert_from_params(event: BaseModel, *, data_from: Sequence[str] = ()) -> list[Any]:
    """The parameters of ``insert_from_sql`` for ``event`` as of now (the current span's trace
    context; EventTooLarge above ``EVENT_MAX_BYTES``). With ``data_from`` (the same names as the
    statement's), the payload leaves those fields of ``data`` and its closing braces to the
    statement: ``data`` goes last in the envelope, and its other fields before them."""
    if not data_from:
        row = _checked_rows([event])[0]
        return [row["event_id"], row["event_type"], row["topic"], row["key"], row["payload"], row["traceparent"]]
    document = event.model_dump(mode="json")
    data = document.pop("data")
    for name in data_from:
        data.pop(name, None)
    assert data, "the spliced fields follow at least one of the event's own"
    document["data"] = data
    payload = orjson.dumps(document)
    event_type = event.type  # type: ignore[attr-defined]
    size = len(payload) + len(data_from) * SPLICED_FIELD_MAX_BYTES
    if size > _max_event_bytes:
        raise EventTooLarge(event_type, size, _max_event_bytes)
    return [event.id, event_type, events.TOPIC_BY_TYPE[event_type], event.subject,  # type: ignore[attr-defined]
            payload[:-2], tracing.current_traceparent()]


def insert_many_sql(table: Table, *, first: int, after: str | None = None) -> str:
    """An INSERT of the rows of ``insert_many_params``, its six arrays the parameters ``$first``
    .. ``$first + 5``, in their order: for a CTE of the statement that writes the change these
    events announce, whose fields are all known before it runs (``insert_from_sql`` for those the
    statement decides). The caller calls ``note_write``.

    ``after``: another outbox-writing CTE of the statement whose rows go first (PostgreSQL runs
    sibling CTEs in no promised order; reading that one, here once before the first row, runs it
    to completion first, so its ``seq`` values are the lower ones)."""
    sql = _unnest_sql(table.name, lambda i, _name, kind: f"${first + i - 1}::{kind}[]")
    if after is not None:
        assert after.isidentifier(), after
        sql = sql.replace(" ORDER BY u.n", f" WHERE (SELECT count(*) FROM {after}) >= 0 ORDER BY u.n")
    return sql


def insert_many_params(*evts: BaseModel) -> list[list[Any]]:
    """The parameters of ``insert_many_sql`` for ``evts`` as of now (the current span's trace
    context; EventTooLarge above ``EVENT_MAX_BYTES``)."""
    return _columns(_checked_rows(evts))


def insert_rows_params(rows: Sequence[dict[str, Any]]) -> list[list[Any]]:
    """The parameters of ``insert_many_sql`` for rows made earlier by ``outbox_rows`` (their trace
    context is the one of when they were made)."""
    return _columns(rows)


async def enqueue_raw(conn: Any, table: Table, *evts: BaseModel) -> None:
    """``enqueue`` for a bare asyncpg connection (hot paths using ``raw_transaction``)."""
    rows = _checked_rows(evts)
    sql = (
        f"INSERT INTO {table.name} (event_id, event_type, topic, key, payload, traceparent) "
        "VALUES ($1, $2, $3, $4, $5, $6)"
    )
    if rows:
        note_write()
    if len(rows) == 1:
        r = rows[0]
        await conn.execute(sql, r["event_id"], r["event_type"], r["topic"], r["key"], r["payload"], r["traceparent"])
    elif rows:
        await conn.execute(_unnest_statement(table, raw=True), *_columns(rows))


class OutboxRelay:
    def __init__(
        self,
        *,
        engine: AsyncEngine,
        table: Table,
        settings: ServiceSettings,
        batch_size: int = 500,
        retention_s: float = 86_400.0,
        raw_pool: Any = None,
    ) -> None:
        self._engine = engine
        #: a callable returning an asyncpg pool (the runtime's one-connection relay pool): a pass
        #: then runs on one of its connections, without SQLAlchemy's checkout, greenlet and
        #: transaction per pass (a pass per commit under intake); None: on the engine
        self._raw_pool = raw_pool
        self._table = table
        self._settings = settings
        self._batch_size = batch_size
        self._retention_s = retention_s
        name = table.name
        #: the pending rows, each one ``uncertain`` when an earlier pass may have published it:
        #: its xmax as it was before this statement locks it is set (the subquery reads the row
        #: before the lock above it marks the row as ours: a pass locked it and never settled
        #: it), or it was written before the server last started. A row lock reaches the WAL
        #: buffers only, written out by the next commit of any session: a server killed before
        #: that (``-m immediate``, a crash) comes back with the row as no pass had touched it,
        #: while the relay, which needs no database to publish, went on (the fault suite's 8
        #: duplicate records in one CI run; ``test_bus.py`` reproduces it). Claimed only
        #: by the pass that holds the relay's advisory lock: an uncorrelated condition, so
        #: PostgreSQL takes the lock once, before the scan yields a row (a one-time filter), and
        #: a pass without it finds nothing and locks no row. One round trip where the lock was
        #: a statement of its own. The statement's snapshot is taken before that lock, so it
        #: may still show rows pending that the pass which held the lock last settled just
        #: before releasing it: locking a row reads its newest version (READ COMMITTED), whose
        #: ``pending`` the pass then reads, leaving the settled ones alone. (As a condition of
        #: the statement the planner took it for the scan of ``o``: the claim cost 3-14 times
        #: as much under intake, ``bench/profile.py --statements``.) A separate lock statement
        #: gave the claim a snapshot taken after the lock.
        self._claim_sql = (
            f"SELECT o.seq, o.topic, o.key, o.payload, o.traceparent, o.event_type, o.event_id, p.uncertain, "
            "o.sent_at IS NULL AND o.failed_at IS NULL AS pending "
            f"FROM {name} o JOIN (SELECT seq, xmax::text::bigint <> 0 OR created_at < pg_postmaster_start_time() "
            f"AS uncertain FROM {name} "
            f"WHERE sent_at IS NULL AND failed_at IS NULL AND (SELECT pg_try_advisory_xact_lock({_RELAY_LOCK_ID})) "
            "ORDER BY seq LIMIT $1) p ON o.seq = p.seq "
            "ORDER BY o.seq FOR UPDATE OF o SKIP LOCKED"
        )
        self._wake = asyncio.Event()
        self._producer: AIOKafkaProducer | None = None
        self._stopping = False
        self._topics_verified_at = 0.0  # reset on every error, so a reconnect always verifies
        #: how long a batch's acknowledgements are awaited: set with each producer from the broker
        #: (kafka.delivery_timeout_s), longer than the client's own retries
        self._ack_timeout_s = 10.0
        #: each pass is one Kafka transaction (kafka.transactional_relay): set with each producer
        self._transactional = False
        #: the producer whose Kafka transaction this pass began and has not ended (committed by
        #: ``publish_once`` after the mark, aborted by ``_publish`` after a failed ack). Kept
        #: when ``_close_producer`` (``stop()`` during a pass) aborts it, so the pass's commit
        #: finds a different producer, raises and rolls the mark back instead of skipping the
        #: commit and marking rows whose records were aborted (found in review)
        self._txn_producer: AIOKafkaProducer | None = None
        self._isolation = "read_uncommitted"
        self._verify_interval_s = 1.0
        self.healthy = False
        #: last values read by the gauge loop (also what /readyz reports; no query per probe)
        self.backlog = 0
        self.oldest_unsent_age_s = 0.0
        self.dead_letters = 0
        self.gauges_read_at: float | None = None  # monotonic; None until the first read

    def notify(self) -> None:
        """Called after a commit that wrote outbox rows: publish now instead of at the next poll."""
        self._wake.set()

    def stuck(self) -> bool:
        """The oldest unsent (not dead-lettered) row has waited longer than the threshold."""
        return self.oldest_unsent_age_s > self._settings.outbox_stuck_after_s

    async def run(self) -> None:
        gauges = asyncio.create_task(self._gauge_loop(), name="outbox-gauges")
        try:
            await self._publish_loop()
        finally:
            gauges.cancel()
            await asyncio.gather(gauges, return_exceptions=True)

    async def _publish_loop(self) -> None:
        backoff = 0.2
        while not self._stopping:
            try:
                if self._producer is None:
                    await ensure_topics(self._settings, [self._settings.kafka_topic_prefix + t for t in events.ALL_TOPICS])
                    profile = await broker_profile(self._settings)
                    self._transactional = transactional_relay(self._settings, profile)
                    self._isolation = isolation_level(self._settings, profile)
                    self._producer = await new_producer(
                        self._settings, profile,
                        transactional_id=relay_transactional_id(self._settings) if self._transactional else None)
                    self._ack_timeout_s = delivery_timeout_s(self._settings, profile)
                    if self._transactional:  # the broker aborts a transaction open longer than this anyway
                        self._ack_timeout_s = min(self._ack_timeout_s,
                                                  self._settings.kafka_transaction_timeout_ms / 1000)
                # cleared before the pass, not after it: a commit landing while the pass runs
                # (after its pending-rows query) sets it again and is published by the next pass
                # at once, instead of waiting for the poll (found in review)
                self._wake.clear()
                published = await self.publish_once()
                self.healthy = True
                backoff = 0.2
                if published < self._batch_size:
                    try:
                        await asyncio.wait_for(self._wake.wait(), self._settings.relay_poll_interval_s)
                    except TimeoutError:
                        pass
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # broker or database unavailable: back off, rebuild producer
                self.healthy = False
                self._topics_verified_at = 0.0
                # a broken connection's transaction block raises "connection is closed" over
                # the error that broke it: both are logged
                log.warning("outbox relay error, retrying", extra={
                    "error": repr(exc), "cause": repr(exc.__context__) if exc.__context__ else None,
                    "backoff_s": backoff})
                await self._close_producer()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    async def publish_once(self) -> int:
        """Publish one batch; returns how many rows it settled (sent or dead-lettered)."""
        self._txn_producer = None  # whatever the last pass left, it ended (or its producer was closed)
        async with self._transaction() as driver:
            # the pass's statements run on the driver connection: through SQLAlchemy they cost
            # every service's relay more CPU than the statements themselves. The claim takes the
            # relay's lock: a pass that does not get it (another replica's is running) claims nothing
            if not driver.is_in_transaction():
                # outside a transaction the claim's advisory lock and row locks would end with
                # the statement, and another replica's pass could publish the same rows
                raise RuntimeError("the relay's connection is not in a transaction")
            rows = [RecordRow(r) for r in await driver.fetch(self._claim_sql, self._batch_size) if r["pending"]]
            if not rows:
                return 0
            if time.monotonic() - self._topics_verified_at > self._verify_interval_s:
                await self._verify_topics({r.topic for r in rows})
                self._topics_verified_at = time.monotonic()
            claimed = len(rows)
            if self._transactional:
                # waits for the producer id, so a transaction the previous incarnation of this
                # replica left open (a timed-out pass, a kill) is aborted or completed before
                # the tails are read below
                await self._begin_transaction()
            if any(r.uncertain for r in rows):
                rows = await self._skip_published(driver, rows)
                if not rows:
                    if self._transactional:
                        await self._end_transaction(commit=True)  # empty: nothing leaves the client
                    return claimed
            outcomes = await self._publish(rows)
            if any(o is not None for o in outcomes):
                sent = await self._settle_failures(driver, rows, outcomes)
            else:
                sent = rows
            if sent:
                await driver.execute(f"UPDATE {self._table.name} SET sent_at = now() WHERE seq = ANY($1::bigint[])",
                                     [r.seq for r in sent])
            if self._txn_producer is not None:
                # committed only once the rows are marked in the database transaction: a pass
                # whose database went away meanwhile fails above, and its Kafka transaction is
                # aborted (``_close_producer``) instead of committed. Left: a database lost
                # between this commit's request and its own COMMIT (the mark is durable only
                # then); the next pass's reconciliation covers a restarted server. Raises when
                # the commit fails or times out: the database transaction rolls back, the loop
                # rebuilds the producer, whose start resolves this transaction, and the next
                # pass finds its rows if it committed
                await self._end_transaction(commit=True)
        for r in sent:
            OUTBOX_PUBLISHED_BY(r.topic).inc()  # label: the logical topic
        return claimed

    @contextlib.asynccontextmanager
    async def _transaction(self) -> AsyncIterator[Any]:
        """A pass's transaction, yielding its asyncpg connection: on ``raw_pool`` when given,
        else on the engine (``db.driver_of`` begins it with the BEGIN alone)."""
        if self._raw_pool is not None:
            async with self._raw_pool().acquire() as conn, conn.transaction():
                yield conn
        else:
            async with self._engine.begin() as conn:
                yield await driver_of(conn)

    async def _skip_published(self, conn: Any, rows: Sequence[Any]) -> list[Any]:
        """Mark sent the rows an earlier pass already published; return the others.

        A row whose ``xmax`` was set before this pass locked it was locked by a pass that ended
        without marking it sent or failed: killed, or rolled back (database gone, an error after
        the acknowledgements), by this replica or another one. That pass may have published it,
        and publishing again would put a second record on the topic (the inboxes would absorb it,
        but the log would carry it forever). So only then, the topics' tails are read: one relay
        pass of a service runs at a time (the advisory lock) and the uncertain rows are the oldest
        pending ones, so whatever that pass published is among the last records of each
        partition: as many as the uncertain rows, plus ``TAIL_MARGIN`` for records other services
        put on a shared topic since. Rows whose event id is there are marked sent without a new
        record; a normal pass (every row's ``xmax`` 0, written since the server started) reads
        nothing. A row lock lost with the database's crash (never written out) cannot be seen,
        so a row written before the server last started is uncertain too: after a restart, the
        passes that drain what was pending then read the tails. What a restart does not show (a
        backend's crash that keeps the postmaster, a promoted standby) is covered on Apache Kafka
        by the order of a pass: the Kafka transaction is committed after the mark, so a pass
        whose database went away is aborted. On a broker without transactions such a row is
        published again and the consumers' inboxes absorb it."""
        uncertain = [r for r in rows if r.uncertain]
        tails = Tally(self._settings.kafka_topic_prefix + r.topic for r in uncertain)
        tails = Tally({topic: 2 * n + TAIL_MARGIN for topic, n in tails.items()})
        assert self._producer is not None
        cluster = await asyncio.wait_for(self._producer.client.fetch_all_metadata(), 5)
        partitions = {topic: sorted(cluster.partitions_for_topic(topic) or ()) for topic in tails}
        found = await asyncio.wait_for(recent_event_ids(self._settings, partitions, tails, isolation=self._isolation),
                                       self._ack_timeout_s)
        published = [r for r in uncertain if str(r.event_id) in found]
        if published:
            driver = await driver_of(conn)
            await driver.execute(f"UPDATE {self._table.name} SET sent_at = now() WHERE seq = ANY($1::bigint[])",
                                 [r.seq for r in published])
            for r in published:
                OUTBOX_REPUBLISH_SKIPPED.labels(r.topic).inc()
            log.info("outbox rows already on the topics marked sent", extra={
                "rows": len(published), "uncertain": len(uncertain)})
        done = {r.seq for r in published}
        return [r for r in rows if r.seq not in done]

    async def _settle_failures(
        self, conn: Any, rows: Sequence[Any], outcomes: Sequence[BaseException | None]
    ) -> list[Any]:
        """Sort a pass with failures: returns the acknowledged rows (to mark sent), records the
        failed ones, dead-letters those that cannot succeed, or raises for a broker outage.

        * a record error (``RECORD_ERRORS``) dead-letters the row at once;
        * any other failure, while some row of the pass was acknowledged, is about that row
          (or its partition): it counts an attempt, and the row is dead-lettered after
          ``relay_max_attempts``;
        * any other failure with nothing acknowledged is the broker: raise, so the whole pass
          is retried with backoff and nothing is counted against the rows;
        * a producer-state error (``PRODUCER_STATE_ERRORS``) on any row: raise too, whatever was
          acknowledged (the loop rebuilds the producer; rows already on the topic are found by
          the next pass's reconciliation, ``_skip_published``, and not sent twice).
        """
        sent = [r for r, o in zip(rows, outcomes) if o is None]
        # acknowledged, then aborted with their transaction: like sent rows they show that the
        # broker took records, so a row failing beside them counts an attempt; none is marked
        aborted = [r for r, o in zip(rows, outcomes) if isinstance(o, TransactionAborted)]
        failed = [(r, o) for r, o in zip(rows, outcomes) if o is not None and not isinstance(o, TransactionAborted)]
        broken = [o for _, o in failed if isinstance(o, PRODUCER_STATE_ERRORS)]
        if broken:  # the producer's state, not the rows: rebuilt by the loop, the pass retried
            raise RuntimeError(f"the producer's state was lost on the broker: {broken[0]!r}") from broken[0]
        transient = [o for _, o in failed if not isinstance(o, RECORD_ERRORS)]
        if transient and not sent and not aborted:
            exc = transient[0]
            if not isinstance(exc, Exception):  # a cancelled ack must not cancel the relay itself
                raise RuntimeError(f"publish failed: {exc!r}")
            raise exc
        max_attempts = self._settings.relay_max_attempts
        driver = await driver_of(conn)  # a SQLAlchemy connection (tests) or the pass's asyncpg one
        # (the SET's ``attempts`` is the row's value before this update)
        count_attempt = (
            f"UPDATE {self._table.name} SET attempts = attempts + 1, error = $2, "
            "failed_at = CASE WHEN $3 OR attempts + 1 >= $4 THEN now() END "
            "WHERE seq = $1 RETURNING failed_at IS NOT NULL"
        )
        for r, exc in failed:
            permanent = isinstance(exc, RECORD_ERRORS)
            error = f"{type(exc).__name__}: {exc}"[:2000]
            dead = await driver.fetchval(count_attempt, r.seq, error, permanent, max_attempts)
            if dead:
                OUTBOX_DEAD_LETTERED.labels(r.topic, type(exc).__name__).inc()
                log.error("outbox row dead-lettered", extra={
                    "seq": r.seq, "event_type": r.event_type, "key": r.key, "bytes": len(r.payload), "error": error,
                })
            else:
                log.warning("outbox row failed, will retry", extra={
                    "seq": r.seq, "event_type": r.event_type, "key": r.key, "error": error,
                })
        return sent

    async def _verify_topics(self, topics: set[str]) -> None:
        """Check with a fresh metadata request that the topics exist before producing.

        tansu 0.6 acknowledges records produced to a topic it does not have (after an
        in-memory restart, to a producer with stale metadata) and then loses them; a fresh
        metadata request turns that into an explicit re-creation. It runs after every
        error (a broker outage always produces one) and at most once a second otherwise,
        because parsing cluster metadata per batch cost more CPU than the publishing.
        """
        assert self._producer is not None
        prefix = self._settings.kafka_topic_prefix
        cluster = await asyncio.wait_for(self._producer.client.fetch_all_metadata(), 5)
        if not {prefix + t for t in topics} <= cluster.topics():
            log.warning("topics missing on the broker, re-creating them")
            await ensure_topics(self._settings, [prefix + t for t in events.ALL_TOPICS])
            await self._close_producer()
            raise RuntimeError("topics were missing; producer rebuilt")

    async def _publish(self, rows: Sequence[Any]) -> list[BaseException | None]:
        """Send every row, wait for every ack; the outcome per row (None = acknowledged).

        A record error raised by ``send`` itself (too large for ``max_request_size``) is that
        row's outcome and the others still go out; anything else ``send`` raises (no metadata,
        buffer full, producer closed) is not about one row and propagates.
        """
        assert self._producer is not None
        outcomes: list[BaseException | None] = [None] * len(rows)
        pending: list[tuple[int, Any]] = []
        prefix = self._settings.kafka_topic_prefix
        for i, r in enumerate(rows):
            try:
                headers = [("ce_type", r.event_type.encode())]
                if not tracing.enabled():
                    if r.traceparent:  # the writer's context, passed on as it is
                        headers.append(("traceparent", r.traceparent.encode()))
                    future = await self._producer.send(prefix + r.topic, value=r.payload, key=r.key.encode(),
                                                       headers=headers)
                else:  # the producer span, child of the writer's, puts its own traceparent in
                    with tracing.publishing(r.traceparent):
                        future = await self._producer.send(prefix + r.topic, value=r.payload, key=r.key.encode(),
                                                           headers=headers)
            except RECORD_ERRORS as exc:
                outcomes[i] = exc
                continue
            pending.append((i, future))
        if pending:
            # until the client gave up on every record (kafka.delivery_timeout_s): a row is re-sent
            # (by the next pass) only once the client stopped retrying it, so a broker failover
            # does not turn one row into two records
            acks = await asyncio.wait_for(asyncio.gather(*(f for _, f in pending), return_exceptions=True),
                                          timeout=self._ack_timeout_s)
            for (i, _), ack in zip(pending, acks):
                if isinstance(ack, BaseException):
                    outcomes[i] = ack
        if self._transactional:
            # a row ``send`` refused never joined the transaction; a failed acknowledgement did
            if any(outcomes[i] is not None for i, _ in pending):
                # a transaction commits whole or not at all: the acknowledged rows go out again
                await self._end_transaction(commit=False)
                return [TransactionAborted() if o is None else o for o in outcomes]
            # left open: ``publish_once`` commits it after marking the rows sent
        return outcomes

    async def _begin_transaction(self) -> None:
        assert self._producer is not None
        await asyncio.wait_for(self._producer.begin_transaction(), self._ack_timeout_s)
        self._txn_producer = self._producer

    async def _end_transaction(self, *, commit: bool) -> None:
        producer, self._txn_producer = self._txn_producer, None
        if producer is None or producer is not self._producer:
            # closed under the pass (``stop()``), its transaction aborted: nothing to commit
            raise RuntimeError("the pass's producer was closed; its transaction did not commit")
        end = producer.commit_transaction() if commit else producer.abort_transaction()
        await asyncio.wait_for(end, self._ack_timeout_s)

    async def _gauge_loop(self) -> None:
        """Read the backlog and dead-letter gauges from the database on their own clock.

        They used to be read only after a successful publish, so an outbox stuck behind one
        record (or a dead broker) showed a backlog of 0; now they move whatever the broker does.
        """
        while not self._stopping:
            try:
                await self.read_gauges()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # database unavailable: /readyz says so; try again later
                log.warning("outbox gauges not read", extra={"error": repr(exc)})
            await asyncio.sleep(self._settings.relay_gauge_interval_s)

    async def read_gauges(self) -> None:
        """One statement: backlog, oldest unsent age, dead rows (each on its partial index);
        then delete sent rows past retention."""
        t = self._table
        queue = (t.c.sent_at.is_(None), t.c.failed_at.is_(None))
        async with self._engine.begin() as conn:
            row = (
                await conn.execute(
                    select(
                        select(func.count()).select_from(t).where(*queue).scalar_subquery(),
                        select(func.min(t.c.created_at)).where(*queue).scalar_subquery(),
                        select(func.count()).select_from(t).where(t.c.failed_at.is_not(None)).scalar_subquery(),
                    )
                )
            ).one()
            await conn.execute(
                delete(t).where(
                    t.c.sent_at.is_not(None),
                    t.c.sent_at < func.now() - text(f"interval '{int(self._retention_s)} seconds'"),
                )
            )
        oldest = row[1]
        self.backlog = row[0]
        self.oldest_unsent_age_s = 0.0 if oldest is None else max(0.0, (datetime.now(UTC) - oldest).total_seconds())
        self.dead_letters = row[2]
        self.gauges_read_at = time.monotonic()
        OUTBOX_BACKLOG.set(self.backlog)
        OUTBOX_OLDEST_AGE.set(self.oldest_unsent_age_s)
        OUTBOX_DEAD.set(self.dead_letters)

    async def _close_producer(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            if self._transactional:
                # a transaction left open holds read_committed readers of its partitions until the
                # broker's timeout (unless this replica restarts under the same name): end it,
                # also when a failed request left it abortable only
                try:
                    txn = producer._txn_manager  # noqa: SLF001
                    if txn is not None and txn.state in (TransactionState.IN_TRANSACTION,
                                                         TransactionState.ABORTABLE_ERROR):
                        await asyncio.wait_for(producer.abort_transaction(), 5)
                except Exception:  # fenced or broken: the broker aborts it
                    pass
            try:
                await asyncio.wait_for(producer.stop(), 5)
            except Exception:  # already broken; nothing else to release
                pass

    def request_stop(self) -> None:
        self._stopping = True
        self._wake.set()

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        await self._close_producer()


# --- dead letters: inspection and replay (SQL here; the command is outbox_admin) ------------


async def list_dead(conn: AsyncConnection, table: Table, *, limit: int = 100) -> list[Any]:
    """Dead-lettered rows, oldest first, without their payloads."""
    t = table
    return list(
        (
            await conn.execute(
                select(t.c.seq, t.c.event_id, t.c.event_type, t.c.topic, t.c.key, func.length(t.c.payload).label("bytes"),
                       t.c.attempts, t.c.error, t.c.created_at, t.c.failed_at)
                .where(t.c.failed_at.is_not(None))
                .order_by(t.c.seq)
                .limit(limit)
            )
        ).all()
    )


async def replay_dead(conn: AsyncConnection, table: Table, *, seqs: Sequence[int] | None = None) -> list[int]:
    """Put dead-lettered rows (all, or those ``seqs``) back in the queue: ``failed_at`` cleared,
    attempts reset, the last error kept for the record. Returns the replayed seqs.

    They go out in their original ``seq`` order, i.e. ahead of the queue but after events of
    the same key that were published while they waited; consumers are order-tolerant (inbox,
    versions), which is what makes a late replay safe."""
    t = table
    stmt = update(t).where(t.c.failed_at.is_not(None))
    if seqs is not None:
        stmt = stmt.where(t.c.seq.in_(list(seqs)))
    result = await conn.execute(stmt.values(failed_at=None, attempts=0).returning(t.c.seq))
    replayed = sorted(r[0] for r in result)
    if replayed:
        note_write()
    return replayed
