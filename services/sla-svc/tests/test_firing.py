"""The firing loop on the real database: exactly once across replicas, catch-up after
downtime, warnings in order and never after the breach. Every wait is bounded."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from helpdesk_common.testing import running_app, wait_for


async def _count(db, sql, **params):
    async with db.connect() as conn:
        return await conn.scalar(text(sql), params)


async def test_two_replicas_fire_10000_timers_due_in_the_same_second_exactly_once(db, bulk_timers, sla_app_factory):
    app_a, app_b = sla_app_factory(), sla_app_factory()
    async with running_app(app_a), running_app(app_b):
        due = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=3)
        await bulk_timers(10_000, due, ["0 seconds"], [1.0])  # one fire point: the due time, same second for all
        await wait_for(lambda: _count(db, "SELECT count(*) = 10000 FROM sla_timers WHERE status = 'breached'"),
                       timeout=60, interval=0.2)
        fired = [app_a.state.scheduler.fired_total, app_b.state.scheduler.fired_total]
    assert sum(fired) == 10_000, fired  # every claim is one fire; nothing claimed twice
    per_timer = await _count(db, "SELECT count(*) FROM (SELECT key FROM outbox WHERE event_type = 'sla.breached' "
                                 "GROUP BY key HAVING count(*) = 1) once")
    assert per_timer == 10_000
    assert await _count(db, "SELECT count(*) FROM outbox") == 10_000  # no warnings, no duplicates
    assert await _count(db, "SELECT count(*) FROM sla_outcomes WHERE outcome = 'breached'") == 10_000
    # nobody fired early
    assert await _count(db, "SELECT count(*) FROM outbox WHERE created_at < :d", d=due) == 0


async def test_overdue_after_downtime_fire_once_promptly_and_skip_stale_warnings(db, bulk_timers, sla_app_factory):
    """Downtime simulated: the timers were written 60 s overdue before the app started
    (rather than stopping a running scheduler for 60 s)."""
    now = datetime.now(UTC)
    # 2,000 breached while we were down: warnings at -90 s and -75 s, due at -60 s
    await bulk_timers(2_000, now, ["-90 seconds", "-75 seconds", "-60 seconds"], [0.5, 0.75, 1.0])
    # 500 with two warnings passed and the due time still ahead: only the latest warning is sent
    await bulk_timers(500, now, ["-70 seconds", "-65 seconds", "1 hour"], [0.5, 0.75, 1.0])
    started = time.monotonic()
    async with running_app(sla_app_factory()):
        await wait_for(lambda: _count(
            db, "SELECT count(*) = 2000 FROM sla_timers WHERE status = 'breached'"), timeout=10, interval=0.1)
        await wait_for(lambda: _count(
            db, "SELECT count(*) = 500 FROM sla_timers WHERE status = 'running' AND fired_count = 2"),
            timeout=10, interval=0.1)
        elapsed = time.monotonic() - started
    assert elapsed < 10
    async with db.connect() as conn:
        rows = (await conn.execute(text("SELECT event_type, count(*) AS n, count(DISTINCT key) AS keys FROM outbox "
                                        "GROUP BY event_type ORDER BY event_type"))).all()
    assert [(r.event_type, r.n, r.keys) for r in rows] == [("sla.breached", 2000, 2000), ("sla.warning", 500, 500)]
    payloads = await _count(db, "SELECT count(*) FROM outbox WHERE event_type = 'sla.warning' "
                                "AND convert_from(payload, 'UTF8')::jsonb -> 'data' ->> 'fraction' = '0.75'")
    assert payloads == 500


async def test_warnings_fire_in_order_and_never_after_the_breach(db, bulk_timers, sla_app_factory, sla_events):
    async with running_app(sla_app_factory()):
        t0 = datetime.now(UTC) + timedelta(seconds=1)
        offsets = ["0.0 seconds", "0.3 seconds", "0.6 seconds", "0.9 seconds"]
        await bulk_timers(50, t0, offsets, [0.25, 0.5, 0.75, 1.0])
        await wait_for(lambda: _count(db, "SELECT count(*) = 50 FROM sla_timers WHERE status = 'breached'"),
                       timeout=20, interval=0.1)
        await asyncio.sleep(0.5)  # anything fired late would show up now
    by_ticket: dict[str, list] = {}
    for e in await sla_events():
        by_ticket.setdefault(e.subject, []).append(e)
    assert len(by_ticket) == 50
    for seq in by_ticket.values():
        assert [(e.type, e.data.fraction) for e in seq] == [
            ("sla.warning", 0.25), ("sla.warning", 0.5), ("sla.warning", 0.75), ("sla.breached", 1.0)]
        assert [e.data.fire_at for e in seq] == sorted(e.data.fire_at for e in seq)
        assert [e.data.colour for e in seq] == ["yellow", "yellow", "red", "breached"]


async def test_a_timer_written_while_the_scheduler_sleeps_wakes_it(db, bulk_timers, sla_app_factory, monkeypatch):
    """NOTIFY, not the idle poll, gets a sooner timer fired: the idle poll is set to 30 s."""
    monkeypatch.setenv("SLA_SCHEDULER_MAX_IDLE_S", "30")
    async with running_app(sla_app_factory()) as client:
        await asyncio.sleep(0.3)  # the loop is asleep now
        await bulk_timers(1, datetime.now(UTC) + timedelta(seconds=0.5), ["0 seconds"], [1.0])
        await wait_for(lambda: _count(db, "SELECT count(*) = 1 FROM sla_timers WHERE status = 'breached'"),
                       timeout=10, interval=0.05)
        metrics = (await client.get("/metrics")).text
    for name in ("sla_fire_lag_seconds_bucket", "sla_breaches_total", "sla_timers_running"):
        assert name in metrics


async def test_scheduler_stopped_for_60_seconds_fires_everything_once_within_10_s_of_restart(
        db, bulk_timers, sla_app_factory):
    """Real downtime: a running sla-svc is stopped, timers fall due during 60 s without it, and
    the restarted service fires every one of them exactly once within 10 s."""
    async with running_app(sla_app_factory()):
        start = datetime.now(UTC)
        # 1,200 timers falling due across the downtime: due at +3 s ... +58 s (200 per offset)
        for offset in (3, 13, 23, 33, 43, 58):
            await bulk_timers(200, start, [f"{offset} seconds"], [1.0])
        await asyncio.sleep(0.5)
        assert await _count(db, "SELECT count(*) FROM outbox") == 0  # nothing was due yet
    stopped = time.monotonic()
    await asyncio.sleep(max(0.0, 60 - (time.monotonic() - stopped)))
    assert await _count(db, "SELECT count(*) FROM sla_timers WHERE status = 'running'") == 1200
    restarted = time.monotonic()
    async with running_app(sla_app_factory()):
        await wait_for(lambda: _count(db, "SELECT count(*) = 1200 FROM sla_timers WHERE status = 'breached'"),
                       timeout=10, interval=0.1)
        caught_up = time.monotonic() - restarted
    assert caught_up < 10
    assert await _count(db, "SELECT count(DISTINCT key) FROM outbox WHERE event_type = 'sla.breached'") == 1200
    assert await _count(db, "SELECT count(*) FROM outbox") == 1200  # once each
