"""sla-svc's erasure handler on a real database: nothing of the person is held (the package's
docstring), so it acknowledges, again on a redelivery."""

import uuid
from datetime import UTC, datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from helpdesk_common import events


async def test_erasure_is_acknowledged(sla_db):
    from sla_svc.privacy.handlers import handle_erasure_requested

    me = uuid.uuid4()
    ask = events.PrivacyErasureRequested(source="customer-svc", subject=str(me), data=events.ErasureRequestedData(
        request_id=uuid.uuid4(), customer_id=me, requested_at=datetime.now(UTC)))
    engine = create_async_engine(sla_db)
    try:
        for _ in range(2):
            async with engine.begin() as conn:
                await handle_erasure_requested(conn, ask)
        async with engine.connect() as conn:
            acks = (await conn.execute(text(
                "SELECT payload FROM outbox WHERE event_type = 'privacy.erasure_completed'"))).all()
    finally:
        await engine.dispose()
    assert [(events.decode(a.payload).data.request_id, events.decode(a.payload).data.service) for a in acks] == [
        (ask.data.request_id, "sla-svc")] * 2
