"""Merging customers on the real database: everything follows the survivor in one transaction,
the merged id is a tombstone (410 naming the survivor), a retry changes nothing, opposite
merges racing each other neither deadlock nor both succeed; splitting an identity off again."""

import asyncio
import uuid

from sqlalchemy import text

from helpdesk_common import events
from helpdesk_common.identity import Principal
from helpdesk_common.testing import identity_headers

ADMIN = identity_headers(Principal(kind="user", id="u1", role="admin"))
SUPERVISOR = identity_headers(Principal(kind="user", id="u3", role="supervisor"))
AGENT = identity_headers(Principal(kind="user", id="u2", role="agent"))
CHANNEL = identity_headers(Principal(kind="channel", id="k1", channel="web"))
OWNER = str(uuid.uuid4())


async def create(api, identities: list[tuple[str, str]], **profile) -> dict:
    r = await api.post("/v1/customers", json={"identities": [{"kind": k, "value": v} for k, v in identities],
                                              **profile}, headers=SUPERVISOR)
    assert r.status_code == 201, r.text
    return r.json()


async def outbox(db, prefix: str = "") -> list:
    async with db.connect() as conn:
        rows = (await conn.execute(text("SELECT key, payload FROM outbox WHERE event_type LIKE :p ORDER BY seq"),
                                   {"p": prefix + "%"})).all()
    return [(r.key, events.decode(r.payload)) for r in rows]


async def scalar(db, sql: str, **params):
    async with db.connect() as conn:
        return (await conn.execute(text(sql), params)).scalar()


async def facts_of(db, customer_id: str) -> None:
    """Rows other packages own (surveys, the ticket projection, timeline, scores) for a customer."""
    async with db.begin() as conn:
        params = {"c": customer_id}
        await conn.execute(text("INSERT INTO surveys (id, kind, customer_id, send_at) "
                                "VALUES (gen_random_uuid(), 'nps', :c, now())"), params)
        await conn.execute(text("INSERT INTO customer_tickets (ticket_id, customer_id, status, created_at, updated_at) "
                                "VALUES (gen_random_uuid(), :c, 'open', now(), now())"), params)
        await conn.execute(text("INSERT INTO customer_timeline (id, customer_id, at, kind) "
                                "VALUES (gen_random_uuid(), :c, now(), 'ticket.created')"), params)
        await conn.execute(text("INSERT INTO customer_insights (customer_id, churn_score) VALUES (:c, 80)"), params)
        await conn.execute(text("INSERT INTO insight_dirty (customer_id) VALUES (:c) ON CONFLICT DO NOTHING"), params)


