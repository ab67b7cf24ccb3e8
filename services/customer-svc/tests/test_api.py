"""The customer read API on a real database: shapes, pagination, filters, errors."""

import base64
import uuid

import orjson
import pytest

from customer_svc.customers import service
from helpdesk_common.identity import Principal
from helpdesk_common.testing import identity_headers

ADMIN = identity_headers(Principal(kind="user", id="u1", role="admin"))
AGENT = identity_headers(Principal(kind="user", id="u2", role="agent"))
CHANNEL = identity_headers(Principal(kind="channel", id="k1", channel="wechat"))


async def seed(raw, *requesters) -> list[uuid.UUID]:
    """Customers created the way the consumer creates them, all in one transaction (same created_at)."""
    ids = []
    conn = raw
    async with raw.transaction():
        for requester in requesters:
            customer_id, created = await service.resolve_requester(conn, ticket_id=uuid.uuid4(), requester=requester)
            assert created
            ids.append(customer_id)
    return ids


async def test_read_customer_with_identities(api, raw):
    [cid] = await seed(raw, {"name": "李雷", "email": "Li.Lei@Example.com", "phone": "+86 138-0013-8000"})
    r = await api.get(f"/v1/customers/{cid}", headers=AGENT)
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"id", "name", "tier", "organization_id", "account_owner_id", "language", "time_zone", "tags",
                         "notes", "attributes", "identities", "created_at", "updated_at", "version"}
    assert body["tier"] is None and r.headers["etag"] == 'W/"1"'
    assert body["id"] == str(cid) and body["name"] == "李雷"
    assert (body["organization_id"], body["account_owner_id"], body["language"], body["time_zone"], body["notes"]) == (
        None, None, None, None, None)
    assert body["tags"] == [] and body["attributes"] == {}
    # an agent who works none of the customer's tickets sees the identities masked (tests/test_pii.py)
    assert [{k: i[k] for k in ("kind", "value")} for i in body["identities"]] == [
        {"kind": "email", "value": "l***@example.com"},
        {"kind": "phone", "value": "+86 138****8000"},
    ]
    assert all(uuid.UUID(i["id"]) for i in body["identities"])
    assert body["created_at"].endswith("Z")
    admin = (await api.get(f"/v1/customers/{cid}", headers=ADMIN)).json()
    assert [{k: i[k] for k in ("kind", "value")} for i in admin["identities"]] == [
        {"kind": "email", "value": "li.lei@example.com"},
        {"kind": "phone", "value": "+8613800138000"},
    ]


async def test_errors_are_problems(api, raw):
    [cid] = await seed(raw, {"email": "a@example.com"})
    missing = await api.get(f"/v1/customers/{uuid.uuid4()}", headers=ADMIN)
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert missing.json()["type"].endswith("/not-found")
    # a path that is not an id names no customer (the route takes ids only, so fixed paths beside
    # it such as /v1/customers/pii-access answer 405 for the methods they lack)
    invalid = await api.get("/v1/customers/not-a-uuid", headers=ADMIN)
    assert invalid.status_code == 404 and invalid.headers["content-type"] == "application/problem+json"
    wrong_method = await api.patch("/v1/customers/pii-access", json={}, headers=ADMIN)
    assert wrong_method.status_code == 405 and wrong_method.headers["allow"] == "GET"
    for path in (f"/v1/customers/{cid}", "/v1/customers"):
        forbidden = await api.get(path, headers=CHANNEL)
        assert forbidden.status_code == 403 and forbidden.headers["content-type"] == "application/problem+json"
        assert (await api.get(path)).status_code == 401
        assert (await api.get(path, headers={"x-internal-identity": "forged"})).status_code == 401


async def test_list_pages_newest_first_without_gaps_or_repeats(api, raw):
    older = await seed(raw, *({"email": f"old{i}@example.com"} for i in range(3)))
    newer = await seed(raw, *({"email": f"new{i}@example.com"} for i in range(4)))  # same created_at: ties on id
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 3} | ({"cursor": cursor} if cursor else {})
        r = await api.get("/v1/customers", params=params, headers=ADMIN)
        assert r.status_code == 200, r.text
        body = r.json()
        assert set(body) == {"items", "next_cursor"} and len(body["items"]) <= 3
        seen += [c["id"] for c in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    expected = sorted(newer, reverse=True) + sorted(older, reverse=True)
    assert seen == [str(i) for i in expected]
    default = (await api.get("/v1/customers", headers=ADMIN)).json()
    assert len(default["items"]) == 7 and default["next_cursor"] is None


async def test_list_filters_by_normalised_identity(api, raw):
    a, b = await seed(raw, {"email": "Zhang.Wei@Example.com", "phone": "+86 139 0000 0000"}, {"phone": "+8613911112222"})

    async def ids(**params):
        r = await api.get("/v1/customers", params=params, headers=ADMIN)
        assert r.status_code == 200, r.text
        return [c["id"] for c in r.json()["items"]]

    assert await ids(email="  ZHANG.wei@example.COM") == [str(a)]
    assert await ids(phone="0086 (139) 1111-2222") == [str(b)]
    assert await ids(email="zhang.wei@example.com", phone="+8613900000000") == [str(a)]
    assert await ids(email="zhang.wei@example.com", phone="+8613911112222") == []
    assert await ids(email="nobody@example.com") == []


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"limit": 0}, 422),
        ({"limit": 101}, 422),
        ({"limit": "ten"}, 422),
        ({"email": "a\x00b@example.com"}, 422),
        ({"email": "x" * 300}, 422),
        ({"unknown": "1"}, 422),
        ({"cursor": "not-a-cursor"}, 400),
        ({"cursor": base64.urlsafe_b64encode(orjson.dumps(["yesterday", "x"])).decode()}, 400),
    ],
)
async def test_bad_list_queries_are_4xx_problems(api, params, status):
    r = await api.get("/v1/customers", params=params, headers=ADMIN)
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"

