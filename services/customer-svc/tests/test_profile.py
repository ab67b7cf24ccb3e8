"""The customer profile on the real database: creating customers by hand, the new fields, who
may change what, tags, events carrying the profile, identities added and removed by hand."""

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
OWNER = str(uuid.uuid4())


async def outbox(db, *types: str) -> list:
    async with db.connect() as conn:
        rows = (await conn.execute(text("SELECT payload, event_type FROM outbox ORDER BY seq"))).all()
    return [events.decode(r.payload) for r in rows if not types or r.event_type in types]


async def resolve(raw, **requester) -> uuid.UUID:
    async with raw.transaction():
        return (await service.resolve_requester(raw, ticket_id=uuid.uuid4(), requester=requester))[0]


async def test_create_a_customer_by_hand(api, db):
    org = (await api.post("/v1/organizations", json={"name": "Acme", "domains": ["acme.cn"]}, headers=ADMIN)).json()
    body = {"name": "王芳", "identities": [{"kind": "email", "value": "Wang.Fang@Acme.cn"},
                                          {"kind": "phone", "value": "139 1111 2222"},
                                          {"kind": "external:erp", "value": "C-001"}],
            "tier": "VIP", "account_owner_id": OWNER, "language": "zh-cn", "time_zone": "Asia/Shanghai",
            "tags": ["重点", "Key Account"], "notes": "prefers WeChat"}
    r = await api.post("/v1/customers", json=body, headers={**SUPERVISOR, "Idempotency-Key": "c-1"})
    assert r.status_code == 201, r.text
    made = r.json()
    assert r.headers["location"] == f"/v1/customers/{made['id']}" and r.headers["etag"] == 'W/"1"'
    assert (made["name"], made["tier"], made["organization_id"], made["account_owner_id"], made["language"],
            made["time_zone"], made["tags"], made["notes"]) == (
        "王芳", "vip", org["id"], OWNER, "zh-CN", "Asia/Shanghai", ["重点", "key_account"], "prefers WeChat")
    assert [(i["kind"], i["value"]) for i in made["identities"]] == [  # oldest first, then by kind
        ("email", "wang.fang@acme.cn"), ("external:erp", "C-001"), ("phone", "+8613911112222")]
    again = await api.post("/v1/customers", json=body, headers={**SUPERVISOR, "Idempotency-Key": "c-1"})
    assert again.status_code == 201 and again.json()["id"] == made["id"] and again.headers["idempotent-replayed"] == "true"
    reused = await api.post("/v1/customers", json={**body, "name": "x"}, headers={**SUPERVISOR, "Idempotency-Key": "c-1"})
    assert reused.status_code == 422 and reused.json()["type"].endswith("/idempotency-key-reused")
    # the same identity for someone else is a 409 naming it
    taken = await api.post("/v1/customers", json={"identities": [{"kind": "phone", "value": "+86 139-1111-2222"}]},
                           headers=ADMIN)
    assert taken.status_code == 409 and taken.json()["type"].endswith("/identity-taken")

    created, updated = await outbox(db, "customer.created"), await outbox(db, "customer.updated")
    assert len(created) == 1 and created[0].data.organization_id == uuid.UUID(org["id"])
    assert [(i.kind, i.value) for i in created[0].data.identities] == [
        ("email", "wang.fang@acme.cn"), ("phone", "+8613911112222"), ("external:erp", "C-001")]
    # ticket-svc learns the tier from customer.updated: one comes with the creation
    [first] = updated
    assert first.data.version == 1 and first.data.tier == "vip" and first.data.language == "zh-CN"
    assert first.data.changes["tier"] == {"before": None, "after": "vip"} and first.data.changes["notes"] == {}


@pytest.mark.parametrize(("body", "field"), [
    ({"identities": []}, "body.identities"),
    ({"identities": [{"kind": "fax", "value": "1"}]}, "body.identities.0.kind"),
    ({"identities": [{"kind": "phone", "value": "call me"}]}, "body.identities.0.value"),
    ({"identities": [{"kind": "email", "value": "nope"}]}, "body.identities.0.value"),
    ({"identities": [{"kind": "email", "value": "a@b.cn"}], "language": "chinese"}, "body.language"),
    ({"identities": [{"kind": "email", "value": "a@b.cn"}], "time_zone": "Asia/Nowhere"}, "body.time_zone"),
    ({"identities": [{"kind": "email", "value": "a@b.cn"}], "account_owner_id": "bob"}, "body.account_owner_id"),
    ({"identities": [{"kind": "email", "value": "a@b.cn"}], "tags": ["x"] * 51}, "body.tags"),
    ({"identities": [{"kind": "email", "value": "a@b.cn"}], "organization_id": str(uuid.uuid4())},
     "body.organization_id"),
])
async def test_bad_creations_are_422_naming_the_field(api, body, field):
    r = await api.post("/v1/customers", json=body, headers=ADMIN)
    assert r.status_code == 422, r.text
    assert field in [e["field"] for e in r.json()["errors"]], r.text


async def test_agents_read_and_edit_name_and_notes_only(api, raw):
    cid = await resolve(raw, email="li@example.com")
    url = f"/v1/customers/{cid}"
    ok = await api.patch(url, json={"name": "Li Lei", "notes": "called twice"}, headers=AGENT)
    assert ok.status_code == 200 and ok.json()["notes"] == "called twice"
    for field, value in (("tier", "vip"), ("tags", ["a"]), ("add_tags", ["a"]), ("language", "en"),
                         ("account_owner_id", OWNER), ("organization_id", None), ("time_zone", "UTC")):
        r = await api.patch(url, json={field: value}, headers=AGENT)
        assert r.status_code == 403 and field in r.json()["detail"], (field, r.text)
    assert (await api.post("/v1/customers", json={"identities": [{"kind": "email", "value": "z@x.cn"}]},
                           headers=AGENT)).status_code == 403