async def test_merge_moves_everything_once(api, db):
    survivor = await create(api, [("email", "zhang@example.com")], name="张三", tags=["vip"], notes="A 的备注")
    merged = await create(api, [("phone", "+8613800138000"), ("wechat_openid", "o-zhang")], name="Zhang San",
                          tier="gold", tags=["new", "vip"], notes="B notes", account_owner_id=OWNER,
                          language="zh-CN")
    a, b = survivor["id"], merged["id"]
    order = {"external_id": "SO-1", "ordered_at": "2026-11-01T10:00:00+08:00", "amount": "12.50", "currency": "CNY"}
    assert (await api.post(f"/v1/customers/{b}/orders", json=order, headers=SUPERVISOR)).status_code == 201
    for owner, external_id in ((a, "ev-1"), (b, "ev-1"), (b, "ev-2")):
        r = await api.post(f"/v1/customers/{owner}/interactions", json={
            "kind": "login", "occurred_at": "2026-11-02T10:00:00Z", "external_id": external_id}, headers=SUPERVISOR)
        assert r.status_code == 201, r.text
    await facts_of(db, b)
    before = await outbox(db)
    timeline_of_b = await scalar(db, "SELECT count(*) FROM customer_timeline WHERE customer_id = :c", c=b)

    r = await api.post(f"/v1/customers/{a}/merge", json={"source_id": b}, headers=SUPERVISOR)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["id"] == a and body["version"] == survivor["version"] + 1
    assert r.headers["etag"] == f'W/"{body["version"]}"'
    assert {(i["kind"], i["value"]) for i in body["identities"]} == {
        ("email", "zhang@example.com"), ("phone", "+8613800138000"), ("wechat_openid", "o-zhang")}
    # the survivor's values win, the merged one's fill the gaps; tags united, notes appended
    assert (body["name"], body["tier"], body["account_owner_id"], body["language"]) == ("张三", "gold", OWNER, "zh-CN")
    assert body["tags"] == ["vip", "new"] and body["notes"] == "A 的备注\n\n---\nB notes"
    assert (await api.get(f"/v1/customers/{a}", headers=ADMIN)).json() == body

    for table in ("orders", "surveys", "customer_tickets"):
        assert await scalar(db, f"SELECT count(*) FROM {table} WHERE customer_id = :c", c=b) == 0
        assert await scalar(db, f"SELECT count(*) FROM {table} WHERE customer_id = :c", c=a) == 1
    assert await scalar(db, "SELECT count(*) FROM interactions WHERE customer_id = :c", c=a) == 2  # ev-1 once
    assert await scalar(db, "SELECT count(*) FROM customer_timeline WHERE customer_id = :c AND kind = 'ticket.created'",
                        c=a) == 1
    assert await scalar(db, "SELECT count(*) FROM customer_timeline WHERE customer_id = :c", c=b) == 0
    assert await scalar(db, "SELECT count(*) FROM customer_insights WHERE customer_id = :c", c=b) == 0
    assert await scalar(db, "SELECT array_agg(customer_id::text) FROM insight_dirty") == [a]
    assert str(await scalar(db, "SELECT merged_into FROM customers WHERE id = :c", c=b)) == a
    async with db.connect() as conn:
        audit = (await conn.execute(text("SELECT * FROM customer_merges"))).one()
        merged_entry = (await conn.execute(text(
            "SELECT * FROM customer_timeline WHERE kind = 'customer.merged'"))).one()
    assert (str(audit.survivor_id), str(audit.merged_id), audit.actor) == (a, b, "user:u3")
    from customer_svc.pii.codec import codec  # the audit keeps the moved identities encrypted

    assert {(i["kind"], codec().open_merge_identity(i["value_enc"])) for i in audit.identities} == {
        ("phone", "+8613800138000"), ("wechat_openid", "o-zhang")}
    assert audit.moved == {"orders": 1, "surveys": 1, "customer_tickets": 1, "customer_timeline": timeline_of_b,
                           "interactions": 1, "interactions_dropped": 1, "identities": 2}
    assert (str(merged_entry.customer_id), str(merged_entry.ref_id)) == (a, b)
    assert await scalar(db, "SELECT summary->>'after' FROM customer_timeline WHERE kind = 'tier.changed' "
                            "AND customer_id = :c", c=a) == "gold"

    emitted = (await outbox(db))[len(before):]
    async with db.connect() as conn:
        moved_ticket = str((await conn.execute(text("SELECT ticket_id FROM customer_tickets"))).scalar())
    assert [(key, e.type) for key, e in emitted] == [(a, "customer.merged"), (a, "customer.updated"),
                                                     (moved_ticket, "customer.requester_resolved")]
    assert (str(emitted[2][1].data.customer_id), emitted[2][1].data.created) == (a, False)
    event = emitted[0][1].data
    assert (str(event.survivor_id), str(event.merged_id), event.actor) == (a, b, "user:u3")
    assert {(i.kind, i.value) for i in event.identities} == {("phone", "+8613800138000"), ("wechat_openid", "o-zhang")}
    updated = emitted[1][1].data
    assert updated.tier == "gold" and updated.version == body["version"]
    assert set(updated.changes) == {"tier", "account_owner_id", "language", "tags", "notes"}

    # a retry answers the survivor and changes nothing
    again = await api.post(f"/v1/customers/{a}/merge", json={"source_id": b}, headers=ADMIN)
    assert again.status_code == 200 and again.json() == body
    assert len(await outbox(db)) == len(before) + 3
    assert await scalar(db, "SELECT count(*) FROM customer_merges") == 1

    # the merged id is a tombstone naming the survivor; searches leave it out
    gone = await api.get(f"/v1/customers/{b}", headers=AGENT)
    assert gone.status_code == 410 and gone.headers["content-type"] == "application/problem+json"
    assert gone.json()["survivor_id"] == a and a in gone.json()["detail"]
    patch = await api.patch(f"/v1/customers/{b}", json={"name": "x"}, headers=SUPERVISOR)
    assert patch.status_code == 410 and patch.json()["survivor_id"] == a
    added = await api.post(f"/v1/customers/{b}/identities", json={"kind": "email", "value": "b@example.com"},
                           headers=SUPERVISOR)
    assert added.status_code == 410
    late_order = await api.post(f"/v1/customers/{b}/orders", json={**order, "external_id": "SO-2"}, headers=SUPERVISOR)
    assert late_order.status_code == 404  # recorded for the survivor, never onto a tombstone
    listed = (await api.get("/v1/customers", params={"q": "Zhang San"}, headers=AGENT)).json()["items"]
    assert listed == []
    by_phone = (await api.get("/v1/customers", params={"phone": "13800138000"}, headers=AGENT)).json()["items"]
    assert [c["id"] for c in by_phone] == [a]


