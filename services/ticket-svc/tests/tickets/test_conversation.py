"""Messages: replies, notes, reopening, first response, follow-ups, attachments, search."""

import asyncio
import base64

import orjson
from sqlalchemy import text

from helpdesk_common.identity import Principal
from helpdesk_common.testing import identity_headers

CHANNEL = Principal(kind="channel", id="key-1", channel="web")
OTHER_CHANNEL = Principal(kind="channel", id="key-2", channel="web")
AGENT = Principal(kind="user", id="u-agent", role="agent")

BODY = {"subject": "发票抬头错误 invoice title wrong", "description": "请帮我重新开具发票",
        "requester": {"name": "张伟", "email": "zhang.wei@example.cn"}}


async def new_ticket(client, body=BODY) -> dict:
    created = await client.post("/v1/tickets", json=body, headers=identity_headers(CHANNEL))
    assert created.status_code == 201, created.text
    return created.json()


async def message_events(db, ticket_id: str) -> list[dict]:
    async with db.connect() as conn:
        rows = (await conn.execute(text(
            "SELECT payload FROM outbox WHERE key = :k AND event_type = 'ticket.message_added' ORDER BY seq"),
            {"k": ticket_id})).scalars().all()
    return [orjson.loads(r)["data"] for r in rows]


async def test_conversation_flow(client, db):
    ticket = await new_ticket(client)
    url = f"/v1/tickets/{ticket['id']}"
    note = await client.post(f"{url}/messages", json={"body": "先查一下订单", "public": False},
                             headers=identity_headers(AGENT))
    assert note.status_code == 201, note.text
    reply = await client.post(f"{url}/messages", json={"body": "已重新开具 / reissued", "html": "<p onclick=x>ok<script>alert(1)</script></p>"},
                              headers=identity_headers(AGENT))
    assert reply.status_code == 201
    assert "script" not in reply.json()["body_html"] and "onclick" not in reply.json()["body_html"]
    after_reply = (await client.get(url, headers=identity_headers(AGENT))).json()
    assert after_reply["status"] == "open" and after_reply["sla"]["first_response_at"] is not None
    solved = await client.patch(url, json={"status": "solved"}, headers=identity_headers(AGENT))
    assert solved.status_code == 200
    customer = await client.post(f"{url}/messages", json={"body": "还是不对"}, headers=identity_headers(CHANNEL))
    assert customer.status_code == 201
    assert (await client.get(url, headers=identity_headers(AGENT))).json()["status"] == "open"
    second = await client.post(f"{url}/messages", json={"body": "再次处理"}, headers=identity_headers(AGENT))
    assert second.status_code == 201

    flags = [(e["author_kind"], e["public"], e["first_response"], e["response"]) for e in await message_events(db, ticket["id"])]
    assert flags == [("agent", False, False, False), ("agent", True, True, True), ("customer", True, False, False),
                     ("agent", True, False, True)]
    as_customer = (await client.get(f"{url}/messages", headers=identity_headers(CHANNEL))).json()["items"]
    assert [m["author_kind"] for m in as_customer] == ["customer", "agent", "customer", "agent"]  # no internal note
    as_agent = (await client.get(f"{url}/messages", headers=identity_headers(AGENT))).json()["items"]
    assert len(as_agent) == 5 and as_agent[0]["body_text"] == BODY["description"]
    assert (await client.get(f"{url}/messages", headers=identity_headers(OTHER_CHANNEL))).status_code == 404


