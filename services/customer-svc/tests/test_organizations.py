"""Organisations on the real database: CRUD with roles, unique names and domains, If-Match,
events, list filters, and customers joining by e-mail domain (never by a webmail one)."""

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
CHANNEL = identity_headers(Principal(kind="channel", id="k1", channel="web"))


async def outbox(db, prefix: str) -> list:
    async with db.connect() as conn:
        rows = (await conn.execute(text("SELECT key, payload FROM outbox WHERE event_type LIKE :p ORDER BY seq"),
                                   {"p": prefix + "%"})).all()
    return [(r.key, events.decode(r.payload)) for r in rows]


async def create(api, **body):
    r = await api.post("/v1/organizations", json={"name": "Acme 科技", **body}, headers=SUPERVISOR)
    assert r.status_code == 201, r.text
    return r


async def resolve(raw, **requester) -> uuid.UUID:
    async with raw.transaction():
        return (await service.resolve_requester(raw, ticket_id=uuid.uuid4(), requester=requester))[0]


async def test_create_read_update_delete_with_events(api, db):
    r = await create(api, domains=["Acme.CN", "acme.com."], tier="Gold", notes="重要客户", attributes={})
    org = r.json()
    assert r.headers["etag"] == 'W/"1"' and r.headers["location"] == f"/v1/organizations/{org['id']}"
    assert (org["name"], org["domains"], org["tier"], org["notes"], org["version"]) == (
        "Acme 科技", ["acme.cn", "acme.com"], "gold", "重要客户", 1)
    url = f"/v1/organizations/{org['id']}"
    read = await api.get(url, headers=AGENT)
    assert read.status_code == 200 and read.json() == org and read.headers["etag"] == 'W/"1"'

    stale = await api.patch(url, json={"tier": "vip"}, headers={**SUPERVISOR, "If-Match": 'W/"7"'})
    assert stale.status_code == 412 and stale.json()["current_version"] == 1
    changed = await api.patch(url, json={"tier": "VIP", "domains": ["acme.cn"], "notes": None},
                              headers={**ADMIN, "If-Match": 'W/"1"'})
    assert changed.status_code == 200, changed.text
    assert (changed.json()["tier"], changed.json()["domains"], changed.json()["notes"], changed.json()["version"]) == (
        "vip", ["acme.cn"], None, 2)
    same = await api.patch(url, json={"tier": "ＶＩＰ", "name": "Acme 科技"}, headers=ADMIN)
    assert same.json()["version"] == 2  # nothing changed: no version, no event

    assert (await api.delete(url, headers={**ADMIN, "If-Match": 'W/"1"'})).status_code == 412
    assert (await api.delete(url, headers=ADMIN)).status_code == 204
    assert (await api.get(url, headers=ADMIN)).status_code == 404

    log = await outbox(db, "organization.")
    assert [e.type for _, e in log] == ["organization.created", "organization.updated", "organization.deleted"]
    assert all(key == org["id"] and e.data.organization_id == uuid.UUID(org["id"]) for key, e in log)
    updated = log[1][1].data
    assert updated.version == 2 and updated.actor == "user:u1"
    assert updated.changes == {"tier": {"before": "gold", "after": "vip"},
                               "domains": {"before": ["acme.cn", "acme.com"], "after": ["acme.cn"]}, "notes": {}}
    # the domain left with the organisation: another one may take it now
    await create(api, name="Other", domains=["acme.cn"])


async def test_roles(api):
    org = (await create(api)).json()
    url = f"/v1/organizations/{org['id']}"
    for method, path, body in (("POST", "/v1/organizations", {"name": "X"}), ("PATCH", url, {"tier": "x"}),
                               ("DELETE", url, None)):
        r = await api.request(method, path, json=body, headers=AGENT)
        assert r.status_code == 403 and r.headers["content-type"] == "application/problem+json", (method, r.text)
    assert (await api.get(url, headers=CHANNEL)).status_code == 403
    assert (await api.get("/v1/organizations", headers=CHANNEL)).status_code == 403
    assert (await api.get(url)).status_code == 401


async def test_names_are_unique_case_insensitively(api):
    first = (await create(api, name="Acme")).json()
    taken = await api.post("/v1/organizations", json={"name": "ＡＣＭＥ"}, headers=ADMIN)
    assert taken.status_code == 409 and taken.json()["errors"][0]["field"] == "body.name"
    other = (await create(api, name="Beta")).json()
    rename = await api.patch(f"/v1/organizations/{other['id']}", json={"name": "acme"}, headers=ADMIN)
    assert rename.status_code == 409
    recase = await api.patch(f"/v1/organizations/{first['id']}", json={"name": "ACME"}, headers=ADMIN)
    assert recase.status_code == 200 and recase.json()["name"] == "ACME"