async def test_merge_with_idempotency_key_replays(api, db):
    a = (await create(api, [("email", "a@example.com")]))["id"]
    b = (await create(api, [("email", "b@example.com")]))["id"]
    headers = {**SUPERVISOR, "Idempotency-Key": "merge-1"}
    first = await api.post(f"/v1/customers/{a}/merge", json={"source_id": b}, headers=headers)
    replay = await api.post(f"/v1/customers/{a}/merge", json={"source_id": b}, headers=headers)
    assert first.status_code == replay.status_code == 200
    assert replay.headers["idempotent-replayed"] == "true" and replay.json() == first.json()
    assert len(await outbox(db, "customer.merged")) == 1
    other = await api.post(f"/v1/customers/{a}/merge", json={"source_id": str(uuid.uuid4())}, headers=headers)
    assert other.status_code == 422 and other.json()["type"].endswith("idempotency-key-reused")


async def test_merge_refusals(api, db):
    a = (await create(api, [("email", "a@example.com")]))["id"]
    b = (await create(api, [("email", "b@example.com")]))["id"]
    c = (await create(api, [("email", "c@example.com")]))["id"]
    url = f"/v1/customers/{a}/merge"
    for headers in (AGENT, CHANNEL):
        r = await api.post(url, json={"source_id": b}, headers=headers)
        assert r.status_code == 403 and r.headers["content-type"] == "application/problem+json"
    itself = await api.post(url, json={"source_id": a}, headers=SUPERVISOR)
    assert itself.status_code == 422 and itself.json()["errors"][0]["field"] == "body.source_id"
    unknown = str(uuid.uuid4())
    missing = await api.post(url, json={"source_id": unknown}, headers=SUPERVISOR)
    assert missing.status_code == 404 and unknown in missing.json()["detail"]
    no_survivor = await api.post(f"/v1/customers/{unknown}/merge", json={"source_id": b}, headers=SUPERVISOR)
    assert no_survivor.status_code == 404
    for bad in ({}, {"source_id": "nope"}, {"source_id": b, "extra": 1}):
        assert (await api.post(url, json=bad, headers=SUPERVISOR)).status_code == 422
    assert (await api.post(url, json={"source_id": b}, headers=SUPERVISOR)).status_code == 200
    # b is gone: merging it into another, or anything into it, names it
    elsewhere = await api.post(f"/v1/customers/{c}/merge", json={"source_id": b}, headers=SUPERVISOR)
    assert elsewhere.status_code == 409 and elsewhere.json()["customer_id"] == b
    assert elsewhere.json()["survivor_id"] == a
    into_merged = await api.post(f"/v1/customers/{b}/merge", json={"source_id": c}, headers=SUPERVISOR)
    assert into_merged.status_code == 409 and into_merged.json()["customer_id"] == b
    assert len(await outbox(db, "customer.merged")) == 1
    # a merged survivor merged again: older tombstones follow it to the new survivor
    assert (await api.post(f"/v1/customers/{c}/merge", json={"source_id": a}, headers=SUPERVISOR)).status_code == 200
    assert (await api.get(f"/v1/customers/{b}", headers=AGENT)).json()["survivor_id"] == c


async def test_opposite_merges_race_without_deadlock(api, db):
    for round_ in range(5):
        a = (await create(api, [("email", f"a{round_}@example.com")]))["id"]
        b = (await create(api, [("email", f"b{round_}@example.com")]))["id"]
        results = await asyncio.gather(
            api.post(f"/v1/customers/{a}/merge", json={"source_id": b}, headers=SUPERVISOR),
            api.post(f"/v1/customers/{b}/merge", json={"source_id": a}, headers=ADMIN))
        assert sorted(r.status_code for r in results) == [200, 409], [r.text for r in results]
        winner = next(r for r in results if r.status_code == 200).json()
        assert len(winner["identities"]) == 2
    assert await scalar(db, "SELECT count(*) FROM customer_merges") == 5
    assert len(await outbox(db, "customer.merged")) == 5


async def test_two_survivors_racing_for_one_customer(api, db):
    """A←B and C←B at once: B goes to exactly one of them, the other answers 409 naming it."""
    a = (await create(api, [("email", "race-a@example.com")]))["id"]
    b = (await create(api, [("email", "race-b@example.com")]))["id"]
    c = (await create(api, [("email", "race-c@example.com")]))["id"]
    results = await asyncio.gather(
        api.post(f"/v1/customers/{a}/merge", json={"source_id": b}, headers=SUPERVISOR),
        api.post(f"/v1/customers/{c}/merge", json={"source_id": b}, headers=ADMIN))
    assert sorted(r.status_code for r in results) == [200, 409], [r.text for r in results]
    winner = next(r for r in results if r.status_code == 200).json()["id"]
    loser = next(r for r in results if r.status_code == 409).json()
    assert (loser["customer_id"], loser["survivor_id"]) == (b, winner)
    assert str(await scalar(db, "SELECT merged_into FROM customers WHERE id = :c", c=b)) == winner
    assert await scalar(db, "SELECT count(*) FROM customer_identities WHERE customer_id = :c", c=winner) == 2


