"""Consumer runner with an idempotent inbox.

For each fetched batch the runner opens one database transaction, records
``(consumer, event id)`` in the inbox (unique) and applies the handler only for events not
seen before, commits, and only then commits the Kafka offsets. A crash anywhere before the
offset commit replays the batch; the inbox turns the replay into a no-op. If the batch fails,
each record is retried on its own with backoff; a record that still fails goes to
``<topic>.dlq`` with error headers and the consumer moves on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError
from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy import Column, DateTime, MetaData, Table, Text, Uuid, func
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from . import db_errors, events, tracing
from .db import driver_of
from .observability import Children
from .assignor import own_sticky_assignor, partition_assignors
from .kafka import broker_profile, ensure_topics, isolation_level, new_producer
from .outbox import watching_writes as outbox_writes
from .settings import ServiceSettings

log = logging.getLogger(__name__)

Handler = Callable[[AsyncConnection, Any], Awaitable[None]]


def compose_handlers(*maps: Mapping[str, Handler]) -> dict[str, Handler]:
    """One handler per event type, running every map's handler of that type in order, in the
    consumer's one transaction (pure). Several domains of a service share one consumer group this
    way: each group long-polls every partition of its topics, which the broker pays for even when
    nothing happens, and an event two domains want is fetched, parsed and recorded in the inbox once."""
    chains: dict[str, list[Handler]] = {}
    for handlers in maps:
        for event_type, handler in handlers.items():
            chains.setdefault(event_type, []).append(handler)
    return {event_type: chain[0] if len(chain) == 1 else _chained(tuple(chain))
            for event_type, chain in chains.items()}


def _chained(chain: tuple[Handler, ...]) -> Handler:
    async def run_all(conn: Any, event: Any) -> None:
        for handler in chain:
            await handler(conn, event)

    return run_all

CONSUMED = Counter(
    "consumer_events_total", "Events seen by consumers", ["consumer", "type", "outcome"]
)
CONSUMED_BY = Children(CONSUMED)  # per event: its children looked up once
CONSUMER_LAG = Gauge("consumer_lag", "Records behind the high watermark", ["consumer", "topic"])
OFFSETS_NOT_COMMITTED = Counter(
    "consumer_offset_commits_dropped_total",
    "Batches applied whose offset commit the group refused after a rebalance (records read again, "
    "skipped by the inbox)", ["consumer"],
)
CONSUMER_STALLS = Counter(
    "consumer_stall_restarts_total",
    "Consumers restarted because an assigned partition had no fetch position for consumer_stall_s",
    ["consumer"],
)
#: how long the lag loop waits for one partition's position before counting it as missing
POSITION_WAIT_S = 1.0
#: the most records one batch (one transaction) applies
MAX_BATCH_RECORDS = 500
#: how long past its own timeout a gathering ``getmany`` may take before the batch goes without it
GATHER_GRACE_S = 0.2
BATCH_SECONDS = Histogram("consumer_batch_seconds", "Time to apply one fetched batch", ["consumer"])
DATABASE_WAITS = Counter(
    "consumer_database_waits_total",
    "Attempts to apply an event that failed because the database was unavailable (retried without "
    "limit, never dead-lettered)", ["consumer"],
)


def inbox_table(metadata: MetaData) -> Table:
    return Table(
        "inbox",
        metadata,
        Column("consumer", Text, primary_key=True),
        Column("event_id", Uuid, primary_key=True),
        Column("event_type", Text, nullable=False),
        Column("processed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    )


def create_inbox_table(op: Any) -> None:
    """Migration step for a new service: the inbox exactly as ``inbox_table`` defines it (one
    DDL for every service, not a copy per migration)."""
    from .db import new_metadata

    inbox_table(new_metadata()).create(op.get_bind())


class Decoded:
    __slots__ = ("record", "event", "error", "ignored_type")

    def __init__(self, record: ConsumerRecord, event: Any = None, error: Exception | None = None,
                 ignored_type: str | None = None):
        self.record = record
        self.event = event
        self.error = error
        #: a type this consumer has no handler for, read from the header (body not parsed)
        self.ignored_type = ignored_type


def _ce_type(record: ConsumerRecord) -> str | None:
    for key, value in record.headers or ():
        if key == "ce_type":
            try:
                return value.decode()
            except (AttributeError, UnicodeDecodeError):
                return None
    return None


class ConsumerStalled(Exception):
    """An assigned partition has had no fetch position for ``consumer_stall_s``."""


def consumed_position(consumer: AIOKafkaConsumer, tp: TopicPartition) -> int | None:
    """The offset after what ``getmany`` has returned for ``tp`` (and the control or aborted
    batches the fetch stepped over), without waiting: None when the partition has no position
    (unassigned, or its offset still being looked up). aiokafka's ``position()`` may wait for a
    lookup, and has no synchronous form."""
    subscription = consumer._subscription.subscription  # noqa: SLF001
    assignment = None if subscription is None else subscription.assignment
    state = None if assignment is None else assignment.state_value(tp)
    return state.position if state is not None and state.has_valid_position else None


class ConsumerRunner:
    def __init__(
        self,
        *,
        name: str,
        topics: list[str],
        handlers: dict[str, Handler],
        engine: AsyncEngine,
        inbox: Table,
        settings: ServiceSettings,
        on_events_written: Callable[[], None] | None = None,
        after_db_commit: Callable[[list[ConsumerRecord]], None] | None = None,
        raw_pool: Callable[[], Any] | None = None,
        on_begin: Callable[[Any], Awaitable[None]] | None = None,
        before_commit: Callable[[Any], Awaitable[None]] | None = None,
        after_transaction: Callable[[Any, bool], None] | None = None,
        min_batch_interval_s: float = 0.0,
    ) -> None:
        self.name = name
        # the consumer's counters and its batch histogram exist at 0 from the start, not from their
        # first event: a rate or an alert over them has a series to read, and a scrape shows every
        # consumer of the process before its first batch
        for metric in (OFFSETS_NOT_COMMITTED, CONSUMER_STALLS, DATABASE_WAITS, BATCH_SECONDS):
            metric.labels(name)
        self._topics = topics
        self._handlers = handlers
        self._engine = engine
        self._inbox = inbox
        self._settings = settings
        self._on_events_written = on_events_written
        self._after_db_commit = after_db_commit  # test hook: simulate a crash before offset commit
        # handlers on a bare asyncpg connection (hot or write-path handlers); a callable because
        # the pool is created at start-up, after the runner
        self._raw_pool = raw_pool
        # first statement of every transaction (analytics-svc: the rebuild's shared swap lock)
        self._on_begin = on_begin
        # last statement(s) of every transaction, after the handlers (analytics-svc: the fold
        # of every ticket the batch touched, once per batch)
        self._before_commit = before_commit
        # after every transaction, committed or not (notify-svc: claimed deliveries to its dispatcher)
        self._after_transaction = after_transaction
        # records arriving within this of the last batch's start gather into the next batch
        # (``_gather``): a consumer whose work is per batch does it once for all of them
        self._min_batch_interval_s = min_batch_interval_s
        self._consumer: AIOKafkaConsumer | None = None
        # the member's last assignment and generation survive a restart of the consumer (a new
        # member id), so the group gives it back the same partitions where it can
        self._sticky = own_sticky_assignor(self._generation)
        self._dlq_producer: AIOKafkaProducer | None = None
        self._stopping = False
        self.healthy = False
        #: assigned partitions without a fetch position: since when (monotonic), for the stall check
        self._no_position_since: dict[TopicPartition, float] = {}
        #: the offset this consumer last committed per partition (``_commit_skipped``)
        self._committed: dict[TopicPartition, int] = {}

    async def run(self) -> None:
        backoff = 0.2
        while not self._stopping:
            try:
                await self._run_consumer()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.healthy = False
                log.warning("consumer error, restarting", extra={"consumer": self.name, "error": repr(exc)})
                await self._close()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
            else:
                backoff = 0.2

    async def _gather(self, consumer: AIOKafkaConsumer, batches: dict[TopicPartition, list[ConsumerRecord]], *,
                      until: float) -> tuple[dict[TopicPartition, list[ConsumerRecord]], Exception | None]:
        """``batches`` with what else arrives before ``until`` (monotonic), up to
        ``MAX_BATCH_RECORDS`` in all, each partition's records in their order. Each ``getmany``
        drains aiokafka's buffer, so its fetcher keeps fetching meanwhile (it does not fetch a
        partition whose records wait in the buffer: sleeping instead would gather one fetch's worth).

        What is gathered is applied as soon as the group moves one of its partitions, or a
        ``getmany`` outlives its timeout (it waits out a rebalance without one): the records
        in hand are never held across a rebalance. A fetch error that ``getmany`` raises after
        returning the records before it comes back with them, to be raised once they are applied."""
        count = sum(len(records) for records in batches.values())
        while count < MAX_BATCH_RECORDS and not self._stopping:
            wait_s = until - time.monotonic()
            if wait_s <= 0 or not batches.keys() <= consumer.assignment():
                break
            try:
                more = await asyncio.wait_for(consumer.getmany(timeout_ms=max(1, int(wait_s * 1000)),
                                                               max_records=MAX_BATCH_RECORDS - count),
                                              wait_s + GATHER_GRACE_S)
            except asyncio.TimeoutError:
                break
            except Exception as exc:  # noqa: BLE001 - raised by the caller once the batch is applied
                return batches, exc
            for tp, records in more.items():
                batches[tp] = [*batches.get(tp, ()), *records]
                count += len(records)
        return batches, None

    def _generation(self) -> int | None:
        coordinator = getattr(self._consumer, "_coordinator", None)  # aiokafka has no public accessor
        return getattr(coordinator, "generation", None)

    async def _run_consumer(self) -> None:
        await ensure_topics(self._settings, self._topics)
        profile = await broker_profile(self._settings)
        consumer = AIOKafkaConsumer(
            *self._topics,
            bootstrap_servers=self._settings.kafka_bootstrap_servers,
            group_id=self._settings.kafka_topic_prefix + self.name,
            client_id=f"{self._settings.service_name}-{self.name}",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=MAX_BATCH_RECORDS,
            # tansu holds a fetch for the full max wait even when data is there: keep it short
            fetch_max_wait_ms=self._settings.consumer_fetch_max_wait_ms,
            session_timeout_ms=10_000,
            heartbeat_interval_ms=1_000,
            partition_assignment_strategy=partition_assignors(profile.kind, self._sticky),
            # never a record of an aborted relay pass (kafka.transactional_relay)
            isolation_level=isolation_level(self._settings, profile),
        )
        self._consumer = consumer
        try:
            await asyncio.wait_for(consumer.start(), 20)
        except BaseException:
            self._consumer = None
            await consumer.stop()
            raise
        self.healthy = True
        self._committed.clear()
        last_lag_update = last_skip_check = 0.0
        last_batch_at = -math.inf
        try:
            while not self._stopping:
                batches = await consumer.getmany(timeout_ms=500, max_records=MAX_BATCH_RECORDS)
                if batches:
                    fetch_error = None
                    if self._min_batch_interval_s > 0:
                        batches, fetch_error = await self._gather(consumer, batches,
                                                                  until=last_batch_at + self._min_batch_interval_s)
                        last_batch_at = time.monotonic()
                    await self._handle_batches(consumer, batches)
                    if fetch_error is not None:
                        raise fetch_error
                elif time.monotonic() - last_skip_check > 1:
                    last_skip_check = time.monotonic()
                    await self._commit_skipped(consumer)
                now = time.monotonic()
                if now - last_lag_update > 5:
                    last_lag_update = now
                    await self._update_lag(consumer)
        finally:
            await self._close()

    async def _update_lag(self, consumer: AIOKafkaConsumer) -> None:
        """Set the lag gauges, and restart a consumer stuck without a position (``ConsumerStalled``).

        ``position()`` waits while a partition's fetch position is being looked up; a lookup that
        never ends (aiokafka retrying ``ListOffsets`` at a partition's former leader with stale
        metadata: 1,663 ``NotLeaderForPartitionError`` over 4.5 minutes in the fault suite's run 4)
        held this loop, and the group fell 6,664 records behind. Each partition now gets
        ``POSITION_WAIT_S``; one still without a position after ``consumer_stall_s`` raises, and
        ``run`` starts a new consumer, which joins with fresh metadata."""
        per_topic: dict[str, int] = {}
        now = time.monotonic()
        assigned = consumer.assignment()
        for tp in list(self._no_position_since):
            if tp not in assigned:
                del self._no_position_since[tp]
        lookups = {tp: asyncio.ensure_future(consumer.position(tp)) for tp in assigned}
        if lookups:  # one wait for all of them: a missing position costs the loop one second at most
            _, waiting = await asyncio.wait(lookups.values(), timeout=POSITION_WAIT_S)
            for lookup in waiting:
                lookup.cancel()
            await asyncio.gather(*waiting, return_exceptions=True)
        for tp, lookup in lookups.items():
            if not lookup.done() or lookup.cancelled():
                since = self._no_position_since.setdefault(tp, now)
                stall = self._settings.consumer_stall_s
                if stall and now - since >= stall:
                    CONSUMER_STALLS.labels(self.name).inc()
                    raise ConsumerStalled(f"{tp.topic}-{tp.partition} has had no fetch position for "
                                          f"{now - since:.0f} s")
                continue
            if lookup.exception() is not None:  # IllegalStateError: unassigned meanwhile (a rebalance)
                continue
            position = lookup.result()
            self._no_position_since.pop(tp, None)
            high = consumer.highwater(tp)
            if high is None:
                continue
            per_topic[tp.topic] = per_topic.get(tp.topic, 0) + max(0, high - position)
        for topic, lag in per_topic.items():
            CONSUMER_LAG.labels(self.name, topic).set(lag)

    async def _handle_batches(
        self, consumer: AIOKafkaConsumer, batches: dict[TopicPartition, list[ConsumerRecord]]
    ) -> None:
        started = time.perf_counter()
        records = [r for recs in batches.values() for r in recs]
        decoded = [self._decode(r) for r in records]
        with outbox_writes() as writes:  # the relay is woken only for a batch that wrote outbox rows
            try:
                await self._apply(decoded)
            except Exception as exc:
                log.info("batch failed, retrying records one by one",
                         extra={"consumer": self.name, "error": repr(exc)})
                for item in decoded:
                    await self._apply_with_retries(item)
        if self._after_db_commit is not None:
            self._after_db_commit(records)
        # the position, not the last record's offset + 1: reading committed records, the fetch
        # steps over the transaction markers (and aborted records) behind them, and committing the
        # last record's offset + 1 left every group one marker short of the end for good
        await self._commit(consumer, {tp: max(recs[-1].offset + 1, consumed_position(consumer, tp) or 0)
                                      for tp, recs in batches.items()})
        BATCH_SECONDS.labels(self.name).observe(time.perf_counter() - started)
        if writes.wrote and self._on_events_written is not None:
            self._on_events_written()

    async def _commit(self, consumer: AIOKafkaConsumer, offsets: dict[TopicPartition, int]) -> None:
        """Commit an applied batch's offsets, unless the group moved on since it was fetched.

        A rebalance between the fetch and the commit (this member was paused past its session and
        expelled, or a member joined or left meanwhile) makes the commit fail: the partitions may
        be someone else's now. The batch is already in the database with its inbox rows, so its
        offsets are dropped and the consumer carries on; aiokafka rejoins the group by itself, and
        whoever owns those partitions reads the records again from the last committed offset and
        its inbox skips them. Restarting the consumer instead (as any other error does) made a new
        member: one more rebalance for the whole group, while the old member, if its leave did not
        get through, lingered in the group until its session ended (measured: a replica resumed
        after a SIGSTOP took 25 s to hold partitions again, its healthy peer restarted too)."""
        assigned = consumer.assignment()
        owned = {tp: offset for tp, offset in offsets.items() if tp in assigned}
        error: Exception | None = None
        if len(owned) < len(offsets):
            error = IllegalStateError(f"{len(offsets) - len(owned)} of the batch's partitions were reassigned")
        if owned:
            try:
                await consumer.commit(owned)
                self._committed.update(owned)
            except (CommitFailedError, IllegalStateError) as exc:
                error = exc
        if error is not None:
            OFFSETS_NOT_COMMITTED.labels(self.name).inc()
            log.info("offsets not committed after a rebalance; the batch is in the inbox",
                     extra={"consumer": self.name, "error": repr(error)})

    async def _commit_skipped(self, consumer: AIOKafkaConsumer) -> None:
        """Commit a position the fetch moved without returning a record: past a transaction's
        marker or an aborted pass's records (read_committed). Only beyond an offset this consumer
        committed itself, so nothing fetched and not yet applied is ever skipped (every record
        ``getmany`` returned was applied before this runs)."""
        moved = {}
        for tp in consumer.assignment():
            position, done = consumed_position(consumer, tp), self._committed.get(tp)
            if position is not None and done is not None and position > done:
                moved[tp] = position
        if moved:
            await self._commit(consumer, moved)

    def _decode(self, record: ConsumerRecord) -> Decoded:
        # the relay names the type in the ce_type header: an event this consumer has no
        # handler for is skipped without parsing and validating its body (most of a topic's
        # events, for most consumers). Records without the header are parsed as before.
        header_type = _ce_type(record)
        if header_type is not None and header_type not in self._handlers:
            return Decoded(record, ignored_type=header_type)
        try:
            return Decoded(record, events.decode(record.value))
        except events.UnknownEventType:
            return Decoded(record)
        except Exception as exc:  # undecodable: poison, goes to the DLQ without retries
            return Decoded(record, error=exc)

    @contextlib.asynccontextmanager
    async def _begin(self) -> AsyncIterator[Any]:
        """One transaction: SQLAlchemy's by default, a bare asyncpg one for raw consumers;
        ``on_begin`` first, ``before_commit`` after the body (not when it raised), and
        ``after_transaction`` once it has ended, told whether it committed. A commit whose
        outcome is unknown (the connection broke during it) counts as not committed."""
        opened: Any = None
        committed = False
        try:
            # ``committed`` is set as the transaction block exits, before the connection goes
            # back to its pool: a failure of that release does not make a commit a rollback
            raw = self._raw_pool is not None
            async with (self._raw_pool().acquire() if raw else self._engine.connect()) as conn:
                async with (conn.transaction() if raw else conn.begin()):
                    opened = conn
                    if self._on_begin is not None:
                        await self._on_begin(conn)
                    yield conn
                    if self._before_commit is not None:
                        await self._before_commit(conn)
                committed = True
        finally:
            if self._after_transaction is not None and opened is not None:
                try:
                    self._after_transaction(opened, committed)
                except Exception:  # the transaction's outcome stands; the hook's own failure is logged
                    log.exception("after-transaction hook failed", extra={"consumer": self.name})

    async def _apply(self, items: list[Decoded]) -> bool:
        """Apply every decodable, handled, not-yet-seen event in one transaction."""
        if any(i.error is not None for i in items):
            raise ValueError("batch contains undecodable records")
        wrote = False
        async with self._begin() as conn:
            fresh = await self._record_batch(conn, items)
            for item in items:
                wrote |= await self._apply_one(conn, item, fresh)
        return wrote

    async def _record_batch(self, conn: Any, items: list[Decoded]) -> set[Any]:
        """Record every handled event of the batch in the inbox with one statement (one round
        trip per batch instead of one per event; one SQL text, so one prepared statement, for any
        batch size); the ids that were new. An id twice in the batch is new at most once
        (``_apply_one`` takes it out of the set)."""
        handled = [i.event for i in items
                   if i.ignored_type is None and i.event is not None and i.event.type in self._handlers]
        if not handled:
            return set()
        ids, types = [e.id for e in handled], [e.type for e in handled]
        # on the driver connection (``db.driver_of``; a raw consumer's is one already): through
        # SQLAlchemy this one statement per batch cost more CPU than running it
        rows = await (await driver_of(conn)).fetch(
            f"INSERT INTO {self._inbox.name} (consumer, event_id, event_type) "
            "SELECT $1, u.id, u.type FROM unnest($2::uuid[], $3::text[]) AS u(id, type) "
            "ON CONFLICT DO NOTHING RETURNING event_id",
            self.name, ids, types,
        )
        return {r["event_id"] for r in rows}

    async def _apply_one(self, conn: AsyncConnection, item: Decoded, recorded: set[Any] | None = None) -> bool:
        """Apply one event unless the inbox has it; ``recorded``: the batch's ids already
        recorded as new by ``_record_batch`` (None: record this one here)."""
        event = item.event
        if item.ignored_type is not None:
            label = item.ignored_type if item.ignored_type in events.KNOWN_TYPES else "unknown"
            CONSUMED_BY(self.name, label, "ignored").inc()
            return False
        if event is None:
            CONSUMED_BY(self.name, "unknown", "skipped").inc()
            return False
        handler = self._handlers.get(event.type)
        if handler is None:
            CONSUMED_BY(self.name, event.type, "ignored").inc()
            return False
        if recorded is not None:
            fresh = event.id if event.id in recorded else None
            recorded.discard(event.id)
        elif self._raw_pool is not None:
            fresh = await conn.fetchval(
                f"INSERT INTO {self._inbox.name} (consumer, event_id, event_type) VALUES ($1, $2, $3) "
                "ON CONFLICT DO NOTHING RETURNING event_id",
                self.name, event.id, event.type,
            )
        else:
            fresh = await conn.scalar(
                pg_insert(self._inbox)
                .values(consumer=self.name, event_id=event.id, event_type=event.type)
                .on_conflict_do_nothing()
                .returning(self._inbox.c.event_id)
            )
        if fresh is None:
            CONSUMED_BY(self.name, event.type, "duplicate").inc()
            return False
        with tracing.consuming(self.name, item.record.topic, event.type, item.record.headers):
            await handler(conn, event)
        CONSUMED_BY(self.name, event.type, "processed").inc()
        return True

    async def _apply_with_retries(self, item: Decoded) -> bool:
        if item.error is not None:
            await self._dead_letter(item, item.error, attempts=0)
            return False
        max_attempts = self._settings.consumer_max_attempts
        error: Exception | None = None
        attempt = waits = 0
        while attempt < max_attempts:
            try:
                async with self._begin() as conn:
                    applied = await self._apply_one(conn, item)
                self.healthy = True
                return applied
            except Exception as exc:
                error = exc
                if db_errors.unavailable(exc):
                    # the database is restarting or unreachable: not this event's fault, so it
                    # waits (unhealthy meanwhile) and never counts towards the dead-letter topic
                    waits += 1
                    self.healthy = False
                    DATABASE_WAITS.labels(self.name).inc()
                    if waits == 1:
                        log.warning("database unavailable: waiting to apply the event",
                                    extra={"consumer": self.name, "error": repr(exc)})
                    await asyncio.sleep(min(5.0, self._settings.consumer_retry_base_s * 2 ** min(waits, 5)))
                    continue
                attempt += 1
                if attempt < max_attempts:
                    await asyncio.sleep(self._settings.consumer_retry_base_s * 2 ** (attempt - 1))
        await self._dead_letter(item, error, attempts=max_attempts)
        return False

    async def _dead_letter(self, item: Decoded, error: Exception | None, *, attempts: int) -> None:
        rec = item.record
        if self._dlq_producer is None:
            self._dlq_producer = await new_producer(self._settings)
        headers = list(rec.headers or ()) + [
            ("dlq.consumer", self.name.encode()),
            ("dlq.error.type", type(error).__name__.encode()),
            ("dlq.error.message", str(error)[:1000].encode("utf-8", "replace")),
            ("dlq.attempts", str(attempts).encode()),
            ("dlq.original.topic", rec.topic.encode()),
            ("dlq.original.partition", str(rec.partition).encode()),
            ("dlq.original.offset", str(rec.offset).encode()),
            ("dlq.id", uuid.uuid4().hex.encode()),
        ]
        await self._dlq_producer.send_and_wait(
            events.dlq_topic(rec.topic), value=rec.value, key=rec.key, headers=headers
        )
        event_type = getattr(item.event, "type", "undecodable")
        CONSUMED.labels(self.name, event_type, "dead_lettered").inc()
        log.error(
            "event dead-lettered",
            extra={"consumer": self.name, "topic": rec.topic, "offset": rec.offset, "error": repr(error)},
        )

    async def _close(self) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            try:
                await asyncio.wait_for(consumer.stop(), 3)
            except Exception:
                pass
        producer, self._dlq_producer = self._dlq_producer, None
        if producer is not None:
            try:
                await asyncio.wait_for(producer.stop(), 5)
            except Exception:
                pass

    def request_stop(self) -> None:
        self._stopping = True

    async def stop(self) -> None:
        self._stopping = True
        await self._close()
