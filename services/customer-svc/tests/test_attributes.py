"""Custom attributes on the real database: definitions (admins), values on customers and
organisations (422 naming body.attributes.<key>), required, unique, filters."""

import uuid

import pytest

from customer_svc.customers import service
from helpdesk_common.identity import Principal
from helpdesk_common.testing import identity_headers

ADMIN = identity_headers(Principal(kind="user", id="u1", role="admin"))
SUPERVISOR = identity_headers(Principal(kind="user", id="u3", role="supervisor"))
AGENT = identity_headers(Principal(kind="user", id="u2", role="agent"))

DEFINITIONS = [
    {"key": "industry", "label": {"zh-CN": "行业", "en": "Industry"}, "type": "select",
     "options": [{"value": "retail", "label": {"zh-CN": "零售"}}, {"value": "it"}]},
    {"key": "employees", "label": {"en": "Employees"}, "type": "number"},
    {"key": "credit", "label": {"zh-CN": "信用额度"}, "type": "decimal", "scale": 2},
    {"key": "vip_since", "label": {"en": "VIP since"}, "type": "date"},
    {"key": "newsletter", "label": {"en": "Newsletter"}, "type": "boolean"},
    {"key": "channels", "label": {"en": "Channels"}, "type": "multiselect",
     "options": [{"value": "web"}, {"value": "app"}, {"value": "store"}]},
    {"key": "member_no", "label": {"zh-CN": "会员号"}, "type": "text", "unique": True},
]


async def define(api, path="/v1/customer-attributes", definitions=DEFINITIONS):
    for body in definitions:
        r = await api.post(path, json=body, headers=ADMIN)
        assert r.status_code == 201, r.text


async def customer(raw) -> uuid.UUID:
    async with raw.transaction():
        return (await service.resolve_requester(raw, ticket_id=uuid.uuid4(),
                                                requester={"email": f"{uuid.uuid4().hex[:8]}@example.com"}))[0]


async def test_definitions_crud(api):
    await define(api)
    listed = (await api.get("/v1/customer-attributes", headers=AGENT)).json()["items"]
    assert [d["key"] for d in listed] == ["channels", "credit", "employees", "industry", "member_no", "newsletter",
                                          "vip_since"]  # position 0 each: by key
    industry = (await api.get("/v1/customer-attributes/industry", headers=AGENT)).json()
    assert industry["label"] == {"zh-CN": "行业", "en": "Industry"} and industry["version"] == 1
    assert industry["options"][0] == {"value": "retail", "label": {"zh-CN": "零售"}}
    assert (await api.post("/v1/customer-attributes", json=DEFINITIONS[0], headers=ADMIN)).status_code == 409
    # organisation attributes are their own scope: the same key is free there
    await define(api, "/v1/organization-attributes", DEFINITIONS[:1])
    assert (await api.get("/v1/organization-attributes", headers=AGENT)).json()["items"][0]["scope"] == "organization"

    changed = await api.patch("/v1/customer-attributes/industry", json={
        "label": {"en": "Sector"}, "options": [{"value": "it"}, {"value": "finance"}], "required": True,
        "position": 3}, headers={**ADMIN, "If-Match": 'W/"1"'})
    assert changed.status_code == 200, changed.text
    assert (changed.json()["label"], changed.json()["required"], changed.json()["version"]) == ({"en": "Sector"}, True, 2)
    assert (await api.patch("/v1/customer-attributes/industry", json={"position": 1},
                            headers={**ADMIN, "If-Match": 'W/"1"'})).status_code == 412
    no_options = await api.patch("/v1/customer-attributes/employees", json={"options": [{"value": "x"}]}, headers=ADMIN)
    assert no_options.status_code == 422 and no_options.json()["errors"][0]["code"] == "cross_field"
    assert (await api.delete("/v1/customer-attributes/employees", headers=ADMIN)).status_code == 204
    assert (await api.get("/v1/customer-attributes/employees", headers=ADMIN)).status_code == 404


async def test_only_admins_define(api):
    for headers in (SUPERVISOR, AGENT):
        r = await api.post("/v1/customer-attributes", json=DEFINITIONS[1], headers=headers)
        assert r.status_code == 403, r.text
    await define(api, definitions=DEFINITIONS[1:2])
    assert (await api.patch("/v1/customer-attributes/employees", json={"position": 2},
                            headers=SUPERVISOR)).status_code == 403
    assert (await api.delete("/v1/customer-attributes/employees", headers=SUPERVISOR)).status_code == 403


@pytest.mark.parametrize(("body", "code"), [
    ({"key": "k", "label": {"en": "K"}, "type": "select"}, "cross_field"),  # options needed
    ({"key": "k", "label": {"en": "K"}, "type": "text", "options": [{"value": "a"}]}, "cross_field"),
    ({"key": "k", "label": {"en": "K"}, "type": "select", "options": [{"value": "a"}, {"value": "a"}]}, "cross_field"),
    ({"key": "k", "label": {"en": "K"}, "type": "boolean", "unique": True}, "cross_field"),
    ({"key": "k", "label": {"en": "K"}, "type": "number", "scale": 2}, "cross_field"),
    ({"key": "K-1", "label": {"en": "K"}, "type": "text"}, "string_pattern_mismatch"),
    ({"key": "k", "label": {}, "type": "text"}, "cross_field"),
    ({"key": "k", "label": {"en": "K"}, "type": "colour"}, "literal_error"),
])
async def test_bad_definitions_are_422(api, body, code):
    r = await api.post("/v1/customer-attributes", json=body, headers=ADMIN)
    assert r.status_code == 422, r.text
    assert code in {e["code"] for e in r.json()["errors"]}, r.text


