"""Issue 11, Done-when: "tickets from the same person on e-mail and WeChat land on one customer
after a merge". Through the gateway and the real processes: an e-mail and a WeChat message open
two tickets and make two customers; an agent may not merge them, a supervisor does; ticket-svc
re-points the WeChat ticket to the survivor (customer.merged), the merged id answers 410 naming
the survivor, and the next ticket from the WeChat identity is linked to the survivor at intake
(not later by customer-svc's requester resolution, which would also end on the survivor)."""

from __future__ import annotations

import time
import uuid

import pytest

from .conftest import eventually
from .test_outbound_chat_channels import _xml
from .test_outbound_email import customer_mail

pytestmark = pytest.mark.timeout(240)


async def signed_in(gw, admin_headers, role: str) -> dict[str, str]:
    email, password = f"merge-{role}-{uuid.uuid4().hex[:8]}@example.com", uuid.uuid4().hex
    r = await gw.post("/v1/users", json={"email": email, "name": f"Merge {role}", "role": role, "password": password},
                      headers=admin_headers)
    assert r.status_code == 201, r.text
    login = await gw.post("/v1/auth/login", json={"email": email, "password": password})
    assert login.status_code == 200, login.text
    return {"Authorization": f"Bearer {login.json()['access_token']}"}


async def wechat_message(gw, channel_key_headers, openid: str, text: str) -> str:
    r = await gw.post("/v1/channels/wechat/inbound", content=_xml(openid, "gh_e2e_service", text, str(time.time_ns())),
                      headers={**channel_key_headers["wechat"], "Content-Type": "application/xml"})
    assert r.status_code == 201, r.text
    return r.json()["ticket_id"]


async def test_email_and_wechat_tickets_land_on_one_customer_after_a_merge(
        gw, admin_headers, email_key_headers, channel_key_headers):
    run = uuid.uuid4().hex[:8]
    supervisor = await signed_in(gw, admin_headers, "supervisor")
    agent = await signed_in(gw, admin_headers, "agent")
    sender, openid = f"wang.{run}@example.com", f"o_e2e_merge_{run}"

    mailed = await gw.post("/v1/channels/email/inbound", headers={**email_key_headers, "Content-Type": "message/rfc822"},
                           content=customer_mail(f"{uuid.uuid4()}@mail.example.com", sender,
                                                 subject="Invoice missing", body="订单 C-7 的发票还没收到。"))
    assert mailed.status_code == 201, mailed.text
    email_ticket = mailed.json()["ticket_id"]
    wechat_ticket = await wechat_message(gw, channel_key_headers, openid, "发票的事情，我在微信上再问一下")

    async def customer_of(ticket_id: str) -> str | None:
        r = await gw.get(f"/v1/tickets/{ticket_id}", headers=supervisor)
        assert r.status_code == 200, r.text
        return r.json()["customer_id"]

    survivor = await eventually(lambda: customer_of(email_ticket), timeout=60)
    merged = await eventually(lambda: customer_of(wechat_ticket), timeout=60)
    assert survivor != merged  # two channels, two customers so far

    url = f"/v1/customers/{survivor}/merge"
    refused = await gw.post(url, json={"source_id": merged}, headers=agent)
    assert refused.status_code == 403 and refused.headers["content-type"] == "application/problem+json"
    headers = {**supervisor, "Idempotency-Key": f"merge-{run}"}
    r = await gw.post(url, json={"source_id": merged}, headers=headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["id"] == survivor
    assert {(i["kind"], i["value"]) for i in body["identities"]} == {("email", sender), ("wechat_openid", openid)}
    retried = await gw.post(url, json={"source_id": merged}, headers=headers)
    assert retried.status_code == 200 and retried.json() == body

    # ticket-svc follows customer.merged: both tickets are the survivor's
    async def both_on_survivor() -> bool:
        return {await customer_of(email_ticket), await customer_of(wechat_ticket)} == {survivor}

    assert await eventually(both_on_survivor, timeout=60)

    # duplicate suggestions are routed by the gateway, for supervisors
    listed = await gw.get("/v1/customer-duplicates", params={"limit": 5}, headers=supervisor)
    assert listed.status_code == 200 and "next_cursor" in listed.json(), listed.text
    assert (await gw.get("/v1/customer-duplicates", headers=agent)).status_code == 403

    gone = await gw.get(f"/v1/customers/{merged}", headers=supervisor)
    assert gone.status_code == 410, gone.text
    assert gone.headers["content-type"] == "application/problem+json"
    assert gone.json()["survivor_id"] == survivor and survivor in gone.json()["detail"]
    assert (await gw.get(f"/v1/customers/{survivor}", headers=agent)).status_code == 200

    # a new WeChat ticket (the first one closed, so the next message opens another) is the survivor's
    for status in ("solved", "closed"):
        changed = await gw.patch(f"/v1/tickets/{wechat_ticket}", json={"status": status}, headers=admin_headers)
        assert changed.status_code == 200, changed.text

    # ticket-svc re-pointed the identity key in the transaction that moved the tickets (seen
    # above), so intake links the new ticket to the survivor at once: no waiting here
    new_ticket = await wechat_message(gw, channel_key_headers, openid, "还有一个问题：发票抬头写错了")
    assert new_ticket not in (wechat_ticket, email_ticket)
    assert await customer_of(new_ticket) == survivor