async def test_domains_belong_to_one_organisation_and_never_webmail(api):
    await create(api, name="A", domains=["a.example"])
    taken = await api.post("/v1/organizations", json={"name": "B", "domains": ["b.example", "A.example"]},
                           headers=ADMIN)
    assert taken.status_code == 409 and taken.json()["type"].endswith("/domain-taken")
    assert taken.json()["errors"] == [{"field": "body.domains", "message": "a.example belongs to another organisation",
                                       "code": "unique"}]
    for webmail in ("qq.com", "163.com", "GMail.com", "outlook.com"):
        r = await api.post("/v1/organizations", json={"name": f"C {webmail}", "domains": [webmail]}, headers=ADMIN)
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "body.domains", webmail
    # nothing half-written: B does not exist and b.example is free
    assert (await api.get("/v1/organizations", params={"name": "b"}, headers=ADMIN)).json()["items"] == []
    await create(api, name="B2", domains=["b.example"])


@pytest.mark.parametrize("body", [
    {"name": ""}, {"name": "x" * 201}, {"name": "a", "domains": ["no-dot"]}, {"name": "a", "domains": ["a@b.com"]},
    {"name": "a", "domains": ["x.com"] * 51}, {"name": "a", "tier": ""}, {"name": "a", "colour": "red"},
    {"name": "a", "attributes": {"Bad Key": 1}}, {"name": "a", "notes": "x" * 10_001},
])
async def test_bad_bodies_are_422(api, body):
    r = await api.post("/v1/organizations", json=body, headers=ADMIN)
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json", r.text


async def test_list_filters_and_pages(api):
    made = [(await create(api, name=f"Org {i}", tier="gold" if i % 2 else None,
                          domains=[f"o{i}.example"])).json()["id"] for i in range(5)]

    async def ids(**params):
        r = await api.get("/v1/organizations", params=params, headers=AGENT)
        assert r.status_code == 200, r.text
        return [o["id"] for o in r.json()["items"]]

    assert await ids() == made[::-1]
    assert await ids(tier="GOLD") == [made[3], made[1]]
    assert await ids(domain="O2.example") == [made[2]]
    assert await ids(name="org") == made[::-1]
    assert await ids(name="org 4") == [made[4]]
    assert await ids(name="%") == [] and await ids(name="_") == []  # LIKE wildcards are literal
    first = (await api.get("/v1/organizations", params={"limit": 2}, headers=AGENT)).json()
    second = (await api.get("/v1/organizations", params={"limit": 2, "cursor": first["next_cursor"]},
                            headers=AGENT)).json()
    assert [o["id"] for o in first["items"] + second["items"]] == made[::-1][:4]
    assert (await api.get("/v1/organizations", params={"colour": "red"}, headers=AGENT)).status_code == 422


async def test_customers_join_by_email_domain_when_created_or_when_the_address_is_added(api, raw, db):
    org = (await create(api, domains=["acme.cn"])).json()
    joined = await resolve(raw, name="张伟", email="Zhang.Wei@ACME.cn")
    webmail = await resolve(raw, email="zhang@qq.com")
    stranger = await resolve(raw, email="li@other.example")
    for cid, expected in ((joined, org["id"]), (webmail, None), (stranger, None)):
        body = (await api.get(f"/v1/customers/{cid}", headers=AGENT)).json()
        assert body["organization_id"] == expected
    created = {e.data.customer_id: e for _, e in await outbox(db, "customer.created")}
    assert created[joined].data.organization_id == uuid.UUID(org["id"])

    # a known person writes from a new address of the domain: they join (customer.updated)
    assert await resolve(raw, email="zhang@qq.com", phone="+86 139 0000 0001") == webmail
    assert await resolve(raw, email="zhang@qq.com", external_id="crm:7", **{"name": "x"}) == webmail
    body = (await api.get(f"/v1/customers/{webmail}", headers=AGENT)).json()
    assert body["organization_id"] is None and body["version"] == 3  # each new identity moved the version
    assert await resolve(raw, phone="+86 139 0000 0001", email="zhang@acme.cn") == webmail
    body = (await api.get(f"/v1/customers/{webmail}", headers=AGENT)).json()
    assert body["organization_id"] == org["id"]
    [(_, joined_event)] = [(k, e) for k, e in await outbox(db, "customer.updated") if e.data.customer_id == webmail]
    assert joined_event.data.changes == {"organization_id": {"before": None, "after": org["id"]}}
    assert joined_event.data.organization_id == uuid.UUID(org["id"])

    # a customer with an organisation keeps it when an address of another one arrives
    other = (await create(api, name="Other", domains=["other.example"])).json()
    assert await resolve(raw, email="zhang.wei@acme.cn", phone="+8613900000002") == joined
    assert await resolve(raw, phone="+8613900000002", email="zw@other.example") == joined
    assert (await api.get(f"/v1/customers/{joined}", headers=AGENT)).json()["organization_id"] == org["id"]
    assert other["id"] != org["id"]

    # members keep their organisation from being deleted
    r = await api.delete(f"/v1/organizations/{org['id']}", headers=ADMIN)
    assert r.status_code == 409 and r.json()["type"].endswith("/organization-in-use")
