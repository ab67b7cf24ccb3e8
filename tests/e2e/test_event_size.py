"""Issue 9, High 2 through the gateway: one oversized event stopped every ticket event, silently.

A channel key posted a ticket whose custom field held 1,048,400 characters (the body fits the
1 MiB request limit); its ticket.created (1,049,358 bytes) was above the producer's max
request size, the relay retried it forever, and SLA, analytics, customer linking and the live
stream stopped for every later ticket while /readyz said ready and outbox_backlog said 0.
"""

import uuid

import httpx

from .conftest import eventually


def ticket_body(email: str, custom_fields: dict) -> dict:
    return {
        "subject": "大字段 / big field", "requester": {"email": email}, "priority": "urgent",
        "type": "billing", "custom_fields": custom_fields,
    }


async def test_the_incident_request_is_refused_and_the_next_ticket_still_flows(
    gw, key_headers, channel_key_headers, admin_headers, sql, stack,
):
    big = await gw.post("/v1/tickets", json=ticket_body("big@example.com", {"notes": "x" * 1_048_400}),
                        headers=key_headers)
    assert big.status_code == 422, big.text[:300]
    assert [e["field"] for e in big.json()["errors"]] == ["custom_fields.notes"]

    # a web form can carry 200 fields of 65,536 characters each: the same bound applies
    form = {"subject": "表单", "email": "form@example.com", "form_submission_id": uuid.uuid4().hex,
            **{f"custom_fields[f{i}]": "y" * 40_000 for i in range(2)}}
    web = await gw.post("/v1/channels/web/inbound", data=form, headers=channel_key_headers["web"])
    assert web.status_code == 422, web.text[:300]
    assert "custom_fields." in web.text

    email = f"after.big.{uuid.uuid4().hex[:6]}@example.com"
    normal = await gw.post("/v1/tickets", json=ticket_body(email, {"order_no": "A-1"}), headers=key_headers)
    assert normal.status_code == 201, normal.text
    tid = normal.json()["id"]

    async def flowed():  # customer linking (customer-svc) and the SLA due time (sla-svc) came back
        body = (await gw.get(f"/v1/tickets/{tid}", headers=key_headers)).json()
        return body if body["customer_id"] and body["sla"]["first_response_due_at"] else None

    await eventually(flowed, timeout=30)

    # a PATCH cannot grow the fields past the bound either (ticket.updated carries before and after)
    grown = await gw.patch(f"/v1/tickets/{tid}", json={"custom_fields": {"notes": "z" * 70_000}},
                           headers=admin_headers)
    assert grown.status_code == 422, grown.text[:300]

    assert await sql("ticket-svc", "SELECT count(*) FROM outbox WHERE failed_at IS NOT NULL") == 0
    async with httpx.AsyncClient() as client:
        ready = (await client.get(f"{stack.url_of('ticket-svc')}/readyz")).json()
    assert ready["checks"]["outbox"] == "ok" and ready["outbox"]["dead_letters"] == 0
