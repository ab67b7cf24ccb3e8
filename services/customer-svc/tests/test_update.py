"""Editing a customer on the real database: who may change the tier, If-Match, one
customer.updated per real change, tier filter."""

import asyncio
import uuid

import pytest
from sqlalchemy import text

from customer_svc.customers import service
from helpdesk_common import events
from helpdesk_common.identity import Principal
from helpdesk_common.testing import identity_headers

ADMIN = identity_headers(Principal(kind="user", id="u1", role="admin"))
SUPERVISOR = identity_headers(Principal(kind="user", id="u3", role="supervisor"))
AGENT = identity_headers(Principal(kind="user", id="u2", role="agent"))
CHANNEL = identity_headers(Principal(kind="channel", id="k1", channel="wechat"))


async def seed(raw, *requesters) -> list[uuid.UUID]:
    async with raw.transaction():
        return [(await service.resolve_requester(raw, ticket_id=uuid.uuid4(), requester=r))[0] for r in requesters]


async def updates(db) -> list[events.CustomerUpdated]:
    async with db.connect() as conn:
        rows = (await conn.execute(text(
            "SELECT payload FROM outbox WHERE event_type = 'customer.updated' ORDER BY seq"))).all()
    return [events.decode(r.payload) for r in rows]


async def test_supervisor_sets_tier_once_and_the_event_carries_the_change(api, raw, db):
    [cid] = await seed(raw, {"name": "王芳", "email": "wang@example.com"})
    r = await api.patch(f"/v1/customers/{cid}", json={"tier": " VIP "}, headers={**SUPERVISOR, "If-Match": 'W/"1"'})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["tier"] == "vip" and body["version"] == 2 and r.headers["etag"] == 'W/"2"'
    assert body["name"] == "王芳"  # untouched: only the fields sent change
    [event] = await updates(db)
    assert event.subject == str(cid)
    assert event.data.customer_id == cid and event.data.version == 2 and event.data.tier == "vip"
    assert event.data.changes == {"tier": {"before": None, "after": "vip"}}
    assert event.data.actor == "user:u3"

    # the same value again (full-width and upper case fold to it): no change, no event, no version bump
    again = await api.patch(f"/v1/customers/{cid}", json={"tier": "ＶＩＰ"}, headers=ADMIN)
    assert again.status_code == 200 and again.json()["version"] == 2
    assert len(await updates(db)) == 1

    # Chinese tiers are kept as written; null clears
    gold = await api.patch(f"/v1/customers/{cid}", json={"tier": "金牌"}, headers=ADMIN)
    assert gold.json()["tier"] == "金牌"
    cleared = await api.patch(f"/v1/customers/{cid}", json={"tier": None}, headers=ADMIN)
    assert cleared.json()["tier"] is None and cleared.json()["version"] == 4
    assert [e.data.changes["tier"]["after"] for e in await updates(db)] == ["vip", "金牌", None]


async def test_agents_edit_names_but_not_tiers(api, raw, db):
    [cid] = await seed(raw, {"email": "li@example.com"})
    denied = await api.patch(f"/v1/customers/{cid}", json={"tier": "vip"}, headers=AGENT)
    assert denied.status_code == 403 and denied.headers["content-type"] == "application/problem+json"
    named = await api.patch(f"/v1/customers/{cid}", json={"name": "Li Lei"}, headers=AGENT)
    assert named.status_code == 200 and named.json()["name"] == "Li Lei" and named.json()["tier"] is None
    assert (await api.patch(f"/v1/customers/{cid}", json={"name": "x"}, headers=CHANNEL)).status_code == 403
    assert (await api.patch(f"/v1/customers/{cid}", json={"name": "x"})).status_code == 401
    [event] = await updates(db)
    assert event.data.changes == {"name": {"before": None, "after": "Li Lei"}}


@pytest.mark.parametrize("body, field", [
    ({"tier": ""}, "body.tier"),
    ({"tier": "x" * 51}, "body.tier"),
    ({"tier": "v\nip"}, "body.tier"),
    ({"tier": 5}, "body.tier"),
    ({"colour": "red"}, "body.colour"),
    ({"name": "a\x00b"}, "body"),
])
async def test_bad_edits_are_422_problems_naming_the_field(api, raw, db, body, field):
    [cid] = await seed(raw, {"email": f"{uuid.uuid4().hex}@example.com"})
    r = await api.patch(f"/v1/customers/{cid}", json=body, headers=ADMIN)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert any(e["field"].startswith(field) for e in r.json()["errors"]), r.json()
    assert await updates(db) == []


async def test_if_match_conflicts_and_missing_customers(api, raw, db):
    [cid] = await seed(raw, {"email": "c@example.com"})
    stale = await api.patch(f"/v1/customers/{cid}", json={"tier": "gold"}, headers={**ADMIN, "If-Match": 'W/"7"'})
    assert stale.status_code == 412 and stale.json()["current_version"] == 1
    missing = await api.patch(f"/v1/customers/{uuid.uuid4()}", json={"tier": "gold"}, headers=ADMIN)
    assert missing.status_code == 404 and missing.headers["content-type"] == "application/problem+json"
    assert await updates(db) == []


async def test_concurrent_edits_with_the_same_version_let_exactly_one_through(api, raw, db):
    [cid] = await seed(raw, {"email": "race@example.com"})
    answers = await asyncio.gather(*(
        api.patch(f"/v1/customers/{cid}", json={"tier": f"t{i}"}, headers={**ADMIN, "If-Match": 'W/"1"'})
        for i in range(10)
    ))
    assert sorted(r.status_code for r in answers) == [200] + [412] * 9
    assert len(await updates(db)) == 1


async def test_list_filters_by_tier(api, raw, db):
    a, b, c = await seed(raw, {"email": "a@t.example"}, {"email": "b@t.example"}, {"email": "c@t.example"})
    for cid, tier in ((a, "vip"), (c, "vip"), (b, "gold")):
        assert (await api.patch(f"/v1/customers/{cid}", json={"tier": tier}, headers=ADMIN)).status_code == 200
    vip = (await api.get("/v1/customers", params={"tier": "VIP"}, headers=AGENT)).json()
    assert {i["id"] for i in vip["items"]} == {str(a), str(c)}
    assert all(i["tier"] == "vip" for i in vip["items"])
    assert (await api.get("/v1/customers", params={"tier": "none"}, headers=AGENT)).json()["items"] == []