async def test_supervisors_edit_the_profile_and_one_event_carries_it(api, raw, db):
    cid = await resolve(raw, name="Li", email="li@example.com")
    org = (await api.post("/v1/organizations", json={"name": "Beta"}, headers=ADMIN)).json()
    url = f"/v1/customers/{cid}"
    r = await api.patch(url, json={"organization_id": org["id"], "account_owner_id": OWNER, "language": "EN-gb",
                                   "time_zone": "Europe/London", "tags": ["Gold", "gold", "重要 客户"]},
                        headers={**SUPERVISOR, "If-Match": 'W/"1"'})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["organization_id"], body["language"], body["tags"], body["version"]) == (
        org["id"], "en-GB", ["gold", "重要_客户"], 2)
    tags = await api.patch(url, json={"add_tags": ["VIP", "gold"], "remove_tags": ["重要　客户"]}, headers=ADMIN)
    assert tags.json()["tags"] == ["gold", "vip"] and tags.json()["version"] == 3
    same = await api.patch(url, json={"tags": ["GOLD", "vip"], "language": "en-GB"}, headers=ADMIN)
    assert same.json()["version"] == 3  # no change, no version, no event
    cleared = await api.patch(url, json={"organization_id": None, "time_zone": None}, headers=ADMIN)
    assert cleared.json()["organization_id"] is None and cleared.json()["time_zone"] is None
    updates = await outbox(db, "customer.updated")
    assert [e.data.version for e in updates] == [2, 3, 4]
    first = updates[0].data
    assert set(first.changes) == {"organization_id", "account_owner_id", "language", "time_zone", "tags"}
    assert first.organization_id == uuid.UUID(org["id"]) and first.account_owner_id == uuid.UUID(OWNER)
    assert first.tags == ["gold", "重要_客户"] and first.time_zone == "Europe/London" and first.tier is None
    assert first.actor == "user:u3"


async def test_identities_by_hand(api, raw, db):
    cid = await resolve(raw, email="zhao@example.com")
    other = await resolve(raw, wechat_openid="o_other")
    url = f"/v1/customers/{cid}/identities"
    added = await api.post(url, json={"kind": "phone", "value": "0086 138 0013 8000"},
                           headers={**SUPERVISOR, "If-Match": 'W/"1"'})
    assert added.status_code == 201, added.text
    assert added.json()["version"] == 2 and added.headers["etag"] == 'W/"2"'
    phone = next(i for i in added.json()["identities"] if i["kind"] == "phone")
    assert phone["value"] == "+8613800138000"
    again = await api.post(url, json={"kind": "phone", "value": "+86 13800138000"}, headers=SUPERVISOR)
    assert again.status_code == 200 and again.json()["version"] == 2  # had it: nothing changes
    taken = await api.post(url, json={"kind": "wechat_openid", "value": "o_other"}, headers=SUPERVISOR)
    assert taken.status_code == 409 and taken.json()["errors"][0]["field"] == "body.value"
    bad = await api.post(url, json={"kind": "wechat_unionid", "value": "has space"}, headers=SUPERVISOR)
    assert bad.status_code == 422 and bad.json()["errors"][0] == {
        "field": "body.value", "message": "must be the platform's id: 1 to 128 letters, digits, - or _",
        "code": "cross_field"}
    assert (await api.post(url, json={"kind": "phone", "value": "+8613800138001"}, headers=AGENT)).status_code == 403
    assert (await api.post(f"/v1/customers/{uuid.uuid4()}/identities", json={"kind": "phone", "value": "+8613800138001"},
                           headers=SUPERVISOR)).status_code == 404
    stale = await api.post(url, json={"kind": "phone", "value": "+8613800138001"},
                           headers={**SUPERVISOR, "If-Match": 'W/"1"'})
    assert stale.status_code == 412

    # removing: never the last one; the removed identity is free for another customer
    removed = await api.delete(f"{url}/{phone['id']}", headers={**ADMIN, "If-Match": 'W/"2"'})
    assert removed.status_code == 200 and removed.json()["version"] == 3
    assert [i["kind"] for i in removed.json()["identities"]] == ["email"]
    assert (await api.delete(f"{url}/{phone['id']}", headers=ADMIN)).status_code == 404
    email_id = removed.json()["identities"][0]["id"]
    last = await api.delete(f"{url}/{email_id}", headers=ADMIN)
    assert last.status_code == 409 and last.json()["type"].endswith("/last-identity")
    assert (await api.post(f"/v1/customers/{other}/identities", json={"kind": "phone", "value": "13800138000"},
                           headers=ADMIN)).status_code == 201
    kinds = [(e.type, e.data.identity.kind) for e in await outbox(db, "customer.identity_added",
                                                                   "customer.identity_removed")]
    assert kinds == [("customer.identity_added", "phone"), ("customer.identity_removed", "phone"),
                     ("customer.identity_added", "phone")]


async def test_an_identity_added_by_hand_joins_the_organisation(api, raw):
    org = (await api.post("/v1/organizations", json={"name": "Gamma", "domains": ["gamma.example"]},
                          headers=ADMIN)).json()
    cid = await resolve(raw, phone="+8613700000000")
    r = await api.post(f"/v1/customers/{cid}/identities", json={"kind": "email", "value": "Boss@Gamma.example"},
                       headers=ADMIN)
    assert r.status_code == 201 and r.json()["organization_id"] == org["id"]
