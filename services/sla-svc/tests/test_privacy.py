"""sla-svc's erasure handler on a real database: the person's tickets keep numbers, booleans and
the brand, their free-text custom-field values are redacted, another customer's stay; it
acknowledges, again on a redelivery."""

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
    other = uuid.uuid4()
    fields = {"brand": "acme", "vip": True, "seats": 3, "address": "Room 5, 88 Nanjing Rd", "contacts": ["a@b.cn"]}
    try:
        async with engine.begin() as conn:
            from sla_svc.tickets import repository as tickets

            for ticket_id, customer in ((uuid.uuid4(), me), (uuid.uuid4(), other)):
                await tickets.upsert_created(conn, ticket_id=ticket_id, status="new", priority="normal", type=None,
                                             channel="web", tags=[], customer_tier=None, custom_fields=fields,
                                             team_id=None, assignee_id=None, created_at=datetime.now(UTC),
                                             customer_id=customer)
        for _ in range(2):
            async with engine.begin() as conn:
                await handle_erasure_requested(conn, ask)
        async with engine.connect() as conn:
            acks = (await conn.execute(text(
                "SELECT payload FROM outbox WHERE event_type = 'privacy.erasure_completed'"))).all()
            kept = {r.customer_id: r.custom_fields for r in (await conn.execute(text(
                "SELECT customer_id, custom_fields FROM sla_tickets"))).all()}
    finally:
        await engine.dispose()
    assert [(events.decode(a.payload).data.request_id, events.decode(a.payload).data.service) for a in acks] == [
        (ask.data.request_id, "sla-svc")] * 2
    assert kept == {me: {"brand": "acme", "vip": True, "seats": 3, "address": "[redacted]", "contacts": "[redacted]"},
                    other: fields}
