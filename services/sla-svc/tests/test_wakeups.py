"""A consumer transaction's ``sla.*`` events and scheduler wake-ups are written once at its end
(timers/deferral.py): the events in one INSERT in emission order, one NOTIFY of the earliest fire
time. A transaction outside the consumer (an API request, another task) writes at once."""

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from helpdesk_common import events


async def test_a_consumer_transaction_writes_its_events_and_one_wakeup_at_its_end(sla_db):
    from sla_svc.timers import repository, service

    dsn = sla_db.replace("postgresql+asyncpg://", "postgresql://")
    heard: list[str] = []
    listener = await asyncpg.connect(dsn)
    await listener.add_listener(repository.TIMERS_CHANNEL, lambda *args: heard.append(args[-1]))
    engine = create_async_engine(sla_db)
    now = datetime.now(UTC)
    late, early = now + timedelta(hours=2), now + timedelta(minutes=5)
    ticket = uuid.uuid4()

    def paused(metric: str):
        return events.SlaPaused(source="sla-svc", subject=str(ticket), data=events.SlaPausedData(
            ticket_id=ticket, metric=metric, paused_at=now, remaining_seconds=60.0))

    async def transaction(as_consumer: bool) -> list[str]:
        async with engine.begin() as conn:
            if as_consumer:
                await service.begin_consumer_batch(conn)
            await repository.notify_timers(conn, late)
            await service._emit(conn, paused("first_response"))
            await repository.notify_timers(conn, early)
            await service._emit(conn, paused("resolution"))
            written_before_end = (await conn.execute(text("SELECT count(*) FROM outbox"))).scalar()
            if as_consumer:
                assert written_before_end == 0  # collected, not yet written
                await service.end_consumer_batch(conn)
        async with engine.connect() as conn:
            rows = (await conn.execute(text("SELECT payload FROM outbox ORDER BY seq"))).scalars().all()
            await conn.execute(text("DELETE FROM outbox"))
            await conn.commit()
        return [events.decode(r).data.metric for r in rows]

    try:
        metrics = await asyncio.create_task(transaction(as_consumer=True))  # its own task, as the consumer's
        await asyncio.sleep(0.5)
        assert metrics == ["first_response", "resolution"]
        assert heard == [repr(early.timestamp())]
        heard.clear()
        metrics = await asyncio.create_task(transaction(as_consumer=False))
        await asyncio.sleep(0.5)
        assert metrics == ["first_response", "resolution"]
        assert heard == [repr(late.timestamp()), repr(early.timestamp())]
    finally:
        await listener.close()
        await engine.dispose()
