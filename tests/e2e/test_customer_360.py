"""The 360 view and the timeline end to end: a ticket taken in through the gateway, answered and
solved by an agent, reaches customer-svc's projection through the real broker and shows in the
customer's 360 view and timeline, beside an order recorded through the API."""

import uuid
from datetime import UTC, datetime, timedelta

from .conftest import eventually


async def test_a_ticket_life_and_an_order_show_in_the_360_view_and_timeline(gw, key_headers, admin_headers):
    email = f"view.{uuid.uuid4().hex[:6]}@example.com"
    created = await gw.post("/v1/tickets", headers=key_headers, json={
        "subject": "发票抬头写错了 / wrong invoice title", "requester": {"email": email, "name": "赵敏"},
        "description": "请帮我重开发票，税号 91310000XXXXXXXX"})
    assert created.status_code == 201, created.text
    ticket_id = created.json()["id"]

    async def linked():
        r = await gw.get(f"/v1/tickets/{ticket_id}", headers=admin_headers)
        return r if r.json().get("customer_id") else None

    current = await eventually(linked)
    customer_id = current.json()["customer_id"]
    answered = await gw.post(f"/v1/tickets/{ticket_id}/messages", json={"body": "已为您重开。"}, headers=admin_headers)
    assert answered.status_code == 201, answered.text
    current = await gw.get(f"/v1/tickets/{ticket_id}", headers=admin_headers)
    solved = await gw.patch(f"/v1/tickets/{ticket_id}", json={"status": "solved"},
                            headers={**admin_headers, "If-Match": current.headers["etag"]})
    assert solved.status_code == 200, solved.text
    order = await gw.post(f"/v1/customers/{customer_id}/orders", headers=admin_headers, json={
        "external_id": f"SO-{uuid.uuid4().hex[:6]}", "ordered_at": (datetime.now(UTC) - timedelta(days=1)).isoformat(),
        "amount": "88.80", "currency": "CNY", "status": "paid"})
    assert order.status_code == 201, order.text

    async def projected():
        r = await gw.get(f"/v1/customers/{customer_id}/360", headers=admin_headers)
        assert r.status_code == 200, r.text
        body = r.json()
        return body if body["tickets"]["solved_recently"] == 1 else None

    view = await eventually(projected)
    assert view["customer"]["name"] == "赵敏"
    assert (view["tickets"]["open"], view["tickets"]["total"]) == (0, 1)
    recent = view["tickets"]["recent"][0]
    assert (recent["id"], recent["status"], recent["subject"]) == (ticket_id, "solved", "发票抬头写错了 / wrong invoice title")
    assert recent["first_response_at"] is not None and view["tickets"]["first_response_minutes"]["median"] is not None
    assert view["last_contact"]["at"] is not None
    assert (view["orders"]["count"], view["orders"]["total_amount"]) == (1, "88.80")

    timeline = await gw.get(f"/v1/customers/{customer_id}/timeline", headers=admin_headers)
    assert timeline.status_code == 200, timeline.text
    kinds = [i["kind"] for i in timeline.json()["items"]]
    assert {"ticket.created", "message.agent", "ticket.solved", "order.recorded"} <= set(kinds)
    assert "税号" not in timeline.text and "已为您重开" not in timeline.text  # never a message body
    only_tickets = await gw.get(f"/v1/customers/{customer_id}/timeline", params={"kind": "ticket"},
                                headers=admin_headers)
    assert {i["kind"] for i in only_tickets.json()["items"]} <= {"ticket.created", "ticket.solved"}

    assert (await gw.get(f"/v1/customers/{customer_id}/360", headers=key_headers)).status_code == 403
    assert (await gw.get(f"/v1/customers/{customer_id}/timeline", params={"limit": 500},
                         headers=admin_headers)).status_code == 422
