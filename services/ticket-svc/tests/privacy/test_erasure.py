"""ticket-svc's erasure of one customer through the real broker: the person's tickets keep their
shells (number, status, times) with a tombstone requester, their words and files go, agents'
mentions of the person on any ticket are redacted, published outbox rows naming them are purged,
and the scanner finds the person nowhere in ticket-svc's database; a redelivery acknowledges again
and changes nothing more. The export lists the person's tickets and messages."""

import base64
import uuid
from datetime import UTC, datetime

from sqlalchemy import text

from helpdesk_common import erasure, events
from helpdesk_common.identity import Principal
from helpdesk_common.pii_scan import scan_database
from helpdesk_common.testing import identity_headers, produce, wait_for

CHANNEL = identity_headers(Principal(kind="channel", id="key-1", channel="web"))
ADMIN = identity_headers(Principal(kind="user", id="u-admin", role="admin"))
AGENT = identity_headers(Principal(kind="user", id="u-agent", role="agent"))

NAME, EMAIL, PHONE = "Zhang Xiaohong", "zhang.xiaohong@example.cn", "+8613912345678"
OTHER = "li.lei@example.cn"


def now():
    return datetime.now(UTC)


async def rows(db, sql, **params):
    async with db.connect() as conn:
        return (await conn.execute(text(sql), params)).mappings().all()


async def test_erasure_redacts_the_person_everywhere_and_keeps_shells(full_client, infra, db, ticket_db):
    cid = uuid.uuid4()
    await produce(infra.kafka_bootstrap, full_client.topics, events.CustomerCreated(
        source="test", subject=str(cid), data=events.CustomerCreatedData(
            customer_id=cid, identities=[{"kind": "email", "value": EMAIL}, {"kind": "phone", "value": PHONE}],
            created_at=now())))

    async def known():
        return await rows(db, "SELECT 1 FROM customer_identity_projection WHERE customer_id = :c", c=cid)

    await wait_for(known)
    r = await full_client.post("/v1/tickets", json={
        "subject": f"Refund for {NAME}", "description": f"Call me at {PHONE}",
        "requester": {"name": NAME, "email": EMAIL, "phone": PHONE}}, headers=CHANNEL)
    assert r.status_code == 201, r.text
    mine = r.json()
    assert mine["customer_id"] == str(cid)
    file = base64.b64encode(f"invoice of {NAME}".encode()).decode()
    r = await full_client.post(f"/v1/tickets/{mine['id']}/messages", json={
        "body": f"Here is my invoice, {NAME}", "attachments": [{"filename": "invoice.txt", "content_type": "text/plain",
                                                                 "content_base64": file}]}, headers=CHANNEL)
    assert r.status_code == 201, r.text
    # someone else's ticket where an agent mentions the person
    r = await full_client.post("/v1/tickets", json={"subject": "Order question", "requester": {"email": OTHER}},
                               headers=CHANNEL)
    other = r.json()
    r = await full_client.post(f"/v1/tickets/{other['id']}/messages", json={
        "body": f"Same issue as {EMAIL} had last week", "public": False}, headers=ADMIN)
    assert r.status_code == 201, r.text

    export = await full_client.get(f"/v1/privacy/customers/{cid}/export", headers=ADMIN)
    assert export.status_code == 200, export.text
    assert [t["id"] for t in export.json()["tickets"]] == [mine["id"]]
    assert any(a.get("download") for m in export.json()["messages"] for a in m["attachments"])
    assert (await full_client.get(f"/v1/privacy/customers/{cid}/export", headers=AGENT)).status_code == 403

    needles = erasure.needles(name=NAME, identities=[("email", EMAIL), ("phone", PHONE)])
    assert await scan_database(ticket_db, needles)  # the scanner sees the person before

    # the outbox rows of the tickets must have been published before they can be purged
    async def published():
        return not await rows(db, "SELECT 1 FROM outbox WHERE sent_at IS NULL")

    await wait_for(published)
    request_id = uuid.uuid4()
    ask = events.PrivacyErasureRequested(source="test", subject=str(cid), data=events.ErasureRequestedData(
        request_id=request_id, customer_id=cid, identities=[], requested_at=now()))
    again = events.PrivacyErasureRequested(source="test", subject=str(cid), data=ask.data)  # a new event id
    await produce(infra.kafka_bootstrap, full_client.topics, ask, again)

    async def acknowledged():
        found = await rows(db, "SELECT payload FROM outbox WHERE event_type = 'privacy.erasure_completed'")
        return found if len(found) == 2 else None

    acks = await wait_for(acknowledged)
    assert {(events.decode(a["payload"]).data.request_id, events.decode(a["payload"]).data.service)
            for a in acks} == {(request_id, "ticket-svc")}

    async def clean():
        return not await scan_database(ticket_db, needles)

    await wait_for(clean, timeout=15, interval=0.5)
    ticket = (await full_client.get(f"/v1/tickets/{mine['id']}", headers=ADMIN)).json()
    assert ticket["number"] == mine["number"] and ticket["status"] == mine["status"]
    assert ticket["subject"] == erasure.REDACTED and ticket["requester"]["name"] == erasure.ERASED_NAME
    assert not await rows(db, "SELECT 1 FROM attachment_blobs")
    note = await rows(db, "SELECT body_text FROM messages WHERE ticket_id = :t AND NOT public", t=uuid.UUID(other["id"]))
    assert [n["body_text"] for n in note] == [f"Same issue as {erasure.REDACTED} had last week"]
    # the other requester is untouched
    assert await scan_database(ticket_db, [OTHER])
