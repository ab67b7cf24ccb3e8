"""Customer search on the real database: Chinese and English names, any identity, organisation,
owner, tags, tier and attributes, combined with AND and paged."""

import uuid

import pytest

from customer_svc.customers import service
from helpdesk_common.identity import Principal
from helpdesk_common.testing import identity_headers

ADMIN = identity_headers(Principal(kind="user", id="u1", role="admin"))
AGENT = identity_headers(Principal(kind="user", id="u2", role="agent"))


async def resolve(raw, **requester) -> uuid.UUID:
    async with raw.transaction():
        return (await service.resolve_requester(raw, ticket_id=uuid.uuid4(), requester=requester))[0]


@pytest.fixture
async def people(api, raw):
    """A handful of customers with names, identities, organisation, tags, tier and attributes."""
    r = await api.post("/v1/customer-attributes", json={"key": "plan", "label": {"en": "Plan"}, "type": "select",
                                                         "options": [{"value": "basic"}, {"value": "pro"}]},
                       headers=ADMIN)
    assert r.status_code == 201
    await api.post("/v1/customer-attributes", json={"key": "seats", "label": {"en": "Seats"}, "type": "number"},
                   headers=ADMIN)
    await api.post("/v1/customer-attributes", json={"key": "apps", "label": {"en": "Apps"}, "type": "multiselect",
                                                     "options": [{"value": "crm"}, {"value": "erp"}]}, headers=ADMIN)
    org = (await api.post("/v1/organizations", json={"name": "Acme", "domains": ["acme.cn"]}, headers=ADMIN)).json()
    ids = {
        "zhangsan": await resolve(raw, name="张三", email="zhangsan@acme.cn"),
        "zhangsanfeng": await resolve(raw, name="张三丰", phone="+86 138 0000 0001"),
        "lisan": await resolve(raw, name="李三", wechat_openid="oLiSan"),
        "john": await resolve(raw, name="John Smith", email="John.Smith@Example.com"),
        "johanna": await resolve(raw, name="Johanna 王", external_id="dingtalk:jo-1"),
        "ouyang": await resolve(raw, name="欧阳娜娜", email="nana@qq.com"),
    }
    await api.patch(f"/v1/customers/{ids['zhangsan']}", headers=ADMIN, json={
        "tier": "VIP", "tags": ["重要", "renewal"], "attributes": {"plan": "pro", "seats": 12, "apps": ["crm", "erp"]}})
    await api.patch(f"/v1/customers/{ids['john']}", headers=ADMIN, json={
        "tier": "vip", "tags": ["renewal"], "attributes": {"plan": "basic", "seats": 3, "apps": ["crm"]},
        "account_owner_id": str(uuid.UUID(int=7))})
    ids["org"] = uuid.UUID(org["id"])
    return ids


async def found(api, **params) -> list[uuid.UUID]:
    r = await api.get("/v1/customers", params=params, headers=AGENT)
    assert r.status_code == 200, r.text
    return [uuid.UUID(c["id"]) for c in r.json()["items"]]


async def test_chinese_names(api, people):
    assert set(await found(api, q="张三")) == {people["zhangsan"], people["zhangsanfeng"]}
    assert await found(api, q="三丰") == [people["zhangsanfeng"]]
    assert set(await found(api, q="三")) == {people["zhangsan"], people["zhangsanfeng"], people["lisan"]}
    assert await found(api, q="欧阳") == [people["ouyang"]]
    assert await found(api, q="阳娜") == [people["ouyang"]]
    assert await found(api, q="张丰") == []  # not a pair of the name
    assert await found(api, q="王") == [people["johanna"]]


async def test_english_names_with_the_last_word_as_a_prefix(api, people):
    assert set(await found(api, q="joh")) == {people["john"], people["johanna"]}
    assert await found(api, q="john smi") == [people["john"]]
    assert await found(api, q="SMITH") == [people["john"]]
    assert await found(api, q="ｊｏｈｎ") == [people["john"]]  # full-width, as an input method types it
    assert await found(api, q="smith john") == [people["john"]]
    assert await found(api, q="!!") == []


async def test_any_identity_exactly(api, people):
    assert await found(api, q="JOHN.smith@example.com") == [people["john"]]
    assert await found(api, q="138 0000 0001") == [people["zhangsanfeng"]]
    assert await found(api, q="+8613800000001") == [people["zhangsanfeng"]]
    assert await found(api, q="oLiSan") == [people["lisan"]]
    assert await found(api, q="jo-1") == [people["johanna"]]
    assert await found(api, q="nana") == []  # identities match whole, not in part


async def test_filters_combine(api, people):
    assert await found(api, organization_id=str(people["org"])) == [people["zhangsan"]]
    assert set(await found(api, tier="ＶＩＰ")) == {people["zhangsan"], people["john"]}
    assert set(await found(api, tag="Renewal")) == {people["zhangsan"], people["john"]}
    assert await found(api, tag=["renewal", "重要"]) == [people["zhangsan"]]
    assert await found(api, account_owner_id=str(uuid.UUID(int=7))) == [people["john"]]
    assert await found(api, **{"attr.plan": "pro"}) == [people["zhangsan"]]
    assert await found(api, **{"attr.seats": "3"}) == [people["john"]]
    assert set(await found(api, **{"attr.apps": "crm"})) == {people["zhangsan"], people["john"]}
    assert await found(api, **{"attr.apps": "erp", "tier": "vip"}) == [people["zhangsan"]]
    assert await found(api, q="张", tier="vip") == [people["zhangsan"]]
    assert await found(api, q="john", tag="重要") == []
    page = (await api.get("/v1/customers", params={"q": "三", "limit": 2}, headers=AGENT)).json()
    rest = (await api.get("/v1/customers", params={"q": "三", "limit": 2, "cursor": page["next_cursor"]},
                          headers=AGENT)).json()
    assert len(page["items"]) == 2 and len(rest["items"]) == 1 and rest["next_cursor"] is None


@pytest.mark.parametrize(("params", "field", "code"), [
    ({"attr.colour": "red"}, "query.attr.colour", "not_found"),
    ({"attr.seats": "many"}, "query.attr.seats", "cross_field"),
    ({"attr.Bad Key": "x"}, "query.attr.Bad Key", "extra_forbidden"),
    ({"colour": "red"}, "query.colour", "extra_forbidden"),
    ({"q": ""}, "query.q", "string_too_short"),
    ({"organization_id": "acme"}, "query.organization_id", "uuid_parsing"),
    ({"tag": ["t"] * 11}, "query.tag", "too_long"),
])
async def test_bad_searches_are_422_naming_the_parameter(api, people, params, field, code):
    r = await api.get("/v1/customers", params=params, headers=AGENT)
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json", r.text
    assert (field, code) in [(e["field"], e["code"]) for e in r.json()["errors"]], r.text
