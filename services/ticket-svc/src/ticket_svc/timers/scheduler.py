"""The firing loop of ticket timers, in every replica; correctness never depends on there being one.

Modelled on sla-svc's scheduler (sla_svc/timers/scheduler.py), without importing it:

- *Durable*: timers live in ``ticket_timers``; the loop keeps only "when is the next one" in
  memory, so a restart loses nothing and fires what became due meanwhile at once.
- *Sub-second*: it sleeps exactly until ``min(due_at)`` of the pending rows (one partial-index
  probe), woken early by ``NOTIFY ticket_timers`` from ``service.schedule`` for anything due
  sooner; at most ``MAX_SLEEP_S`` between looks, the safety net for a lost listener.
- *Exactly once*: a claim locks tickets with due timers (``SKIP LOCKED``), then their due timers,
  marks them fired and runs each handler in a savepoint of the same transaction. Nothing is
  fired unless that transaction commits, and a fired row is never claimed again: two replicas,
  or a replica killed mid-batch and started again, fire each timer once.
- *Failures*: a raising handler's work is rolled back (its batch is redone with a savepoint per
  handler), the row is un-fired with ``attempts + 1``, ``last_error`` and ``due_at`` pushed
  back (``service.retry_delay_s``); the other timers of the batch still fire.
- *Throughput*: when behind, ``workers`` claim loops run side by side on the pool (each claim
  skips the tickets another holds), so a burst is limited by the database, not by one
  connection's round trips.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy import make_url

from helpdesk_common import outbox

from . import repository, service

log = logging.getLogger(__name__)

FIRE_LAG = Histogram(
    "ticket_timer_fire_lag_seconds", "Ticket timer due time to fired and committed",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0),
)
FIRED = Counter("ticket_timers_fired_total", "Ticket timers fired", ["kind"])
FAILURES = Counter("ticket_timer_failures_total", "Ticket timer handler failures (retried)", ["kind"])
PENDING = Gauge("ticket_timers_pending", "Ticket timers not fired yet")

#: due timers looked at per claim, per ticket a claim may take
CANDIDATE_SPREAD = 4
#: how long to wait before claiming again when every due timer's ticket is held by a transaction
BUSY_PAUSE_S = 0.02

Listener = Callable[[str], None]
#: the payload ``listen`` callbacks get after the LISTEN connection (re)connects: notifications
#: may have been missed meanwhile (NUL cannot be in a real NOTIFY payload)
RECONNECTED = "\x00reconnected"


class _HandlerFailed(Exception):
    """A handler raised on the fast path: the batch's transaction is rolled back and redone."""


def asyncpg_dsn(database_url: str) -> str:
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


