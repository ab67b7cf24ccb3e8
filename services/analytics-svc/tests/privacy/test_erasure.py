"""analytics-svc's erasure through the real broker: a free-text custom field of the person's ticket
never reached the read model (only ``brand`` is kept), the person's numbers stay, and the request
is acknowledged (again on a redelivery)."""

import uuid
from datetime import UTC, datetime

from helpdesk_common import events
from helpdesk_common.pii_scan import scan_database
from helpdesk_common.testing import produce, wait_for

NOTE = "call Zhao Lili on 13712345678"


def created(ticket_id, customer_id, fields):
    return events.TicketCreated(source="ticket-svc", subject=str(ticket_id), data=events.TicketCreatedData(
        ticket_id=ticket_id, subject="x", status="new", priority="normal", channel="web",
        requester=events.Requester(), customer_id=customer_id, created_by="channel:web",
        created_at=datetime.now(UTC), number=1, custom_fields=fields))


async def test_erasure_keeps_numbers_and_drops_free_text(full, infra, raw, analytics_db):
    me, other = uuid.uuid4(), uuid.uuid4()
    mine, theirs = uuid.uuid4(), uuid.uuid4()
    await produce(infra.kafka_bootstrap, full.topics, created(mine, me, {"brand": "acme", "note": NOTE}),
                  created(theirs, other, {"brand": "acme", "note": "keep me"}))

    async def folded():
        return len(await raw.fetch("SELECT 1 FROM ticket_metrics WHERE ticket_id = ANY($1::uuid[])",
                                   [mine, theirs])) == 2

    await wait_for(folded)
    from helpdesk_common.identity import Principal
    from helpdesk_common.testing import identity_headers

    admin = identity_headers(Principal(kind="user", id="u-admin", role="admin"))
    export = await full.get(f"/v1/privacy/customers/{me}/export", headers=admin)
    assert export.status_code == 200, export.text
    assert [t["ticket_id"] for t in export.json()["ticket_metrics"]] == [str(mine)]
    assert (await full.get(f"/v1/privacy/customers/{me}/export", headers=identity_headers(
        Principal(kind="user", id="u-agent", role="agent")))).status_code == 403
    assert await scan_database(analytics_db, ["acme"])  # the scanner sees what is kept
    assert await scan_database(analytics_db, ["13712345678", "Zhao Lili", "keep me"]) == []
    ask = events.PrivacyErasureRequested(source="customer-svc", subject=str(me), data=events.ErasureRequestedData(
        request_id=uuid.uuid4(), customer_id=me, requested_at=datetime.now(UTC)))
    again = events.PrivacyErasureRequested(source="customer-svc", subject=str(me), data=ask.data)
    await produce(infra.kafka_bootstrap, full.topics, ask, again)

    async def acknowledged():
        return len(await raw.fetch("SELECT 1 FROM outbox WHERE event_type = 'privacy.erasure_completed'")) == 2

    await wait_for(acknowledged)
    assert await scan_database(analytics_db, ["13712345678", "Zhao Lili"]) == []
    assert len(await raw.fetch("SELECT 1 FROM ticket_metrics WHERE ticket_id = $1", mine)) == 1