async def test_values_are_validated_and_named(api, raw):
    await define(api)
    cid = await customer(raw)
    url = f"/v1/customers/{cid}"
    ok = await api.patch(url, json={"attributes": {
        "industry": "retail", "employees": 120, "credit": "1000.5", "vip_since": "2024-02-29", "newsletter": True,
        "channels": ["web", "app"], "member_no": " M-0001 "}}, headers=SUPERVISOR)
    assert ok.status_code == 200, ok.text
    assert ok.json()["attributes"] == {"industry": "retail", "employees": 120, "credit": "1000.50",
                                       "vip_since": "2024-02-29", "newsletter": True, "channels": ["web", "app"],
                                       "member_no": "M-0001"}
    bad = await api.patch(url, json={"attributes": {"employees": "many", "vip_since": "2025-02-29",
                                                    "industry": "mining", "shoe_size": 42}}, headers=SUPERVISOR)
    assert bad.status_code == 422
    errors = {e["field"]: e for e in bad.json()["errors"]}
    assert set(errors) == {"body.attributes.employees", "body.attributes.vip_since", "body.attributes.industry",
                           "body.attributes.shoe_size"}
    assert errors["body.attributes.shoe_size"]["code"] == "not_found"
    assert errors["body.attributes.industry"]["code"] == "cross_field"
    assert "retail, it" in errors["body.attributes.industry"]["message"]
    # nothing half-written; null clears; agents may not set attributes
    partial = await api.patch(url, json={"attributes": {"newsletter": None, "employees": 121}}, headers=SUPERVISOR)
    assert partial.json()["attributes"]["employees"] == 121 and "newsletter" not in partial.json()["attributes"]
    assert (await api.patch(url, json={"attributes": {"employees": 1}}, headers=AGENT)).status_code == 403
    # a definition with values cannot go
    gone = await api.delete("/v1/customer-attributes/industry", headers=ADMIN)
    assert gone.status_code == 409 and gone.json()["type"].endswith("/attribute-in-use")


async def test_unique_values_belong_to_one_customer(api, raw):
    await define(api)
    a, b = await customer(raw), await customer(raw)
    assert (await api.patch(f"/v1/customers/{a}", json={"attributes": {"member_no": "M-1"}},
                            headers=ADMIN)).status_code == 200
    taken = await api.patch(f"/v1/customers/{b}", json={"attributes": {"member_no": "M-1"}}, headers=ADMIN)
    assert taken.status_code == 409 and taken.json()["errors"][0]["field"] == "body.attributes.member_no"
    # a changes its number: the old one is free again
    await api.patch(f"/v1/customers/{a}", json={"attributes": {"member_no": "M-2"}}, headers=ADMIN)
    assert (await api.patch(f"/v1/customers/{b}", json={"attributes": {"member_no": "M-1"}},
                            headers=ADMIN)).status_code == 200
    await api.patch(f"/v1/customers/{a}", json={"attributes": {"member_no": None}}, headers=ADMIN)
    assert (await api.patch(f"/v1/customers/{b}", json={"attributes": {"member_no": "M-2"}},
                            headers=ADMIN)).status_code == 200


async def test_required_attributes_apply_to_api_writes(api, raw):
    await define(api, definitions=[{**DEFINITIONS[0], "required": True}])
    missing = await api.post("/v1/customers", json={"identities": [{"kind": "email", "value": "r@example.com"}]},
                             headers=ADMIN)
    assert missing.status_code == 422
    assert missing.json()["errors"] == [{"field": "body.attributes.industry", "message": "needs a value (a mandatory attribute)",
                                         "code": "cross_field"}]
    made = await api.post("/v1/customers", json={"identities": [{"kind": "email", "value": "r@example.com"}],
                                                 "attributes": {"industry": "it"}}, headers=ADMIN)
    assert made.status_code == 201, made.text
    cleared = await api.patch(f"/v1/customers/{made.json()['id']}", json={"attributes": {"industry": None}},
                              headers=ADMIN)
    assert cleared.status_code == 422
    # customers from tickets lack it and can still be edited
    cid = await customer(raw)
    assert (await api.patch(f"/v1/customers/{cid}", json={"name": "Li"}, headers=AGENT)).status_code == 200


async def test_organisation_attributes(api):
    await define(api, "/v1/organization-attributes", [DEFINITIONS[1]])
    made = await api.post("/v1/organizations", json={"name": "Acme", "attributes": {"employees": 5000}}, headers=ADMIN)
    assert made.status_code == 201 and made.json()["attributes"] == {"employees": 5000}
    bad = await api.patch(f"/v1/organizations/{made.json()['id']}", json={"attributes": {"employees": 1.5}},
                          headers=ADMIN)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "body.attributes.employees"
    # customer definitions are not organisation ones
    other = await api.post("/v1/organizations", json={"name": "B", "attributes": {"industry": "it"}}, headers=ADMIN)
    assert other.status_code == 422 and other.json()["errors"][0]["code"] == "not_found"