class TimerScheduler:
    """``run()`` fires timers until ``stop()``; ``listen(channel, cb)`` shares its LISTEN
    connection with other background work (``cb(payload)``, and ``cb(RECONNECTED)`` after each
    (re)connect, since notifications may have been missed while it was down)."""

    def __init__(self, pool: Any, dsn: str, *, batch_size: int = 100, workers: int = 3,
                 max_sleep_s: float = service.MAX_SLEEP_S,
                 on_fired: Callable[[list[service.Timer], float], None] | None = None,
                 wake_relay: Callable[[], None] | None = None) -> None:
        self._pool = pool
        #: the outbox relay's wake-up (Runtime.notify_relay), after a batch whose handlers wrote
        #: events: this loop commits on its own pool connection, outside Runtime's transactions
        self._wake_relay = wake_relay
        self._dsn = dsn
        self._batch = batch_size
        self._workers = max(1, workers)
        self._max_sleep = min(max_sleep_s, service.MAX_SLEEP_S)
        self._on_fired = on_fired
        self._wake = asyncio.Event()
        self._wake_at: float | None = None
        self._listener: Any = None
        self._channels: dict[str, list[Listener]] = {}
        self._stopping = False
        self.fired_total = 0
        self.failed_total = 0

    # ---- notifications -----------------------------------------------------------------
    def listen(self, channel: str, callback: Listener) -> None:
        self._channels.setdefault(channel, []).append(callback)

    def _on_timers(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        try:
            at = float(payload)
        except ValueError:
            at = 0.0
        if self._wake_at is None or at < self._wake_at:
            self._wake.set()

    def _on_other(self, _conn: Any, _pid: int, channel: str, payload: str) -> None:
        for callback in self._channels.get(channel, ()):
            callback(payload)

    async def _ensure_listener(self) -> None:
        if self._listener is not None and not self._listener.is_closed():
            return
        conn = await asyncpg.connect(self._dsn)
        await conn.add_listener(repository.TIMERS_CHANNEL, self._on_timers)
        for channel, callbacks in self._channels.items():
            await conn.add_listener(channel, self._on_other)
            for callback in callbacks:
                callback(RECONNECTED)
        self._listener = conn

    async def _close_listener(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            try:
                await asyncio.wait_for(listener.close(), 2)
            except Exception:
                listener.terminate()

    # ---- the loop ----------------------------------------------------------------------
    async def run(self) -> None:
        backoff = 0.1
        while not self._stopping:
            try:
                await self._ensure_listener()
                busy = any(await asyncio.gather(*(self._drain() for _ in range(self._workers))))
                if self._stopping:
                    break
                if busy:
                    await asyncio.sleep(BUSY_PAUSE_S)
                else:
                    await self._sleep()
                backoff = 0.1
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # database away: back off and retry; nothing is lost
                if self._stopping:
                    break
                log.warning("ticket timer scheduler error, retrying", extra={"error": repr(exc), "backoff_s": backoff})
                await self._close_listener()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    async def _drain(self) -> bool:
        """Fire batches until none is due; True if due timers were left for held tickets."""
        while not self._stopping:
            claimed, busy = await self.fire_once()
            if claimed == 0:
                return busy
        return False

    async def _sleep(self) -> None:
        self._wake_at = None  # from here on any NOTIFY wakes us
        self._wake.clear()
        async with self._pool.acquire() as conn:
            nxt = await repository.next_due(conn)
        now = time.time()
        target = now + self._max_sleep if nxt is None else min(nxt.timestamp(), now + self._max_sleep)
        self._wake_at = target
        delay = target - time.time()
        if delay <= 0 or self._wake.is_set():
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), delay)

    async def fire_once(self) -> tuple[int, bool]:
        """Claim and fire one batch; returns (timers claimed, whether due timers were skipped
        because their tickets were held by other transactions).

        The fast path runs the batch's handlers back to back in the claiming transaction; if
        any of them raises, that whole transaction rolls back (nothing of the batch happened)
        and the batch is claimed again with one savepoint per handler, so only the failing
        timer's work is undone and only it is retried. Savepoints cost two round trips per
        timer, which is most of a small handler's cost, so they are paid only after a failure."""
        try:
            return await self._fire_batch(careful=False)
        except _HandlerFailed:
            return await self._fire_batch(careful=True)

    async def _fire_batch(self, *, careful: bool) -> tuple[int, bool]:
        with outbox.watching_writes() as writes:
            result = await self._claim_and_fire(careful=careful)
        if writes.wrote and self._wake_relay is not None:
            self._wake_relay()
        return result

    async def _claim_and_fire(self, *, careful: bool) -> tuple[int, bool]:
        fired: list[service.Timer] = []
        busy = False
        async with self._pool.acquire() as conn, conn.transaction():
            # a window wider than one claim: the other loops (and replicas) hold some of its
            # tickets, and a ticket often has several due timers
            candidates = await repository.due_candidates(conn, self._batch * (self._workers + 1) * CANDIDATE_SPREAD)
            if not candidates:
                return 0, False
            locked = await repository.lock_free_tickets(conn, candidates, self._batch)
            missing = set(candidates) - set(locked)
            orphans: set[Any] = set()
            if missing and len(locked) < self._batch:
                existing = await repository.existing_tickets(conn, list(missing))
                busy = bool(existing)
                if orphans := missing - existing:
                    await repository.retire_orphans(conn, list(orphans))
                    log.warning("ticket timers of missing tickets retired", extra={"tickets": len(orphans)})
            if not locked:
                return len(orphans), busy
            rows = await repository.lock_due_timers(conn, locked)
            if not rows:
                return 0, busy
            await repository.mark_fired(conn, [r["id"] for r in rows])
            for row in rows:
                timer = service.timer_from_row(row)
                if careful:
                    if await self._run_handler(conn, timer):
                        fired.append(timer)
                    continue
                try:
                    handler = service.handler_for(timer.kind)
                    if handler is None:
                        raise LookupError(f"no handler registered for ticket timer kind {timer.kind!r}")
                    await handler(conn, timer)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    raise _HandlerFailed from exc
                fired.append(timer)
        committed = time.time()
        for timer in fired:
            FIRE_LAG.observe(max(0.0, committed - timer.due_at.timestamp()))
            FIRED.labels(timer.kind).inc()
        self.fired_total += len(fired)
        if self._on_fired is not None and fired:
            self._on_fired(fired, committed)
        return len(rows), busy

    async def _run_handler(self, conn: Any, timer: service.Timer) -> bool:
        """One handler in a savepoint; on failure the row goes back to pending, later."""
        handler = service.handler_for(timer.kind)
        try:
            if handler is None:
                raise LookupError(f"no handler registered for ticket timer kind {timer.kind!r}")
            async with conn.transaction():
                await handler(conn, timer)
            return True
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            attempts = await repository.record_failure(conn, timer_id=timer.id, error=repr(exc),
                                                       retry_in_s=service.retry_delay_s(timer.attempts + 1))
            FAILURES.labels(timer.kind).inc()
            self.failed_total += 1
            log.warning("ticket timer handler failed, will retry",
                        extra={"kind": timer.kind, "ticket_id": str(timer.ticket_id), "ref": timer.ref,
                               "attempts": attempts, "error": repr(exc)}, exc_info=True)
            return False

    async def run_gauge(self, interval_s: float = 10.0) -> None:
        """Refresh ``ticket_timers_pending`` in its own task: a count must never delay firing."""
        while not self._stopping:
            try:
                async with self._pool.acquire() as conn:
                    PENDING.set(await repository.pending_count(conn))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.debug("ticket timer gauge refresh failed", extra={"error": repr(exc)})
            await asyncio.sleep(interval_s)

    # ---- lifecycle ---------------------------------------------------------------------
    def request_stop(self) -> None:
        self._stopping = True
        self._wake.set()

    async def stop(self) -> None:
        self.request_stop()
        await self._close_listener()


@contextlib.asynccontextmanager
async def running(scheduler: TimerScheduler, *extra: Any) -> AsyncIterator[TimerScheduler]:
    """Run ``scheduler`` (its loop, its gauge and ``extra`` coroutines) for the block's duration."""
    tasks = [asyncio.create_task(scheduler.run(), name="ticket-timers"),
             asyncio.create_task(scheduler.run_gauge(), name="ticket-timers-gauge")]
    tasks += [asyncio.create_task(coro) for coro in extra]
    try:
        yield scheduler
    finally:
        scheduler.request_stop()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await scheduler.stop()
