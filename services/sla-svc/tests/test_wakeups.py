"""Scheduler wake-ups: a consumer transaction sends one NOTIFY of its earliest fire time at
commit; a transaction outside the consumer (an API request) notifies at once, as before."""

import asyncio
from datetime import UTC, datetime, timedelta

import asyncpg
from sqlalchemy.ext.asyncio import create_async_engine


async def test_a_consumer_transaction_sends_one_wakeup_for_its_earliest_timer(sla_db):
    from sla_svc.timers import repository

    dsn = sla_db.replace("postgresql+asyncpg://", "postgresql://")
    heard: list[str] = []
    listener = await asyncpg.connect(dsn)
    await listener.add_listener(repository.TIMERS_CHANNEL, lambda *args: heard.append(args[-1]))
    engine = create_async_engine(sla_db)
    now = datetime.now(UTC)
    late, early = now + timedelta(hours=2), now + timedelta(minutes=5)

    async def run_in_own_task(deferred: bool) -> None:  # each in its own task, as the consumer's
        async with engine.begin() as conn:
            if deferred:
                await repository.defer_wakeups(conn)
            await repository.notify_timers(conn, late)
            await repository.notify_timers(conn, early)
            if deferred:
                await repository.send_deferred_wakeups(conn)

    try:
        await asyncio.create_task(run_in_own_task(deferred=True))
        await asyncio.sleep(0.5)
        assert heard == [repr(early.timestamp())]
        heard.clear()
        await asyncio.create_task(run_in_own_task(deferred=False))
        await asyncio.sleep(0.5)
        assert heard == [repr(late.timestamp()), repr(early.timestamp())]
    finally:
        await listener.close()
        await engine.dispose()
