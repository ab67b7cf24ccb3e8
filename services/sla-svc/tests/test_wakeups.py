"""A consumer transaction's ``sla.*`` events and scheduler wake-ups are written once at its end
(timers/deferral.py): the events in one INSERT in emission order, one NOTIFY of the earliest fire
time. A transaction outside the consumer (an API request, another task) writes at once."""

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import create_async_engine

from helpdesk_common import events
from helpdesk_common.db import driver_of


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
                driver = await driver_of(conn)
                sent: list[str] = []

                def log(entry) -> None:
                    sent.append(entry.query)

                def log_sqlalchemy(_conn, _cursor, statement, *_args) -> None:
                    sent.append(statement)  # SQLAlchemy's statements do not reach the driver's logger

                driver.add_query_logger(log)
                event.listen(engine.sync_engine, "before_cursor_execute", log_sqlalchemy)
                await service.end_consumer_batch(conn)
                await asyncio.sleep(0.05)  # a logger runs after its statement, on the next loop pass
                driver.remove_query_logger(log)
                event.remove(engine.sync_engine, "before_cursor_execute", log_sqlalchemy)
                # the rows and the wake-up in one statement (the driver's type introspection aside)
                assert len([q for q in sent if "typeinfo_tree" not in q and "'jit'" not in q]) == 1, sent
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


async def test_a_deferred_event_keeps_the_trace_of_the_handler_that_emitted_it(sla_db):
    """Written at the end of the transaction, after the handler's span has closed, a deferred
    ``sla.*`` row still carries that span's traceparent (made when the event was emitted)."""
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from helpdesk_common import tracing
    from sla_svc.timers import service

    tracing.setup("sla-svc-test", endpoint=None, ratio=None, processors=(SimpleSpanProcessor(InMemorySpanExporter()),))
    engine = create_async_engine(sla_db)
    ticket = uuid.uuid4()
    trace_id = "ab" * 16
    parent = f"00-{trace_id}-{'cd' * 8}-01"
    event = events.SlaPaused(source="sla-svc", subject=str(ticket), data=events.SlaPausedData(
        ticket_id=ticket, metric="resolution", paused_at=datetime.now(UTC), remaining_seconds=60.0))

    async def consumer_transaction() -> None:
        async with engine.begin() as conn:
            await service.begin_consumer_batch(conn)
            with tracing.consuming("sla-svc.timers", "tickets.events", "ticket.status_changed",
                                   [("ce_type", b"ticket.status_changed"), ("traceparent", parent.encode())]):
                await service._emit(conn, event)
            await service.end_consumer_batch(conn)  # after the span, as the consumer's before_commit

    try:
        await asyncio.create_task(consumer_transaction())
        async with engine.connect() as conn:
            written = (await conn.execute(text("SELECT traceparent FROM outbox WHERE event_id = :e"),
                                          {"e": event.id})).scalar_one()
    finally:
        tracing.uninstall()
        await engine.dispose()
    assert written is not None and written.startswith(f"00-{trace_id}-")
