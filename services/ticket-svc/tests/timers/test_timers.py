"""Ticket timers on a real PostgreSQL: upsert and cancel semantics, firing lag, exactly once with two
schedulers and across a killed scheduler process, and a failing handler retried without blocking
the others."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from helpdesk_common.db import create_raw_pool
from ticket_svc.timers import repository, scheduler, service

WORKER = Path(__file__).with_name("_worker.py")


async def record_fire(conn, timer) -> None:  # type: ignore[no-untyped-def]
    await conn.execute("INSERT INTO timer_fires (timer_id, ticket_id, ref) VALUES ($1, $2, $3)",
                       timer.id, timer.ticket_id, timer.ref)


service.register("test_write", record_fire)


def now() -> datetime:
    return datetime.now(UTC)


async def rows_of(pool, ticket_id):  # type: ignore[no-untyped-def]
    async with pool.acquire() as conn:
        return [dict(r) for r in await conn.fetch(
            "SELECT kind, ref, episode, due_at, fired_at, attempts, last_error FROM ticket_timers "
            "WHERE ticket_id = $1 ORDER BY id", ticket_id)]


async def fires_per_timer(pool) -> dict[int, int]:  # type: ignore[no-untyped-def]
    async with pool.acquire() as conn:
        return {r["timer_id"]: r["n"] for r in await conn.fetch(
            "SELECT timer_id, count(*) AS n FROM timer_fires GROUP BY timer_id")}


async def wait_until(predicate, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not await predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not reached")
        await asyncio.sleep(0.05)


async def test_schedule_upserts_and_fired_rows_stay_fired(pool, make_tickets) -> None:
    (ticket,) = await make_tickets(1)
    first = now() - timedelta(seconds=1)
    async with pool.acquire() as conn, conn.transaction():
        await service.schedule(conn, kind="test_write", ticket_id=ticket, ref="r", episode="e1", due_at=now() + timedelta(hours=1))
        await service.schedule(conn, kind="test_write", ticket_id=ticket, ref="r", episode="e1", due_at=first)
    (row,) = await rows_of(pool, ticket)
    assert row["due_at"] == first and row["fired_at"] is None  # moved, not duplicated

    sched = scheduler.TimerScheduler(pool, "unused")
    assert (await sched.fire_once())[0] == 1
    assert (await fires_per_timer(pool)) and (await rows_of(pool, ticket))[0]["fired_at"] is not None

    async with pool.acquire() as conn, conn.transaction():  # the same episode again: stays fired
        await service.schedule(conn, kind="test_write", ticket_id=ticket, ref="r", episode="e1", due_at=now())
    assert (await sched.fire_once())[0] == 0
    assert list((await fires_per_timer(pool)).values()) == [1]

    async with pool.acquire() as conn, conn.transaction():  # a new episode is a new timer
        await service.schedule(conn, kind="test_write", ticket_id=ticket, ref="r", episode="e2", due_at=now() + timedelta(hours=2))
        # ... and a newer one replaces the pending row of e2 (one pending timer per kind, ticket, ref)
        await service.schedule(conn, kind="test_write", ticket_id=ticket, ref="r", episode="e3", due_at=now() + timedelta(hours=3))
    rows = await rows_of(pool, ticket)
    assert [(r["episode"], r["fired_at"] is None) for r in rows] == [("e1", False), ("e3", True)]


async def test_cancel_drops_pending_rows_only(pool, make_tickets) -> None:
    ticket, other = await make_tickets(2)
    later = now() + timedelta(hours=1)
    async with pool.acquire() as conn, conn.transaction():
        for ref in ("a", "b"):
            await service.schedule(conn, kind="test_write", ticket_id=ticket, ref=ref, due_at=later)
        await service.schedule(conn, kind="other_kind", ticket_id=ticket, ref="a", due_at=later)
        await service.schedule(conn, kind="test_write", ticket_id=other, ref="a", due_at=later)
        await service.schedule(conn, kind="test_write", ticket_id=ticket, ref="fired", due_at=now() - timedelta(seconds=1))
    await scheduler.TimerScheduler(pool, "unused").fire_once()

    async with pool.acquire() as conn, conn.transaction():
        await service.cancel(conn, kind="test_write", ticket_id=ticket, ref="a")
    assert sorted((r["kind"], r["ref"]) for r in await rows_of(pool, ticket)) == [
        ("other_kind", "a"), ("test_write", "b"), ("test_write", "fired")]
    async with pool.acquire() as conn, conn.transaction():
        await service.cancel(conn, kind="test_write", ticket_id=ticket)
    assert sorted((r["kind"], r["ref"]) for r in await rows_of(pool, ticket)) == [
        ("other_kind", "a"), ("test_write", "fired")]  # the fired row is the episode's record
    assert [r["ref"] for r in await rows_of(pool, other)] == ["a"]


async def test_timer_due_in_two_seconds_fires_within_one_second(pool, make_tickets, ticket_db) -> None:
    (ticket,) = await make_tickets(1)
    lags: list[float] = []
    sched = scheduler.TimerScheduler(pool, scheduler.asyncpg_dsn(ticket_db),
                                     on_fired=lambda timers, at: lags.extend(at - t.due_at.timestamp() for t in timers))
    async with scheduler.running(sched):
        await asyncio.sleep(0.3)  # asleep on an empty table: only the NOTIFY can wake it in time
        due = now() + timedelta(seconds=2)
        async with pool.acquire() as conn, conn.transaction():
            await service.schedule(conn, kind="test_write", ticket_id=ticket, ref="soon", due_at=due)
        await wait_until(lambda: _fired(pool, ticket), timeout=10)
    assert len(lags) == 1
    assert 0 <= lags[0] < 1.0, f"fired {lags[0]:.3f} s after its due time"
    assert list((await fires_per_timer(pool)).values()) == [1]


async def _fired(pool, ticket) -> bool:  # type: ignore[no-untyped-def]
    return all(r["fired_at"] is not None for r in await rows_of(pool, ticket))


async def _pending(pool) -> int:  # type: ignore[no-untyped-def]
    async with pool.acquire() as conn:
        return await repository.pending_count(conn)


async def schedule_many(pool, tickets, per_ticket: int, due: datetime, kind: str = "test_write") -> int:  # type: ignore[no-untyped-def]
    async with pool.acquire() as conn, conn.transaction():
        for t in tickets:
            for i in range(per_ticket):
                await service.schedule(conn, kind=kind, ticket_id=t, ref=f"r{i}", due_at=due)
    return len(tickets) * per_ticket


async def test_two_schedulers_fire_each_timer_exactly_once(pool, make_tickets, ticket_db) -> None:
    tickets = await make_tickets(300)
    total = await schedule_many(pool, tickets, 3, now() + timedelta(milliseconds=500))
    other_pool = await create_raw_pool(ticket_db, size=2)
    try:
        one = scheduler.TimerScheduler(pool, scheduler.asyncpg_dsn(ticket_db), batch_size=20)
        two = scheduler.TimerScheduler(other_pool, scheduler.asyncpg_dsn(ticket_db), batch_size=20)
        async with scheduler.running(one), scheduler.running(two):
            await wait_until(lambda: _no_pending(pool), timeout=60)
    finally:
        await other_pool.close()
    fires = await fires_per_timer(pool)
    assert len(fires) == total and set(fires.values()) == {1}
    assert one.fired_total + two.fired_total == total
    assert one.fired_total > 0 and two.fired_total > 0, "both replicas took part"


async def _no_pending(pool) -> bool:  # type: ignore[no-untyped-def]
    return await _pending(pool) == 0


def _start_worker(ticket_db: str) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, str(WORKER), ticket_db], stdout=subprocess.PIPE,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"
    return proc


async def test_exactly_once_across_a_killed_scheduler_process(pool, make_tickets, ticket_db) -> None:
    tickets = await make_tickets(500)
    total = await schedule_many(pool, tickets, 4, now() - timedelta(seconds=1), kind="test_slow_write")
    worker = await asyncio.to_thread(_start_worker, ticket_db)
    try:
        await wait_until(lambda: _fired_at_least(pool, 50), timeout=60)
        worker.send_signal(signal.SIGKILL)  # mid-batch: its open transaction is rolled back
        await asyncio.to_thread(worker.wait, 10)
    finally:
        if worker.poll() is None:
            worker.kill()
    fired_before = total - await _pending(pool)
    assert 0 < fired_before < total, "the kill must land while timers remain"
    worker = await asyncio.to_thread(_start_worker, ticket_db)
    try:
        await wait_until(lambda: _no_pending(pool), timeout=120)
    finally:
        worker.send_signal(signal.SIGTERM)
        await asyncio.to_thread(worker.wait, 10)
    fires = await fires_per_timer(pool)
    assert len(fires) == total, "nothing lost"
    assert set(fires.values()) == {1}, "nothing fired twice"


async def _fired_at_least(pool, low: int) -> bool:  # type: ignore[no-untyped-def]
    async with pool.acquire() as conn:
        return await conn.fetchval("SELECT count(*) FROM timer_fires") >= low


async def test_failing_handler_retries_with_backoff_without_blocking_others(pool, make_tickets) -> None:
    tickets = await make_tickets(3)
    calls: list[str] = []

    async def flaky(conn, timer) -> None:  # type: ignore[no-untyped-def]
        calls.append(timer.ref)
        await record_fire(conn, timer)  # written, then rolled back with the savepoint
        if timer.ref == "bad" and timer.attempts == 0:
            raise RuntimeError("first attempt fails")

    service.register("test_flaky", flaky)
    async with pool.acquire() as conn, conn.transaction():
        for t, ref in zip(tickets, ("good1", "bad", "good2"), strict=True):
            await service.schedule(conn, kind="test_flaky", ticket_id=t, ref=ref, due_at=now() - timedelta(seconds=1))
    before = scheduler.FAILURES.labels("test_flaky")._value.get()
    sched = scheduler.TimerScheduler(pool, "unused")
    assert (await sched.fire_once())[0] == 3
    assert sched.fired_total == 2 and sched.failed_total == 1
    assert scheduler.FAILURES.labels("test_flaky")._value.get() == before + 1
    (bad,) = await rows_of(pool, tickets[1])
    assert bad["fired_at"] is None and bad["attempts"] == 1 and "first attempt fails" in bad["last_error"]
    assert bad["due_at"] > now()  # backed off: the next claim does not pick it
    assert (await sched.fire_once())[0] == 0
    assert len(await fires_per_timer(pool)) == 2  # the failed attempt's write was rolled back

    async with pool.acquire() as conn:  # time passes
        await conn.execute("UPDATE ticket_timers SET due_at = now() - interval '1 second' WHERE ref = 'bad'")
    assert (await sched.fire_once())[0] == 1
    assert (await rows_of(pool, tickets[1]))[0]["fired_at"] is not None
    assert set((await fires_per_timer(pool)).values()) == {1} and len(await fires_per_timer(pool)) == 3
    assert calls.count("bad") == 3  # the batch's fast try, its redo with savepoints, the retry


async def test_a_timer_whose_ticket_is_held_waits_and_an_unknown_kind_is_retried(pool, make_tickets) -> None:
    held, free = await make_tickets(2)
    async with pool.acquire() as conn, conn.transaction():
        await service.schedule(conn, kind="test_write", ticket_id=held, ref="h", due_at=now() - timedelta(seconds=1))
        await service.schedule(conn, kind="no_such_kind", ticket_id=free, ref="u", due_at=now() - timedelta(seconds=1))
    sched = scheduler.TimerScheduler(pool, "unused")
    async with pool.acquire() as holder, holder.transaction():
        await holder.execute("SELECT 1 FROM tickets WHERE id = $1 FOR UPDATE", held)
        claimed, busy = await sched.fire_once()
        assert (claimed, busy) == (1, True)  # the unknown kind was claimed (and failed); the held one waits
    assert (await rows_of(pool, free))[0]["attempts"] == 1
    assert (await sched.fire_once())[0] == 1
    assert await _fired(pool, held)


@pytest.mark.parametrize("attempts, delay", [(1, 1.0), (2, 2.0), (5, 16.0), (30, 600.0)])
def test_retry_delay_backs_off_to_a_cap(attempts: int, delay: float) -> None:
    assert service.retry_delay_s(attempts) == delay


def test_only_timers_due_within_the_longest_sleep_notify() -> None:
    base = 1_000_000.0
    assert service.needs_wake(datetime.fromtimestamp(base + 1, UTC), now=base)
    assert not service.needs_wake(datetime.fromtimestamp(base + service.MAX_SLEEP_S + 1, UTC), now=base)


async def emit_an_event(conn, timer) -> None:  # type: ignore[no-untyped-def]
    from helpdesk_common import events
    from helpdesk_common.outbox import enqueue_raw
    from ticket_svc.db import outbox

    await enqueue_raw(conn, outbox, events.CustomerCreated(
        source="ticket-svc-test", subject=str(timer.ticket_id),
        data=events.CustomerCreatedData(customer_id=timer.ticket_id, name=None, created_at=now(), identities=[])))


service.register("test_emit", emit_an_event)


async def test_a_batch_whose_handlers_wrote_events_wakes_the_outbox_relay(pool, make_tickets) -> None:
    """The loop commits on its own connection, outside Runtime's transactions: it wakes the relay
    itself, and only after a batch that wrote outbox rows (found in review: automation events
    waited for the relay's poll)."""
    quiet, loud = await make_tickets(2)
    wakes: list[str] = []
    sched = scheduler.TimerScheduler(pool, "unused", wake_relay=lambda: wakes.append("wake"))
    async with pool.acquire() as conn, conn.transaction():
        await service.schedule(conn, kind="test_write", ticket_id=quiet, ref="q", due_at=now() - timedelta(seconds=1))
    assert (await sched.fire_once())[0] == 1
    assert wakes == []
    async with pool.acquire() as conn, conn.transaction():
        await service.schedule(conn, kind="test_emit", ticket_id=loud, ref="l", due_at=now() - timedelta(seconds=1))
    assert (await sched.fire_once())[0] == 1
    assert wakes == ["wake"]
