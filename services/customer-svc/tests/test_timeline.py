"""The customer timeline: writes from orders, behaviour events, tier changes and tickets, read
newest first with a cursor and a kind filter, through the API."""

import uuid
from datetime import UTC, datetime, timedelta

from customer_svc.ticket_facts import service as facts
from customer_svc.timeline import repository as timeline
from helpdesk_common import events
from helpdesk_common.identity import Principal
from helpdesk_common.testing import identity_headers

SUPERVISOR = identity_headers(Principal(kind="user", id="u3", role="supervisor"))
AGENT = identity_headers(Principal(kind="user", id="u2", role="agent"))
CHANNEL = identity_headers(Principal(kind="channel", id="k1", channel="web"))
ORDER = {"external_id": "SO-1", "ordered_at": "2026-11-01T10:00:00+08:00", "amount": "12.5", "currency": "CNY",
         "status": "paid", "items": [{"sku": "A-1", "name": "茶叶", "quantity": 2, "unit_price": "6.25"}]}


async def new_customer(api) -> str:
    r = await api.post("/v1/customers", json={"name": "张三", "identities": [
        {"kind": "email", "value": f"{uuid.uuid4().hex[:8]}@example.com"}]}, headers=SUPERVISOR)
    assert r.status_code == 201, r.text
    return r.json()["id"]


async def all_entries(api, customer_id: str, **params) -> list[dict]:
    r = await api.get(f"/v1/customers/{customer_id}/timeline", params={"limit": 100, **params}, headers=AGENT)
    assert r.status_code == 200, r.text
    return r.json()["items"]


async def test_orders_behaviour_and_tier_changes_are_written_once_in_their_transaction(api):
    customer_id = await new_customer(api)
    orders = f"/v1/customers/{customer_id}/orders"
    assert (await api.post(orders, json=ORDER, headers=SUPERVISOR)).status_code == 201
    assert (await api.post(orders, json=ORDER, headers=SUPERVISOR)).status_code == 200  # unchanged: no entry
    assert (await api.post(orders, json={**ORDER, "status": "shipped"}, headers=SUPERVISOR)).status_code == 200
    behaviour = {"kind": "login", "occurred_at": "2026-11-02T08:00:00+08:00", "external_id": "ev-1",
                 "properties": {"城市": "上海", "email": "secret@example.com"}}
    interactions = f"/v1/customers/{customer_id}/interactions"
    assert (await api.post(interactions, json=behaviour, headers=SUPERVISOR)).status_code == 201
    assert (await api.post(interactions, json=behaviour, headers=SUPERVISOR)).status_code == 200
    current = await api.get(f"/v1/customers/{customer_id}", headers=AGENT)
    r = await api.patch(f"/v1/customers/{customer_id}", json={"tier": "Gold"},
                        headers={**SUPERVISOR, "If-Match": current.headers["ETag"]})
    assert r.status_code == 200, r.text
    r = await api.patch(f"/v1/customers/{customer_id}", json={"name": "张三丰"},
                        headers={**SUPERVISOR, "If-Match": r.headers["ETag"]})
    assert r.status_code == 200, r.text  # not a tier change: no entry

    items = await all_entries(api, customer_id)
    assert [i["kind"] for i in items] == ["tier.changed", "order.updated", "behavior.recorded", "order.recorded"]
    tier, updated, seen, recorded = items
    assert (tier["summary"]["before"], tier["summary"]["after"]) == (None, "gold")
    assert updated["summary"]["changed"] == ["status"] and updated["summary"]["status"] == "shipped"
    assert recorded["at"] == "2026-11-01T02:00:00Z" and recorded["summary"]["amount"] == "12.50"
    assert recorded["ref_id"] == updated["ref_id"] == recorded["summary"]["order_id"]
    assert seen["summary"] == {"behavior": "login", "external_id": "ev-1"}  # never the properties


