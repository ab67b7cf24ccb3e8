"""The gateway's erasure handler on a real database: the live stream's rows of the person's
tickets, and any row naming them, are deleted; other rows stay; the request is acknowledged
(again on a redelivery)."""

import json
import uuid
from datetime import UTC, datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from helpdesk_common import events


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
        for _ in range(2):
            async with engine.begin() as conn:
                await handle_erasure_requested(conn, ask)
        async with engine.connect() as conn:
            left = (await conn.execute(text("SELECT ticket_id, payload FROM stream_events"))).all()
            acks = (await conn.execute(text(
                "SELECT payload FROM outbox WHERE event_type = 'privacy.erasure_completed'"))).all()
    finally:
        await engine.dispose()
    assert [(r.ticket_id, r.payload) for r in left] == [(other, {"ticket_id": str(other), "status": "open"})]
    assert [events.decode(a.payload).data.service for a in acks] == ["gateway", "gateway"]
