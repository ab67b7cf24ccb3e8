"""The firing loop: sleeps until the nearest fire point, wakes early on NOTIFY, fires in
batches. Runs in every replica; correctness never depends on there being only one.

- *Durable*: timers and their fire points live in PostgreSQL; the loop keeps only the
  nearest deadline in memory, so a restart loses nothing and fires the overdue at once.
- *Sub-second*: instead of polling every N seconds, it asks for ``min(next_fire_at)`` (one
  partial-index probe) and sleeps exactly until then; a handler that writes a sooner timer
  sends ``NOTIFY sla_timers`` with its time, which wakes the loop early. A poll every
  ``scheduler_max_idle_s`` is the safety net for a lost listener connection.
- *Replica-safe*: the claim is ``FOR UPDATE SKIP LOCKED`` and advances ``fired_count`` in the
  same statement, so each point fires once; the outbox rows commit in the same transaction.
- It also runs the recalculation sweep after a policy or calendar edit (``sweep_once``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime
from typing import Any

import asyncpg
from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy import make_url

from helpdesk_common import events

from . import firing, plan, repository, service

log = logging.getLogger(__name__)

TIMERS_RUNNING = Gauge("sla_timers_running", "SLA timers currently running")
FIRE_LAG = Histogram(
    "sla_fire_lag_seconds", "Fire point (warning or due time) to fired and committed",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0),
)
BREACHES = Counter("sla_breaches_total", "SLA breaches fired", ["metric"])
WARNINGS = Counter("sla_warnings_total", "SLA warnings fired", ["metric"])

SOURCE = "sla-svc"
_SLA = events.SLA_TOPIC


def build_events(row: Any) -> list[Any]:
    """The events of one fired point: a warning, or a breach plus its escalation request."""
    ticket_id = row["ticket_id"]
    data = events.SlaAlertData(
        ticket_id=ticket_id, metric=row["metric"], due_at=row["due_at"], fraction=row["fraction"],
        team_id=row["team_id"], assignee_id=row["assignee_id"], policy=row["policy"], fire_at=row["point_at"],
        colour=plan.colour(status=row["status"], fired_count=row["fired_count"], warnings=row["warnings"]),
    )
    if row["status"] != "breached":
        return [events.SlaWarning(source=SOURCE, subject=str(ticket_id), data=data)]
    out: list[Any] = [events.SlaBreached(source=SOURCE, subject=str(ticket_id), data=data)]
    actions = row["escalation"]
    if actions:
        out.append(events.SlaEscalationRequested(
            source=SOURCE, subject=str(ticket_id),
            data=events.SlaEscalationRequestedData(ticket_id=ticket_id, metric=row["metric"],
                                                   actions=events.SlaEscalationActions(**actions)),
        ))
    return out


class Scheduler:
    def __init__(self, runtime: Any, settings: Any) -> None:
        self._runtime = runtime
        self._settings = settings
        self._batch = settings.scheduler_batch_size
        self._max_idle = settings.scheduler_max_idle_s
        self._wake = asyncio.Event()
        self._wake_at: float | None = None  # epoch seconds the loop sleeps until
        self._recalc_wanted = True
        self._listener: Any = None
        self._stopping = False
        self.fired_total = 0

    # ---- notifications ---------------------------------------------------------------
    def _on_timers(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        try:
            at = float(payload)
        except ValueError:
            at = 0.0
        if self._wake_at is None or at < self._wake_at:
            self._wake.set()

    def _on_recalc(self, *_args: Any) -> None:
        self._recalc_wanted = True
        self._wake.set()

    async def _ensure_listener(self) -> None:
        if self._listener is not None and not self._listener.is_closed():
            return
        dsn = make_url(self._settings.database_url).set(drivername="postgresql").render_as_string(hide_password=False)
        conn = await asyncpg.connect(dsn)
        await conn.add_listener(repository.TIMERS_CHANNEL, self._on_timers)
        await conn.add_listener(repository.RECALC_CHANNEL, self._on_recalc)
        self._listener = conn
        self._recalc_wanted = True  # notifications may have been missed while disconnected

    # ---- the loop ----------------------------------------------------------------------
    async def run(self) -> None:
        backoff = 0.1
        while not self._stopping:
            try:
                await self._ensure_listener()
                while await self.fire_once() >= self._batch:
                    pass
                if self._recalc_wanted:
                    self._recalc_wanted = False
                    while await self.sweep_once() and not self._stopping:
                        while await self.fire_once() >= self._batch:
                            pass
                await self._sleep()
                backoff = 0.1
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # database away: back off and retry; nothing is lost
                log.warning("sla scheduler error, retrying", extra={"error": repr(exc), "backoff_s": backoff})
                await self._close_listener()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    async def _sleep(self) -> None:
        self._wake_at = None  # a NOTIFY arriving from here on always wakes us
        self._wake.clear()
        async with self._runtime.raw_connection() as conn:
            nxt = await firing.next_fire_at(conn)
        now = time.time()
        target = now + self._max_idle if nxt is None else min(nxt.timestamp(), now + self._max_idle)
        self._wake_at = target
        delay = target - time.time()
        if delay <= 0 or self._wake.is_set():
            return
        try:
            await asyncio.wait_for(self._wake.wait(), delay)
        except TimeoutError:
            if nxt is None or nxt.timestamp() > target:
                self._recalc_wanted = True  # an idle wake: re-check for stale timers (one index probe)

    async def fire_once(self) -> int:
        """Claim, advance and announce up to one batch of due timers; returns how many."""
        async with self._runtime.raw_transaction() as conn:
            rows = await firing.fire_batch(conn, self._batch)
            if not rows:
                return 0
            out = []
            for row in rows:
                for event in build_events(row):
                    out.append((event.id, event.type, _SLA, event.subject, events.encode(event)))
            await firing.insert_outbox(conn, out)
        committed = time.time()
        for row in rows:
            FIRE_LAG.observe(max(0.0, committed - row["point_at"].timestamp()))
            (BREACHES if row["status"] == "breached" else WARNINGS).labels(row["metric"]).inc()
        self.fired_total += len(rows)
        return len(rows)

    async def sweep_once(self) -> int:
        """Recalculate one batch of tickets whose live timers predate the latest policy or
        calendar edit; returns how many tickets it handled (0: nothing stale is left)."""
        async with self._runtime.transaction() as conn:
            if not await repository.try_sweep_lock(conn):
                return 0  # another replica sweeps; our idle polls re-check in case it dies
            generation = await repository.current_generation(conn)
            stale = await repository.stale_tickets(conn, generation=generation,
                                                   limit=self._settings.recalc_batch_size)
            now = datetime.now(UTC)
            for ticket_id in stale:
                await service.retarget(conn, ticket_id=ticket_id, at=now, generation=generation, only_stale=True)
        return len(stale)

    async def run_gauge(self, interval_s: float = 10.0) -> None:
        """Refresh ``sla_timers_running`` in its own task: counting a million index entries
        takes ~100 ms, which must never delay the firing loop."""
        while not self._stopping:
            try:
                async with self._runtime.raw_connection() as conn:
                    TIMERS_RUNNING.set(await firing.running_count(conn))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.debug("sla gauge refresh failed", extra={"error": repr(exc)})
            await asyncio.sleep(interval_s)

    # ---- lifecycle ---------------------------------------------------------------------
    async def _close_listener(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            try:
                await asyncio.wait_for(listener.close(), 2)
            except Exception:
                listener.terminate()

    def request_stop(self) -> None:
        self._stopping = True
        self._wake.set()

    async def stop(self) -> None:
        self.request_stop()
        await self._close_listener()