async def test_pages_newest_first_with_a_cursor_and_a_kind_filter(api, raw):
    customer_id = uuid.UUID(await new_customer(api))
    other = uuid.UUID(await new_customer(api))
    start = datetime(2026, 1, 1, tzinfo=UTC)
    kinds = ["ticket.created", "message.customer", "ticket.solved", "order.recorded", "survey.answered"]
    for n in range(25):
        await timeline.record(raw, entry=timeline.entry_id(f"seed-{n}", "x"), customer_id=customer_id,
                              at=start + timedelta(hours=n // 2), kind=kinds[n % len(kinds)],
                              summary={"n": n})  # pairs share a time: the id breaks ties
    await timeline.record(raw, entry=uuid.uuid4(), customer_id=other, at=start, kind="ticket.created")
    assert not await timeline.record(raw, entry=timeline.entry_id("seed-0", "x"), customer_id=customer_id,
                                     at=start, kind="ticket.created")  # the same cause again: nothing

    seen, cursor = [], None
    while True:
        params = {"limit": 10} | ({"cursor": cursor} if cursor else {})
        r = await api.get(f"/v1/customers/{customer_id}/timeline", params=params, headers=AGENT)
        assert r.status_code == 200, r.text
        body = r.json()
        assert len(body["items"]) <= 10
        seen += body["items"]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 25 and len({i["id"] for i in seen}) == 25
    assert [i["summary"]["n"] // 2 for i in seen] == sorted((n // 2 for n in range(25)), reverse=True)
    assert set(seen[0]) == {"id", "at", "kind", "ref_id", "summary"}

    tickets = await all_entries(api, str(customer_id), kind="ticket")
    assert {i["kind"] for i in tickets} == {"ticket.created", "ticket.solved"} and len(tickets) == 10
    mixed = await all_entries(api, str(customer_id), kind="order.recorded,message,ticket.solved")
    assert {i["kind"] for i in mixed} == {"order.recorded", "message.customer", "ticket.solved"}
    assert await all_entries(api, str(customer_id), kind="nothing.here") == []


async def test_bad_requests_are_problems(api):
    customer_id = await new_customer(api)
    url = f"/v1/customers/{customer_id}/timeline"
    for params in ({"limit": 101}, {"limit": 0}, {"kind": "Ticket"}, {"kind": "ticket,"}, {"kind": "a.b.c"},
                   {"kind": "x" * 41}, {"unknown": "1"}):
        r = await api.get(url, params=params, headers=AGENT)
        assert r.status_code == 422, (params, r.status_code, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
    assert (await api.get(url, params={"cursor": "nope"}, headers=AGENT)).status_code == 400
    assert (await api.get(url, headers=CHANNEL)).status_code == 403
    missing = await api.get(f"/v1/customers/{uuid.uuid4()}/timeline", headers=AGENT)
    assert missing.status_code == 404 and missing.headers["content-type"].startswith("application/problem+json")


async def test_a_merged_customer_answers_like_its_record(api, raw):
    merged, survivor = await new_customer(api), await new_customer(api)
    await raw.execute("UPDATE customers SET merged_into = $2 WHERE id = $1", uuid.UUID(merged), uuid.UUID(survivor))
    for path in ("timeline", "360"):
        r = await api.get(f"/v1/customers/{merged}/{path}", headers=AGENT)
        plain = await api.get(f"/v1/customers/{merged}", headers=AGENT)
        assert r.status_code == plain.status_code == 410, r.text
        assert r.json()["type"] == plain.json()["type"]


async def test_ticket_entries_follow_the_projection(api, raw):
    customer_id = uuid.UUID(await new_customer(api))
    ticket_id = uuid.uuid4()
    at = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    async with raw.transaction():
        await facts.ticket_created(raw, events.TicketCreatedData(
            ticket_id=ticket_id, subject="发票 " + "x" * 300, status="new", priority="normal", channel="wechat",
            requester=events.Requester(), customer_id=customer_id, created_by="channel:k", created_at=at, number=7))
    items = await all_entries(api, str(customer_id))
    assert [i["kind"] for i in items] == ["ticket.created"]
    summary = items[0]["summary"]
    assert (summary["number"], summary["channel"], len(summary["subject"])) == (7, "wechat", 200)
    assert items[0]["ref_id"] == str(ticket_id)
