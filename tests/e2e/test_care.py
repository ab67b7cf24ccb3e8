"""Proactive care end to end: a customer whose monthly orders stopped and whose tickets breach
their SLA crosses the churn threshold (customer-svc's insight worker), and ticket-svc opens one
care ticket for them, with the reasons visible in the 360 view."""

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

from .conftest import eventually


async def test_orders_that_stop_and_breached_tickets_open_one_care_task(gw, key_headers, admin_headers):
    kind = f"care-e2e-{uuid.uuid4().hex[:6]}"  # keeps the one-minute policy away from other tests' tickets
    policy = await gw.post("/v1/sla/policies", headers=admin_headers, json={
        "name": f"Fast {kind}", "position": 0, "conditions": {"type": [kind]},
        "targets": {"first_response": {"minutes": 1}}})
    assert policy.status_code == 201, policy.text

    email = f"care.{uuid.uuid4().hex[:6]}@example.com"
    created = await gw.post("/v1/customers", headers=admin_headers, json={
        "name": "王芳", "language": "zh-CN", "identities": [{"kind": "email", "value": email}]})
    assert created.status_code == 201, created.text
    customer_id = created.json()["id"]
    # a monthly habit of a year that stopped a hundred days ago
    now = datetime.now(UTC)
    for i in range(12):
        r = await gw.post(f"/v1/customers/{customer_id}/orders", headers=admin_headers, json={
            "external_id": f"{kind}-{i}", "ordered_at": (now - timedelta(days=100 + 30 * i)).isoformat(),
            "amount": "299.00", "currency": "CNY", "status": "completed"})
        assert r.status_code == 201, r.text

    tickets = []
    for subject in ("订单一直没有发货", "Refund still not received"):
        r = await gw.post("/v1/tickets", headers=key_headers, json={
            "subject": subject, "requester": {"email": email}, "type": kind})
        assert r.status_code == 201, r.text
        tickets.append(r.json()["id"])

    async def linked():
        bodies = [(await gw.get(f"/v1/tickets/{t}", headers=admin_headers)).json() for t in tickets]
        return all(b["customer_id"] == customer_id for b in bodies)

    await eventually(linked)

    async def care_tickets():
        r = await gw.get("/v1/tickets", params={"customer_id": customer_id, "type": "care"}, headers=admin_headers)
        assert r.status_code == 200, r.text
        return r.json()["items"]

    # both tickets breach their one-minute first response; the score crosses 70 on the second
    care = await eventually(care_tickets, timeout=180)
    assert len(care) == 1
    assert care[0]["priority"] == "high" and care[0]["channel"] == "system"

    insights = (await gw.get(f"/v1/customers/{customer_id}/insights", headers=admin_headers)).json()
    churn = insights["churn_risk"]
    assert churn["score"] >= 70 and churn["band"] == "high" and churn["episode_active"] is True
    factors = [reason["factor"] for reason in churn["reasons"]]
    assert {"order_frequency_drop", "order_overdue", "sla_breaches"} <= set(factors)
    assert sum(reason["points"] for reason in churn["reasons"]) == churn["score"]

    view = await gw.get(f"/v1/customers/{customer_id}/360", headers=admin_headers)
    assert view.status_code == 200, view.text
    risk = view.json()["churn_risk"]
    assert risk["score"] == churn["score"] and risk["score"] >= 70
    assert {"order_frequency_drop", "order_overdue", "sla_breaches"} <= {r["factor"] for r in risk["reasons"]}
    assert all(set(r["message"]) == {"en", "zh-CN"} for r in risk["reasons"])

    # the episode goes on (later rescorings, e.g. the care ticket itself): still one care ticket
    await asyncio.sleep(3)
    assert len(await care_tickets()) == 1
