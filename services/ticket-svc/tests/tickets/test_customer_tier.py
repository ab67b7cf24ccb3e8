"""customer-svc's customer.updated through the real broker: the tier reaches open tickets
(one audited ticket.updated each, so sla-svc re-targets), routing rules at intake, the
ticket.created contract, the list filter; late and duplicate deliveries change nothing."""

import uuid
from datetime import UTC, datetime

from sqlalchemy import text

from helpdesk_common import events
from helpdesk_common.identity import Principal
from helpdesk_common.testing import identity_headers, produce, wait_for

CHANNEL = identity_headers(Principal(kind="channel", id="key-1", channel="wechat"))
ADMIN = identity_headers(Principal(kind="user", id="u-admin", role="admin"))
AGENT = identity_headers(Principal(kind="user", id="u-agent", role="agent"))


def known_customer(customer_id, email):
    return events.CustomerCreated(source="test", subject=str(customer_id), data=events.CustomerCreatedData(
        customer_id=customer_id, identities=[{"kind": "email", "value": email}], created_at=datetime.now(UTC)))


def tier_set(customer_id, tier, version, before=None):
    return events.CustomerUpdated(source="test", subject=str(customer_id), data=events.CustomerUpdatedData(
        customer_id=customer_id, version=version, tier=tier, changes={"tier": {"before": before, "after": tier}},
        updated_at=datetime.now(UTC)))


def resolved(ticket_id, customer_id):
    return events.CustomerRequesterResolved(source="test", subject=str(ticket_id), data=events.CustomerRequesterResolvedData(
        ticket_id=ticket_id, customer_id=customer_id, created=False))


async def open_ticket(client, email, subject="账单问题"):
    r = await client.post("/v1/tickets", json={"subject": subject, "requester": {"email": email}}, headers=CHANNEL)
    assert r.status_code == 201, r.text
    return r.json()


async def tier_of(client, ticket_id):
    return (await client.get(f"/v1/tickets/{ticket_id}", headers=AGENT)).json()["customer_tier"]


async def outbox(db, event_type, ticket_id=None):
    async with db.connect() as conn:
        rows = (await conn.execute(text("SELECT payload FROM outbox WHERE event_type = :t ORDER BY seq"),
                                   {"t": event_type})).all()
    found = [events.decode(r.payload) for r in rows]
    return [e for e in found if ticket_id is None or str(e.data.ticket_id) == str(ticket_id)]


async def test_tier_change_reaches_open_tickets_once_and_late_versions_are_ignored(full_client, infra, db):
    cid = uuid.uuid4()
    await produce(infra.kafka_bootstrap, full_client.topics, known_customer(cid, "vip@example.com"))
    a = await open_ticket(full_client, "vip@example.com")
    b = await open_ticket(full_client, "vip@example.com")
    closed = await open_ticket(full_client, "vip@example.com")
    other = await open_ticket(full_client, "someone@example.com")
    for ticket in (a, b, closed):
        ticket_id = uuid.UUID(ticket["id"])
        await produce(infra.kafka_bootstrap, full_client.topics, resolved(ticket_id, cid))
    await wait_for(lambda: _linked(full_client, closed["id"]))
    for status in ("solved", "closed"):
        r = await full_client.patch(f"/v1/tickets/{closed['id']}", json={"status": status}, headers=ADMIN)
        assert r.status_code == 200, r.text

    # version 2 delivered twice, then version 1 arrives late: the tier stays at version 2's
    await produce(infra.kafka_bootstrap, full_client.topics, tier_set(cid, "vip", 2), tier_set(cid, "vip", 2),
                  tier_set(cid, "gold", 1))

    async def both_vip():
        return all([await tier_of(full_client, t["id"]) == "vip" for t in (a, b)]) or None

    await wait_for(both_vip)
    # a marker event after the late one: once it is applied, everything before it was too
    marker = uuid.uuid4()
    await produce(infra.kafka_bootstrap, full_client.topics, tier_set(marker, "x", 1))
    async def marker_seen():
        async with db.connect() as conn:
            return await conn.scalar(text("SELECT 1 FROM customer_tier_projection WHERE customer_id = :c"), {"c": marker})
    await wait_for(marker_seen)

    for ticket in (a, b):
        [update] = await outbox(db, "ticket.updated", ticket["id"])
        assert update.data.changes == {"customer_tier": {"before": None, "after": "vip"}}
        assert update.data.actor == "system:customer"
        audit = (await full_client.get(f"/v1/tickets/{ticket['id']}/audit", headers=ADMIN)).json()["items"]
        assert [e for e in audit if e["action"] == "customer_tier_changed"][0]["changes"] == {
            "customer_tier": {"before": None, "after": "vip"}}
    assert await tier_of(full_client, closed["id"]) is None  # closed is final
    assert await tier_of(full_client, other["id"]) is None
    listed = (await full_client.get("/v1/tickets", params={"customer_tier": "VIP"}, headers=AGENT)).json()
    assert {t["id"] for t in listed["items"]} == {a["id"], b["id"]}

    # a new ticket from the same requester carries the tier from its first event on
    c = await open_ticket(full_client, "vip@example.com")
    assert c["customer_tier"] == "vip"
    [created] = await outbox(db, "ticket.created", c["id"])
    assert created.data.customer_tier == "vip"

    # the next version moves the tier on every open ticket again, one event each
    await produce(infra.kafka_bootstrap, full_client.topics, tier_set(cid, None, 3, before="vip"))

    async def all_cleared():
        return all([await tier_of(full_client, t["id"]) is None for t in (a, b, c)]) or None

    await wait_for(all_cleared)
    assert len(await outbox(db, "ticket.updated", a["id"])) == 2


async def test_a_ticket_linked_later_takes_the_tier_and_routing_sees_it_at_intake(full_client, infra, db):
    team = (await full_client.post("/v1/teams", json={"name": "VIP desk"}, headers=ADMIN)).json()
    rule = {"name": "VIP first", "conditions": [{"field": "customer_tier", "op": "eq", "value": "VIP"}],
            "actions": {"set_team": team["id"], "set_priority": "high"}}
    r = await full_client.post("/v1/routing/rules", json=rule, headers=ADMIN)
    assert r.status_code == 201, r.text

    # the ticket arrives before ticket-svc knows the customer: no tier, default routing
    early = await open_ticket(full_client, "later@example.com")
    assert early["customer_tier"] is None and early["team_id"] is None
    cid = uuid.uuid4()
    await produce(infra.kafka_bootstrap, full_client.topics, tier_set(cid, "vip", 2),
                  known_customer(cid, "later@example.com"), resolved(uuid.UUID(early["id"]), cid))

    async def tiered():
        return await tier_of(full_client, early["id"]) == "vip" or None

    await wait_for(tiered)
    [update] = await outbox(db, "ticket.updated", early["id"])
    assert update.data.changes["customer_tier"] == {"before": None, "after": "vip"}

    # now the projection knows identity and tier: the next ticket is routed by the tier rule
    routed = await open_ticket(full_client, "later@example.com", subject="second")
    assert routed["customer_tier"] == "vip"
    assert routed["team_id"] == team["id"] and routed["priority"] == "high"


async def _linked(client, ticket_id):
    body = (await client.get(f"/v1/tickets/{ticket_id}", headers=AGENT)).json()
    return body if body["customer_id"] else None
