"""The rebuild: migrate a fresh schema, replay the topics into it with the live consumer's own
handlers, catch up, and swap it in under the fold lock (docs/metrics.md, "Rebuild").

The swap is one transaction on the rebuild's connection: take the fold lock exclusively (the
live consumer takes it shared as the first statement of every batch, so no batch is half-way),
lock the tables, read the high watermarks, fold what is left up to them, record in the live
inbox the events folded here that the live consumer has not yet, then move the live tables to
``analytics_before_rebuild`` and the rebuilt ones into the live schema. A live batch waiting on
the lock then folds into the rebuilt tables (PostgreSQL re-resolves table names of cached
statements after the move) and skips, by its inbox, what the rebuild already folded.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg
from alembic.runtime.environment import EnvironmentContext
from alembic.script import ScriptDirectory
from sqlalchemy.ext.asyncio import create_async_engine

from helpdesk_common.consumer import Handler
from helpdesk_common.db import create_raw_pool
from helpdesk_common.migrate import alembic_config

from ..fold import begin as begin_batch
from ..fold import close as close_batch
from ..fold import end as end_batch
from . import repository
from .replay import Offsets, Replayed, TopicReplay, committed_offsets, remaining

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_REFUSED = 3  # the replay holds less history than the live model (no --force)
EXIT_DIFFERENT = 4  # dry run: the rebuilt tables differ from the live ones
EXIT_BUSY = 5  # another rebuild of this database is running
EXIT_SCHEMA = 6  # the migrated schema does not match the live tables (migrate the live one first)


@dataclass(frozen=True)
class Options:
    dry_run: bool = False
    force: bool = False
    #: drop the replaced tables right after the swap instead of keeping them until the next rebuild
    drop_previous: bool = False
    #: keep the rebuild schema after a dry run or a refusal (to inspect it)
    keep_schema: bool = False
    batch_size: int = 500
    #: catch-up rounds before the swap stop once fewer records than this are left
    catch_up_below: int = 2000
    catch_up_rounds: int = 10
    lock_timeout_ms: int = 5000
    swap_attempts: int = 5
    progress_every_s: float = 5.0


@dataclass
class Outcome:
    status: str  # swapped | dry-run | refused | busy | schema-mismatch
    exit_code: int
    schema: str = ""
    events_folded: int = 0
    events_failed: int = 0
    records_skipped: int = 0
    records_poison: int = 0
    seconds: float = 0.0
    earliest_offsets_above_zero: int = 0
    replay_tickets: dict[str, int] = field(default_factory=dict)
    live_tickets: dict[str, int] = field(default_factory=dict)
    differences: dict[str, int] = field(default_factory=dict)
    marked_in_inbox: int = 0
    swap_attempts: int = 0
    messages: list[str] = field(default_factory=list)


def history_verdict(*, replay: Mapping[str, int], live: Mapping[str, int], truncated_partitions: int,
                    force: bool) -> tuple[bool, list[str]]:
    """Whether the replay may replace the live model, and what to tell the operator (pure).

    A replay that knows fewer tickets than the live model, or a topic whose earliest offset is
    above zero (the broker dropped its start), would swap in a model that forgot history: refused
    unless forced."""
    messages = []
    short = {table: (replay.get(table, 0), count) for table, count in live.items() if replay.get(table, 0) < count}
    for table, (got, had) in sorted(short.items()):
        messages.append(
            f"the replay rebuilt {got} tickets in {table}, the live model has {had}: the broker does not hold "
            "the whole history (the embedded broker keeps its log in memory since it last started)")
    if truncated_partitions:
        messages.append(
            f"{truncated_partitions} partition(s) no longer start at offset 0: the broker dropped their oldest "
            "records (retention), so older events cannot be replayed")
    ok = not messages or force
    if messages and force:
        messages.append("--force: swapping anyway")
    return ok, messages


def _handled_types(handlers: Mapping[str, Handler]) -> set[str]:
    return set(handlers)


class _Progress:
    """Logs events/s and offsets now and then (ops watch a long replay by it)."""

    def __init__(self, every_s: float) -> None:
        self.every_s = every_s
        self.started = time.monotonic()
        self.last = self.started
        self.last_count = 0

    def maybe_log(self, *, phase: str, folded: int, replay: TopicReplay, targets: Offsets) -> None:
        now = time.monotonic()
        if now - self.last < self.every_s:
            return
        rate = (folded - self.last_count) / (now - self.last)
        self.last, self.last_count = now, folded
        log.info("rebuild progress", extra={
            "phase": phase, "events_folded": folded, "events_per_s": round(rate, 1),
            "records_left": remaining(replay.done(), targets),
            "offsets": {f"{tp.topic}/{tp.partition}": f"{replay.done()[tp]}/{targets.get(tp, 0)}"
                        for tp in replay.partitions if targets.get(tp, 0)},
        })


class Rebuilder:
    def __init__(self, settings: Any, options: Options, *, handlers: dict[str, Handler], consumer: str,
                 topics: list[str]) -> None:
        self.settings = settings
        self.options = options
        self.handlers = handlers
        self.consumer = consumer
        self.group_id = settings.kafka_topic_prefix + consumer
        self.topics = [settings.kafka_topic_prefix + t for t in topics]
        self.outcome = Outcome(status="", exit_code=EXIT_ERROR)
        #: (partition, offset, event id, type) of folded events the live group may not have folded
        self._recent: list[tuple[Any, int, Any, str]] = []
        self._floor: Offsets = {}
        self._partitions: list[Any] = []
        #: test hook: awaited between the catch-up and the swap (events arriving meanwhile)
        self.before_swap: Callable[[], Any] | None = None

    # --- folding -------------------------------------------------------------------------

    async def _fold_one(self, conn: Any, item: Replayed) -> None:
        await self.handlers[item.event.type](conn, item.event)

    async def _fold_batch(self, conn: Any, batch: list[Replayed]) -> None:
        """One transaction (a savepoint inside the swap's); a failing batch is redone event by
        event and an event that still fails is skipped and counted, as the live consumer
        dead-letters it."""
        try:
            async with conn.transaction():
                await begin_batch(conn)
                for item in batch:
                    await self._fold_one(conn, item)
                await end_batch(conn)
        except Exception as exc:
            close_batch(conn)
            log.info("rebuild batch failed, folding its events one by one", extra={"error": repr(exc)})
            for item in batch:
                try:
                    async with conn.transaction():
                        await begin_batch(conn)
                        await self._fold_one(conn, item)
                        await end_batch(conn)
                except Exception as one:
                    close_batch(conn)
                    self.outcome.events_failed += 1
                    log.error("rebuild could not fold an event", extra={
                        "topic": item.tp.topic, "partition": item.tp.partition, "offset": item.offset,
                        "type": item.event.type, "event_id": str(item.event.id), "error": repr(one)})
        self.outcome.events_folded += len(batch)
        for item in batch:
            if item.offset >= self._floor.get(item.tp, 0):
                self._recent.append((item.tp, item.offset, item.event.id, item.event.type))

    async def _fold_until(self, conn: Any, replay: TopicReplay, targets: Offsets, *, phase: str,
                          progress: _Progress) -> None:
        batch: list[Replayed] = []
        async for item in replay.until(targets):
            batch.append(item)
            if len(batch) >= self.options.batch_size:
                await self._fold_batch(conn, batch)
                batch = []
                progress.maybe_log(phase=phase, folded=self.outcome.events_folded, replay=replay, targets=targets)
        if batch:
            await self._fold_batch(conn, batch)

    async def _refresh_floor(self) -> None:
        """Forget folded events the live group has committed past (it folded them itself)."""
        self._floor = await committed_offsets(self.settings, self.group_id, self._partitions)
        self._recent = [r for r in self._recent if r[1] >= self._floor.get(r[0], 0)]

    # --- schema --------------------------------------------------------------------------

    async def _migrate(self, schema: str) -> None:
        """Run the service's Alembic history into ``schema`` (search_path), so the rebuilt tables
        are what the migrations make, exactly as the live ones were made."""
        url = self.settings.database_url
        cfg = alembic_config("analytics_svc", url)
        script = ScriptDirectory.from_config(cfg)
        engine = create_async_engine(url, connect_args={"server_settings": {"search_path": schema}})

        def run(sync_conn: Any) -> None:
            def upgrade(rev: Any, _context: Any) -> Any:
                return script._upgrade_revs("head", rev)

            with EnvironmentContext(cfg, script, fn=upgrade, destination_rev="head") as env:
                env.configure(connection=sync_conn, target_metadata=None, version_table_schema=schema)
                with env.begin_transaction():
                    env.run_migrations()

        try:
            async with engine.connect() as conn:
                await conn.run_sync(run)
                await conn.commit()
        finally:
            await engine.dispose()

    # --- the run -------------------------------------------------------------------------

    async def run(self) -> Outcome:
        started = time.monotonic()
        out = self.outcome
        admin_pool = await create_raw_pool(self.settings.database_url, size=1)
        try:
            async with admin_pool.acquire() as admin:
                if not await repository.try_rebuild_lock(admin):
                    out.status, out.exit_code = "busy", EXIT_BUSY
                    out.messages.append("another rebuild of this database is running")
                    return out
                try:
                    await self._run(admin)
                finally:
                    await repository.release_rebuild_lock(admin)
        finally:
            await admin_pool.close()
            out.seconds = round(time.monotonic() - started, 3)
        return out

    async def _run(self, admin: Any) -> None:
        out, opts = self.outcome, self.options
        live = await repository.current_schema(admin)
        for leftover in await repository.leftover_rebuild_schemas(admin):
            log.info("dropping a leftover rebuild schema", extra={"schema": leftover})
            await repository.drop_schema(admin, leftover)
        schema = f"{repository.REBUILD_SCHEMA_PREFIX}{datetime.now(UTC):%Y%m%d%H%M%S}"
        out.schema = schema
        await repository.create_schema(admin, schema)
        keep = False
        try:
            await self._migrate(schema)
            tables = await repository.read_model_tables(admin, schema)
            live_tables = await repository.read_model_tables(admin, live)
            rebuilt_shapes = await repository.table_shapes(admin, schema, tables)
            live_shapes = await repository.table_shapes(admin, live, live_tables)
            if tables != live_tables or rebuilt_shapes != live_shapes:
                out.status, out.exit_code = "schema-mismatch", EXIT_SCHEMA
                differing = sorted(set(tables) ^ set(live_tables)) + sorted(
                    t for t in set(tables) & set(live_tables) if rebuilt_shapes[t] != live_shapes[t])
                out.messages.append(f"the live tables are not at the migrations' head ({', '.join(differing)}): "
                                    "run the migrations first")
                return
            log.info("rebuild schema migrated", extra={"schema": schema, "tables": tables})
            pool = await create_raw_pool(self.settings.database_url, size=1, server_settings={"search_path": schema})
            try:
                async with pool.acquire() as conn, TopicReplay(
                        self.settings, self.topics, _handled_types(self.handlers)) as replay:
                    keep = await self._replay_and_swap(admin, conn, replay, live=live, schema=schema, tables=tables)
            finally:
                await pool.close()
        finally:
            if not keep or out.status == "swapped":
                await repository.drop_schema(admin, schema)
        if out.status == "swapped" and opts.drop_previous:
            await repository.drop_schema(admin, repository.PREVIOUS_SCHEMA)

    async def _replay_and_swap(self, admin: Any, conn: Any, replay: TopicReplay, *, live: str, schema: str,
                               tables: list[str]) -> bool:
        """Returns whether to keep the rebuild schema (a dry run or refusal with --keep-schema)."""
        out, opts = self.outcome, self.options
        self._partitions = replay.partitions
        await self._refresh_floor()
        out.earliest_offsets_above_zero = sum(1 for offset in replay.earliest.values() if offset > 0)
        # counted before the targets are read: whatever the live model holds now was published
        # below them, so a replay of the whole history holds at least as much (the live model may
        # grow past it meanwhile; that is not missing history)
        out.live_tickets = await repository.tickets_known(admin, live)
        targets = await replay.end_offsets()
        log.info("rebuild replay starts", extra={
            "topics": self.topics, "records": remaining(replay.done(), targets),
            "earliest": {f"{tp.topic}/{tp.partition}": o for tp, o in replay.earliest.items() if o},
        })
        progress = _Progress(opts.progress_every_s)
        await self._fold_until(conn, replay, targets, phase="replay", progress=progress)
        for _ in range(opts.catch_up_rounds):
            targets = await replay.end_offsets()
            left = remaining(replay.done(), targets)
            if left == 0:
                break
            await self._fold_until(conn, replay, targets, phase="catch-up", progress=progress)
            await self._refresh_floor()
            if left < opts.catch_up_below:
                break
        out.records_skipped, out.records_poison = replay.skipped, replay.poison
        out.replay_tickets = await repository.tickets_known(admin, schema)
        log.info("rebuild replayed", extra={"events_folded": out.events_folded, "replay_tickets": out.replay_tickets,
                                            "live_tickets": out.live_tickets})
        ok, messages = history_verdict(replay=out.replay_tickets, live=out.live_tickets,
                                       truncated_partitions=out.earliest_offsets_above_zero, force=opts.force)
        out.messages.extend(messages)
        if opts.dry_run:
            for table in tables:
                out.differences[table] = await repository.count_differences(admin, live, schema, table)
            equal = not any(out.differences.values())
            out.status, out.exit_code = "dry-run", EXIT_OK if equal and ok else (EXIT_DIFFERENT if ok else EXIT_REFUSED)
            if not equal:
                out.messages.append("rows differ from the live tables (events folded live meanwhile count too): "
                                    + ", ".join(f"{t} {n}" for t, n in out.differences.items() if n))
            return opts.keep_schema
        if not ok:
            out.status, out.exit_code = "refused", EXIT_REFUSED
            return opts.keep_schema
        if self.before_swap is not None:
            await self.before_swap()
        await repository.drop_schema(admin, repository.PREVIOUS_SCHEMA)
        await self._swap(conn, replay, live=live, schema=schema, tables=tables, progress=progress)
        out.status, out.exit_code = "swapped", EXIT_OK
        return False

    async def _swap(self, conn: Any, replay: TopicReplay, *, live: str, schema: str, tables: list[str],
                    progress: _Progress) -> None:
        opts = self.options
        for attempt in range(1, opts.swap_attempts + 1):
            self.outcome.swap_attempts = attempt
            await self._refresh_floor()
            checkpoint = replay.checkpoint()
            folded_before, recent_before = self.outcome.events_folded, len(self._recent)
            try:
                async with conn.transaction():
                    await repository.take_fold_lock(conn)
                    await repository.lock_tables(conn, live, tables, timeout_ms=opts.lock_timeout_ms)
                    targets = await replay.end_offsets()
                    await self._fold_until(conn, replay, targets, phase="swap", progress=progress)
                    # under the lock the live group cannot move: what it committed is final here
                    floor = await committed_offsets(self.settings, self.group_id, self._partitions)
                    unfolded = [(r[2], r[3]) for r in self._recent if r[1] >= floor.get(r[0], 0)]
                    self.outcome.marked_in_inbox = await repository.mark_folded(
                        conn, schema=live, consumer=self.consumer, folded=unfolded)
                    await repository.create_schema(conn, repository.PREVIOUS_SCHEMA)
                    await repository.move_tables(conn, tables, source=live, target=repository.PREVIOUS_SCHEMA)
                    await repository.move_tables(conn, tables, source=schema, target=live)
                log.info("rebuild swapped in", extra={"schema": live, "tables": tables, "attempt": attempt,
                                                      "marked_in_inbox": self.outcome.marked_in_inbox})
                return
            # a reader holding one table while asking for another the swap has locked makes a
            # deadlock; the swap waited first, so PostgreSQL's check picks it, never the reader
            except (asyncpg.LockNotAvailableError, asyncpg.DeadlockDetectedError):
                replay.rewind(checkpoint)
                self.outcome.events_folded = folded_before
                del self._recent[recent_before:]
                log.warning("rebuild swap could not lock the live tables in time, retrying",
                            extra={"attempt": attempt, "lock_timeout_ms": opts.lock_timeout_ms})
        raise RuntimeError(f"the live tables stayed locked by readers through {opts.swap_attempts} swap attempts")


async def rebuild(settings: Any, options: Options | None = None, *, before_swap: Callable[[], Any] | None = None
                  ) -> Outcome:
    """Rebuild analytics-svc's read models with the live consumer's handlers and topics."""
    from ..main import FOLD_CONSUMER, FOLD_TOPICS, fold_handlers

    rebuilder = Rebuilder(settings, options or Options(), handlers=fold_handlers(), consumer=FOLD_CONSUMER,
                          topics=FOLD_TOPICS)
    rebuilder.before_swap = before_swap
    return await rebuilder.run()
