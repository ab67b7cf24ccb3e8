"""The gateway's erasure handler on a real database, on a bare asyncpg connection as the stream
consumer's: the live stream's rows of the person's tickets, and any row naming them, are
deleted; other rows stay; the request is acknowledged (again on a redelivery)."""

import json
import uuid
from datetime import UTC, datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from helpdesk_common import events
from helpdesk_common.db import create_raw_pool


async def test_erasure_forgets_the_persons_stream_rows(gateway_env, gateway_db):
    from gateway.privacy.handlers import handle_erasure_requested

    engine = create_async_engine(gateway_db)
    me, mine, other = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    rows = [(mine, {"ticket_id": str(mine), "customer_id": str(me), "requester": {"name": "Sun Li",
                                                                                   "email": "sun.li@example.cn"}}),
            (mine, {"ticket_id": str(mine), "status": "open"}),
            (other, {"ticket_id": str(other), "note": "as sun.li@example.cn said"}),
            (other, {"ticket_id": str(other), "status": "open"})]
    try:
        async with engine.begin() as conn:
            for ticket_id, payload in rows:
                await conn.execute(text(
                    "INSERT INTO stream_events (event_id, type, ticket_id, payload, occurred_at) "
                    "VALUES (:e, 'ticket.updated', :t, CAST(:p AS jsonb), now())"),
                    {"e": uuid.uuid4(), "t": ticket_id, "p": json.dumps(payload)})
        ask = events.PrivacyErasureRequested(source="customer-svc", subject=str(me), data=events.ErasureRequestedData(
            request_id=uuid.uuid4(), customer_id=me, requested_at=datetime.now(UTC)))
        pool = await create_raw_pool(gateway_db, size=1)
        try:
            for _ in range(2):
                async with pool.acquire() as conn, conn.transaction():
                    await handle_erasure_requested(conn, ask)
        finally:
            await pool.close()
        async with engine.connect() as conn:
            left = (await conn.execute(text("SELECT ticket_id, payload FROM stream_events"))).all()
            acks = (await conn.execute(text(
                "SELECT payload FROM outbox WHERE event_type = 'privacy.erasure_completed'"))).all()
    finally:
        await engine.dispose()
    assert [(r.ticket_id, r.payload) for r in left] == [(other, {"ticket_id": str(other), "status": "open"})]
    assert [events.decode(a.payload).data.service for a in acks] == ["gateway", "gateway"]


async def test_an_erasure_in_the_same_batch_as_the_persons_events_leaves_none_of_them(gateway_env, gateway_db):
    """The stream's rows are written at the end of a consumer transaction (StreamBatch); an
    erasure fetched in the same batch after the person's events writes them first, then forgets
    them, so none escapes it; another ticket's event after the erasure is kept."""
    from gateway.config import get_settings
    from gateway.main import PRIVACY_HANDLERS
    from gateway.stream.handlers import StreamBatch, make_handlers

    me, mine, other = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    now = datetime.now(UTC)

    def created(ticket_id, customer_id=None):
        return events.TicketCreated(source="ticket-svc", subject=str(ticket_id), data=events.TicketCreatedData(
            ticket_id=ticket_id, subject="s", status="new", priority="normal", customer_id=customer_id,
            requester=events.Requester(name="Sun Li", email="sun.li@example.cn" if customer_id else "x@y.co"),
            created_by="channel:k", created_at=now))

    batch = StreamBatch(get_settings().stream_notify_channel)
    handlers = {**make_handlers(get_settings(), batch),
                **{t: batch.flushing_first(h) for t, h in PRIVACY_HANDLERS.items()}}
    ask = events.PrivacyErasureRequested(source="customer-svc", subject=str(me), data=events.ErasureRequestedData(
        request_id=uuid.uuid4(), customer_id=me, requested_at=now))
    engine = create_async_engine(gateway_db)
    pool = await create_raw_pool(gateway_db, size=1)
    try:
        # one consumer transaction: begin, the batch's events, flush
        async with pool.acquire() as conn, conn.transaction():
            await batch.begin(conn)
            for event in (created(mine, me), ask, created(other)):
                await handlers[event.type](conn, event)
            await batch.flush(conn)
        async with engine.connect() as conn:
            left = (await conn.execute(text("SELECT ticket_id FROM stream_events"))).scalars().all()
    finally:
        await pool.close()
        await engine.dispose()
    assert left == [other]


