"""A supervisor makes a customer a VIP: the tier travels customer-svc → ticket-svc → sla-svc and
the open ticket's SLA target changes without anyone touching the ticket."""

import uuid

from .conftest import eventually


async def test_tier_change_retargets_the_open_tickets_sla(gw, key_headers, admin_headers):
    kind = f"tier-e2e-{uuid.uuid4().hex[:6]}"  # keeps this policy away from other tests' tickets
    policy = await gw.post("/v1/sla/policies", headers=admin_headers, json={
        "name": f"VIP {kind}", "position": 0, "conditions": {"customer_tier": ["VIP"], "type": [kind]},
        "targets": {"first_response": {"minutes": 30}}})
    assert policy.status_code == 201, policy.text
    email = f"vip.{uuid.uuid4().hex[:6]}@example.com"
    created = await gw.post("/v1/tickets", headers=key_headers, json={
        "subject": "大客户的发票问题", "requester": {"email": email}, "type": kind})
    assert created.status_code == 201, created.text
    ticket_id = created.json()["id"]

    async def first_response():
        body = (await gw.get(f"/v1/sla/tickets/{ticket_id}", headers=admin_headers)).json()
        return next((m for m in body.get("metrics", []) if m["metric"] == "first_response"), None)

    async def linked():
        body = (await gw.get(f"/v1/tickets/{ticket_id}", headers=admin_headers)).json()
        return body if body["customer_id"] else None

    ticket = await eventually(linked)
    before = await eventually(first_response)
    assert before["policy"] != policy.json()["name"]

    customer = await gw.get(f"/v1/customers/{ticket['customer_id']}", headers=admin_headers)
    assert customer.json()["tier"] is None
    changed = await gw.patch(f"/v1/customers/{ticket['customer_id']}", json={"tier": "VIP"},
                             headers={**admin_headers, "If-Match": customer.headers["etag"]})
    assert changed.status_code == 200, changed.text
    assert changed.json()["tier"] == "vip"

    async def retargeted():
        metric = await first_response()
        return metric if metric and metric["policy"] == policy.json()["name"] else None

    metric = await eventually(retargeted)
    assert metric["target_minutes"] == 30 and metric["state"] == "running"
    ticket = (await gw.get(f"/v1/tickets/{ticket_id}", headers=admin_headers)).json()
    assert ticket["customer_tier"] == "vip"
    listed = (await gw.get("/v1/tickets", params={"customer_tier": "vip", "type": kind}, headers=admin_headers)).json()
    assert [t["id"] for t in listed["items"]] == [ticket_id]