async def test_closed_ticket_customer_message_opens_a_linked_follow_up(client):
    ticket = await new_ticket(client)
    url = f"/v1/tickets/{ticket['id']}"
    for status in ("solved", "closed"):
        assert (await client.patch(url, json={"status": status}, headers=identity_headers(AGENT))).status_code == 200
    later = await client.post(f"{url}/messages", json={"body": "又出问题了"}, headers=identity_headers(CHANNEL))
    assert later.status_code == 201, later.text
    follow_up = later.json()["follow_up_ticket_id"]
    assert follow_up and follow_up != ticket["id"]
    new = (await client.get(f"/v1/tickets/{follow_up}", headers=identity_headers(AGENT))).json()
    assert new["follow_up_of"] == ticket["id"] and new["status"] == "new"
    links = (await client.get(f"/v1/tickets/{follow_up}/links", headers=identity_headers(AGENT))).json()
    assert [(link["other_id"], link["kind"]) for link in links] == [(ticket["id"], "follow_up_of")]
    assert (await client.get(url, headers=identity_headers(AGENT))).json()["status"] == "closed"
    refused = await client.post(f"{url}/messages", json={"body": "x"}, headers=identity_headers(AGENT))
    assert refused.status_code == 409


async def test_message_idempotency_key(client, db):
    ticket = await new_ticket(client)
    url = f"/v1/tickets/{ticket['id']}/messages"
    headers = {**identity_headers(AGENT), "Idempotency-Key": "reply-1"}
    results = await asyncio.gather(*[client.post(url, json={"body": "同一条回复"}, headers=headers) for _ in range(20)])
    assert {r.status_code for r in results} == {201}
    assert len({r.json()["id"] for r in results}) == 1
    async with db.connect() as conn:
        assert await conn.scalar(text("SELECT count(*) FROM messages WHERE body_text = '同一条回复'")) == 1
    other = await client.post(url, json={"body": "different"}, headers=headers)
    assert other.status_code == 422


async def test_attachments_limits_and_download(client):
    ticket = await new_ticket(client)
    url = f"/v1/tickets/{ticket['id']}/messages"
    pdf = b"%PDF-1.4 fake"
    ok = await client.post(url, json={"body": "见附件", "attachments": [
        {"filename": "../../报价单.pdf", "content_type": "application/pdf", "content_base64": base64.b64encode(pdf).decode()}]},
        headers=identity_headers(CHANNEL))
    assert ok.status_code == 201, ok.text
    meta = ok.json()["attachments"][0]
    assert meta["filename"] == "报价单.pdf" and meta["size"] == len(pdf) and len(meta["sha256"]) == 64
    got = await client.get(f"/v1/tickets/{ticket['id']}/attachments/{meta['id']}", headers=identity_headers(CHANNEL))
    assert got.status_code == 200 and got.content == pdf
    assert (await client.get(f"/v1/tickets/{ticket['id']}/attachments/{meta['id']}",
                             headers=identity_headers(OTHER_CHANNEL))).status_code == 404
    exe = await client.post(url, json={"body": "run me", "attachments": [
        {"filename": "setup.exe", "content_base64": base64.b64encode(b"MZ").decode()}]}, headers=identity_headers(CHANNEL))
    assert exe.status_code == 422 and exe.json()["errors"][0]["field"] == "attachments[0]"
    bad = await client.post(url, json={"body": "x", "attachments": [{"filename": "a.txt", "content_base64": "***"}]},
                            headers=identity_headers(CHANNEL))
    assert bad.status_code == 422


async def test_search_chinese_and_english(client):
    refund = await new_ticket(client, {**BODY, "subject": "申请退款", "description": "order 88123 was charged twice"})
    other = await new_ticket(client, {**BODY, "subject": "退货地址", "description": "where to send it back"})
    await client.post(f"/v1/tickets/{other['id']}/messages", json={"body": "请尽快处理退款事宜 refund asap"},
                      headers=identity_headers(AGENT))

    async def ids(q: str) -> set[str]:
        r = await client.get("/v1/tickets", params={"q": q}, headers=identity_headers(AGENT))
        assert r.status_code == 200, r.text
        return {t["id"] for t in r.json()["items"]}

    assert await ids("退款") == {refund["id"], other["id"]}  # subject of one, a message of the other
    assert await ids("申请退款") == {refund["id"]}
    assert await ids("charged") == {refund["id"]}
    assert await ids("REFUN") == {other["id"]}
    assert await ids("88123") == {refund["id"]}
    assert await ids("退货 address") == set()
    assert await ids("' OR 1=1 --") == set()