async def test_an_erasure_finds_the_tickets_linked_to_the_person_after_intake(gateway_env, gateway_db):
    """A requester resolved after intake: the ticket's stream rows carry no customer_id, and
    ``ticket.customer_linked`` (no stream event) tells whose it is; the erasure of that customer
    removes those rows, the rows naming the person elsewhere and the link, and leaves a ticket
    linked twice in one batch to its last customer."""
    from gateway.config import get_settings
    from gateway.main import PRIVACY_HANDLERS
    from gateway.stream.handlers import StreamBatch, make_handlers

    me, someone, mine, other, moved, naming = (uuid.uuid4() for _ in range(6))
    now = datetime.now(UTC)

    def created(ticket_id, name, address, subject=None):
        return events.TicketCreated(source="ticket-svc", subject=str(ticket_id), data=events.TicketCreatedData(
            ticket_id=ticket_id, subject=subject or f"订单 {name}", status="new", priority="normal", customer_id=None,
            requester=events.Requester(name=name, email=address), created_by="channel:k", created_at=now))

    def linked(ticket_id, customer_id):
        return events.TicketCustomerLinked(source="ticket-svc", subject=str(ticket_id),
                                           data=events.TicketCustomerLinkedData(ticket_id=ticket_id,
                                                                                customer_id=customer_id))

    batch = StreamBatch(get_settings().stream_notify_channel)
    handlers = {**make_handlers(get_settings(), batch),
                **{t: batch.flushing_first(h) for t, h in PRIVACY_HANDLERS.items()}}
    engine = create_async_engine(gateway_db)
    pool = await create_raw_pool(gateway_db, size=1)
    try:
        async with pool.acquire() as conn, conn.transaction():
            await batch.begin(conn)
            for event in (created(mine, "欧阳 Lan", "lan@example.cn"), created(other, "Other One", "o@example.cn"),
                          created(moved, "Moved One", "m@example.cn"), created(naming, "Someone", "s@example.cn",
                                                                                 subject="转告 lan@example.cn"),
                          linked(mine, me), linked(moved, me), linked(moved, someone), linked(other, someone)):
                await handlers[event.type](conn, event)
            await batch.flush(conn)
        async with pool.acquire() as conn:
            assert await conn.fetchval("SELECT count(*) FROM stream_events") == 4  # a link is no stream row
            assert dict(await conn.fetch("SELECT ticket_id, customer_id FROM stream_ticket_customers")) == {
                mine: me, moved: someone, other: someone}
        ask = events.PrivacyErasureRequested(source="customer-svc", subject=str(me), data=events.ErasureRequestedData(
            request_id=uuid.uuid4(), customer_id=me, requested_at=now))
        async with pool.acquire() as conn, conn.transaction():
            await batch.begin(conn)
            await handlers[ask.type](conn, ask)
            await batch.flush(conn)
        async with engine.connect() as conn:
            left = set((await conn.execute(text("SELECT ticket_id FROM stream_events"))).scalars().all())
            links = set((await conn.execute(text("SELECT ticket_id FROM stream_ticket_customers"))).scalars().all())
            named = (await conn.execute(text(
                "SELECT count(*) FROM stream_events WHERE payload::text LIKE '%lan@example.cn%'"))).scalar()
    finally:
        await pool.close()
        await engine.dispose()
    assert left == {other, moved} and links == {other, moved} and named == 0



async def test_a_link_that_arrives_after_the_erasure_drops_the_tickets_rows(gateway_env, gateway_db):
    """``ticket.customer_linked`` comes on the tickets topic and the erasure on the privacy topic,
    so the link can come second: a link to an erased customer drops the ticket's stored rows, and
    in a batch after the erasure the ticket's rows are not stored at all; other tickets stay."""
    from gateway.config import get_settings
    from gateway.main import PRIVACY_HANDLERS
    from gateway.stream.handlers import StreamBatch, make_handlers

    me, stored, late, other = (uuid.uuid4() for _ in range(4))
    now = datetime.now(UTC)

    def created(ticket_id):
        return events.TicketCreated(source="ticket-svc", subject=str(ticket_id), data=events.TicketCreatedData(
            ticket_id=ticket_id, subject="发票", status="new", priority="normal", customer_id=None,
            requester=events.Requester(name="Late Link", email="late.link@example.cn"),
            created_by="channel:k", created_at=now))

    def linked(ticket_id, customer_id):
        return events.TicketCustomerLinked(source="ticket-svc", subject=str(ticket_id),
                                           data=events.TicketCustomerLinkedData(ticket_id=ticket_id,
                                                                                customer_id=customer_id))

    ask = events.PrivacyErasureRequested(source="customer-svc", subject=str(me), data=events.ErasureRequestedData(
        request_id=uuid.uuid4(), customer_id=me, requested_at=now))
    batch = StreamBatch(get_settings().stream_notify_channel)
    handlers = {**make_handlers(get_settings(), batch),
                **{t: batch.flushing_first(h) for t, h in PRIVACY_HANDLERS.items()}}
    pool = await create_raw_pool(gateway_db, size=1)
    try:
        for batch_events in ([created(stored)], [ask], [linked(stored, me), created(late), linked(late, me),
                                                         created(other)]):
            async with pool.acquire() as conn, conn.transaction():
                await batch.begin(conn)
                for event in batch_events:
                    await handlers[event.type](conn, event)
                await batch.flush(conn)
        async with pool.acquire() as conn:
            left = [r["ticket_id"] for r in await conn.fetch("SELECT ticket_id FROM stream_events")]
    finally:
        await pool.close()
    assert left == [other]