async def test_split_identity_to_a_new_or_given_customer(api, db):
    customer = await create(api, [("email", "zhang@example.com"), ("phone", "+8613800138000"),
                                  ("wechat_openid", "o-li")], name="张三")
    cid = customer["id"]
    ids = {i["kind"]: i["id"] for i in customer["identities"]}
    before = len(await outbox(db))
    url = f"/v1/customers/{cid}/identities/{ids['wechat_openid']}/unmerge"
    assert (await api.post(url, json={}, headers=AGENT)).status_code == 403
    r = await api.post(url, json={"name": "李四"}, headers=SUPERVISOR)
    assert r.status_code == 201, r.text
    new = r.json()
    assert new["id"] != cid and new["name"] == "李四"
    assert [(i["kind"], i["value"]) for i in new["identities"]] == [("wechat_openid", "o-li")]
    left = (await api.get(f"/v1/customers/{cid}", headers=AGENT)).json()
    assert {i["kind"] for i in left["identities"]} == {"email", "phone"}
    assert left["version"] == customer["version"] + 1
    emitted = (await outbox(db))[before:]
    assert [(key, e.type) for key, e in emitted] == [(cid, "customer.identity_removed"),
                                                     (new["id"], "customer.created")]
    assert (emitted[0][1].data.identity.kind, emitted[0][1].data.actor) == ("wechat_openid", "user:u3")
    assert [(i.kind, i.value) for i in emitted[1][1].data.identities] == [("wechat_openid", "o-li")]
    assert await scalar(db, "SELECT count(*) FROM customer_timeline WHERE kind = 'customer.identity_split'") == 2

    # to a given customer; the identity found by it afterwards
    other = (await create(api, [("email", "li@example.com")]))["id"]
    before = len(await outbox(db))
    r = await api.post(f"/v1/customers/{cid}/identities/{ids['phone']}/unmerge", json={"target_customer_id": other},
                       headers=ADMIN)
    assert r.status_code == 200 and r.json()["id"] == other
    assert {i["kind"] for i in r.json()["identities"]} == {"email", "phone"}
    emitted = (await outbox(db))[before:]
    assert [(key, e.type) for key, e in emitted] == [(cid, "customer.identity_removed"),
                                                     (other, "customer.identity_added")]
    found = (await api.get("/v1/customers", params={"phone": "+8613800138000"}, headers=AGENT)).json()["items"]
    assert [c["id"] for c in found] == [other]

    # the last identity stays; a gone identity, a merged or the same target are refused
    last = await api.post(f"/v1/customers/{cid}/identities/{ids['email']}/unmerge", json={}, headers=SUPERVISOR)
    assert last.status_code == 409 and last.json()["type"].endswith("last-identity")
    again = await api.post(url, json={}, headers=SUPERVISOR)
    assert again.status_code == 404
    same = await api.post(f"/v1/customers/{other}/identities/{ids['phone']}/unmerge",
                          json={"target_customer_id": other}, headers=SUPERVISOR)
    assert same.status_code == 422
    assert (await api.post(f"/v1/customers/{cid}/merge", json={"source_id": new["id"]},
                           headers=SUPERVISOR)).status_code == 200
    into_gone = await api.post(f"/v1/customers/{other}/identities/{ids['phone']}/unmerge",
                               json={"target_customer_id": new["id"]}, headers=SUPERVISOR)
    assert into_gone.status_code == 409 and into_gone.json()["survivor_id"] == cid


async def test_a_resolution_racing_a_merge_follows_the_survivor(api, raw):
    """What a resolution sees when it read an identity's owner just before a merge of that owner
    committed (the identity still names the merged customer in its snapshot): it links the ticket
    to the survivor, not to the tombstone. The state is made by hand, the race's moment frozen."""
    from customer_svc.customers import service

    survivor = (await create(api, [("email", "keep@example.com")]))["id"]
    merged = (await create(api, [("email", "gone@example.com")]))["id"]
    await raw.execute("UPDATE customers SET merged_into = $1 WHERE id = $2", uuid.UUID(survivor), uuid.UUID(merged))
    customer_id, created = await service.resolve_requester(
        raw, ticket_id=uuid.uuid4(), requester={"email": "gone@example.com", "phone": "+8613800138111"})
    assert (str(customer_id), created) == (survivor, False)
    owner = await raw.fetchval("SELECT customer_id FROM customer_identities WHERE kind = 'phone'")
    assert str(owner) == survivor  # a new identity of the person goes to the survivor too
