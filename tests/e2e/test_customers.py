"""The customer model through the gateway: an organisation's domain makes a ticket's requester
its member, a DingTalk requester's key links the next ticket at intake (the key ticket-svc and
customer-svc compute alike), and search finds customers by a two-character Chinese name, an
identity and an attribute."""

import random
import uuid

from .conftest import eventually


async def test_organisations_identities_and_search(gw, key_headers, admin_headers):
    run = uuid.uuid4().hex[:8]
    domain = f"e2e-{run}.example"
    org = await gw.post("/v1/organizations", json={"name": f"E2E {run}", "domains": [domain]}, headers=admin_headers)
    assert org.status_code == 201, org.text
    attribute = await gw.post("/v1/customer-attributes", headers=admin_headers, json={
        "key": f"plan_{run}", "label": {"zh-CN": "套餐", "en": "Plan"}, "type": "select",
        "options": [{"value": "pro"}, {"value": "basic"}]})
    assert attribute.status_code == 201, attribute.text
    rng = random.Random(run)
    name = "".join(chr(rng.randrange(0x4E00, 0x9FA5)) for _ in range(2))  # a two-character Chinese name

    first = await gw.post("/v1/tickets", headers=key_headers, json={
        "subject": "发票", "requester": {"name": name, "email": f"Boss@{domain.upper()}"}})
    assert first.status_code == 201, first.text

    async def linked(ticket_id):
        body = (await gw.get(f"/v1/tickets/{ticket_id}", headers=admin_headers)).json()
        return body["customer_id"]

    customer_id = await eventually(lambda: linked(first.json()["id"]))
    customer = (await gw.get(f"/v1/customers/{customer_id}", headers=admin_headers)).json()
    assert customer["organization_id"] == org.json()["id"] and customer["name"] == name

    # a DingTalk sender's key: the next ticket of the same person is linked at intake
    staff = f"staff-{run}"
    ding = await gw.post("/v1/tickets", headers=key_headers, json={
        "subject": "登录问题", "requester": {"external_id": f"dingtalk:{staff}"}})
    ding_customer = await eventually(lambda: linked(ding.json()["id"]))
    identities = (await gw.get(f"/v1/customers/{ding_customer}", headers=admin_headers)).json()["identities"]
    assert [(i["kind"], i["value"]) for i in identities] == [("dingtalk_userid", staff)]

    async def linked_at_intake():
        again = await gw.post("/v1/tickets", headers=key_headers, json={
            "subject": "还是登录", "requester": {"external_id": f"dingtalk:{staff}"}})
        assert again.status_code == 201, again.text
        return again.json()["customer_id"]

    assert await eventually(linked_at_intake, timeout=30, interval=1.0) == ding_customer

    # supervisors' edits and search
    changed = await gw.patch(f"/v1/customers/{customer_id}", headers=admin_headers, json={
        "tags": ["重点"], "attributes": {f"plan_{run}": "pro"}, "language": "zh-cn", "time_zone": "Asia/Shanghai"})
    assert changed.status_code == 200, changed.text
    assert changed.json()["language"] == "zh-CN"

    async def found(**params):
        r = await gw.get("/v1/customers", params=params, headers=admin_headers)
        assert r.status_code == 200, r.text
        return [c["id"] for c in r.json()["items"]]

    assert await found(q=name) == [customer_id]
    assert await found(q=f"boss@{domain}") == [customer_id]
    assert await found(q=staff) == [ding_customer]
    assert await found(**{f"attr.plan_{run}": "pro"}) == [customer_id]
    assert await found(organization_id=org.json()["id"], tag="重点") == [customer_id]
    unknown = await gw.get("/v1/customers", params={"attr.nothing_here": "x"}, headers=admin_headers)
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["field"] == "query.attr.nothing_here"
