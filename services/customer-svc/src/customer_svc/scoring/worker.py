"""The insight worker in the service process: the incremental pass over dirty customers, and the
full runs (nightly, or asked for by an admin).

Every replica runs both loops; they share nothing but the database. The incremental pass leases
the dirty rows it takes (``SKIP LOCKED``), so two replicas never take the same customer at once,
and scoring locks the customer's stored scores, so even a customer re-marked and re-leased
elsewhere mid-batch is scored by one replica after the other, never twice in parallel. A full run
is one ``insight_runs`` row claimed with a lease renewed after every batch: a replica that stops
leaves it to another once the lease runs out (the run starts over: it is idempotent). The
nightly run is one row per scheduled instant (``scheduled_for`` is unique), so replicas that
all see 02:00 queue it once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
from fastapi import FastAPI

from ..insights import ChurnSettings, RfmSettings
from . import repository, service
from .settings import InsightRunSettings

log = logging.getLogger(__name__)
_RUN_POLL_S = 2.0
_CONNECTION_ERRORS = (asyncpg.InterfaceError, asyncpg.exceptions.ConnectionDoesNotExistError, OSError)


def due_instant(now: datetime, at: time, zone: ZoneInfo) -> datetime:
    """The latest scheduled instant at or before ``now`` (``at`` local time in ``zone``), in UTC."""
    local = now.astimezone(zone)
    candidate = datetime.combine(local.date(), at, tzinfo=zone)
    if candidate > local:
        candidate = datetime.combine(local.date() - timedelta(days=1), at, tzinfo=zone)
    return candidate.astimezone(UTC)


def nightly_is_due(due: datetime, *, started_at: datetime, last_full_run_at: datetime | None) -> bool:
    """A scheduled instant needs its run when it passed while this replica ran, or when the last
    full run is older (a night missed while every replica was down). A deployment that never ran
    one waits for its first night rather than rescoring everyone at its first start."""
    return due > started_at or (last_full_run_at is not None and last_full_run_at < due)


class InsightWorker:
    def __init__(self, *, pool: Any, settings: InsightRunSettings, rfm: RfmSettings, churn: ChurnSettings,
                 notify: Any = None) -> None:
        self.pool = pool
        self.settings = settings
        self.rfm = rfm
        self.churn = churn
        self.notify = notify or (lambda: None)
        self.wake = asyncio.Event()
        self.wake_runs = asyncio.Event()
        self.started_at = datetime.now(UTC)

    async def score_once(self) -> int:
        leased = await service.score_dirty(self.pool, limit=self.settings.batch, lease_s=self.settings.lease_s,
                                           rfm=self.rfm, churn=self.churn, rates=self.settings.rates)
        if leased:
            self.notify()
        return leased

    async def run_incremental(self) -> None:
        while True:
            try:
                leased = await self.score_once()
            except asyncio.CancelledError:
                raise
            except Exception:  # the database away, or a bug in one batch: its lease runs out, try again
                log.exception("insight scoring failed")
                leased = 0
            if leased < self.settings.batch:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), timeout=self.settings.poll_interval_s)
                self.wake.clear()

    async def schedule_nightly(self, now: datetime) -> None:
        at = self.settings.nightly_time
        if at is None:
            return
        due = due_instant(now, at, ZoneInfo(self.settings.time_zone))
        async with self.pool.acquire() as conn:
            state = await repository.insight_settings(conn)
            last = state["last_full_run_at"] if state else None
            if nightly_is_due(due, started_at=self.started_at, last_full_run_at=last):
                await repository.insert_run(conn, run_id=uuid.uuid4(), trigger="nightly", scheduled_for=due)

    async def run_full_once(self) -> bool:
        """Claim one queued (or abandoned) full run and carry it out; False when there was none."""
        async with self.pool.acquire() as conn:
            run = await repository.claim_run(conn, lease_s=self.settings.lease_s)
        if run is None:
            return False
        run_id = run["id"]
        log.info("insight run started", extra={"run_id": str(run_id), "trigger": run["trigger"]})

        async def renew(scored: int, as_of: datetime) -> None:
            async with self.pool.acquire() as conn:
                await repository.renew_run(conn, run_id, scored=scored, lease_s=self.settings.lease_s, as_of=as_of)
            self.notify()

        try:
            outcome = await service.recompute_all(self.pool, rfm=self.rfm, churn=self.churn, settings=self.settings,
                                                  on_batch=renew)
        except asyncio.CancelledError:
            raise  # shutting down: the lease runs out and a replica runs it again
        except _CONNECTION_ERRORS:
            log.warning("insight run interrupted", extra={"run_id": str(run_id)}, exc_info=True)
            return True
        except Exception as exc:
            log.exception("insight run failed", extra={"run_id": str(run_id)})
            async with self.pool.acquire() as conn:
                await repository.finish_run(conn, run_id, status="failed", scored=0,
                                            failure=f"internal error ({type(exc).__name__})")
            return True
        async with self.pool.acquire() as conn:
            await repository.finish_run(conn, run_id, status="completed", scored=outcome.scored, failure=None)
        self.notify()
        return True

    async def run_full(self) -> None:
        while True:
            ran = False
            try:
                await self.schedule_nightly(datetime.now(UTC))
                ran = await self.run_full_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("insight run loop failed")
            if not ran:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wake_runs.wait(), timeout=_RUN_POLL_S)
                self.wake_runs.clear()


def insight_worker_hook(settings: InsightRunSettings | None = None):  # type: ignore[no-untyped-def]
    """Lifespan hook: the two loops per replica (off with ``CUSTOMER_INSIGHTS_ENABLED=false``).
    Settings are read here, at start-up, so a bad value stops the service naming its variable."""
    settings = settings or InsightRunSettings()
    rfm, churn = RfmSettings(), ChurnSettings()

    @contextlib.asynccontextmanager
    async def hook(app: FastAPI) -> AsyncIterator[None]:
        runtime = app.state.runtime
        worker = InsightWorker(pool=runtime.raw_pool, settings=settings, rfm=rfm, churn=churn,
                               notify=runtime.notify_relay)
        app.state.insight_worker = worker
        tasks = []
        if settings.enabled:
            tasks = [asyncio.create_task(worker.run_incremental(), name="insight-worker"),
                     asyncio.create_task(worker.run_full(), name="insight-runs")]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    return hook
