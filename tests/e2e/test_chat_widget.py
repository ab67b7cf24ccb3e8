"""The chat widget end to end through the gateway: a visitor's message (chat intake, the chat
key) answers a visitor token; the visitor's long-poll is parked until an agent's public reply
commits and then returns it, never the internal note; the token reads no other conversation;
the widget's backend mints a fresh token; the reply shows ``delivery_status: "sent"`` (notify-svc's
chat adapter: available to the visitor)."""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import pytest

from .conftest import eventually

pytestmark = pytest.mark.timeout(180)


def chat(conversation: str, message: str, text: str) -> bytes:
    return json.dumps({"conversation_id": conversation, "message_id": message, "text": text,
                       "visitor": {"name": "访客", "external_id": f"cookie-{conversation}"}},
                      ensure_ascii=False).encode()


async def test_the_visitor_reads_the_agents_reply_by_long_poll(gw, channel_key_headers, admin_headers):
    chat_key = {**channel_key_headers["chat"], "Content-Type": "application/json"}
    conversation = f"e2e-{uuid.uuid4().hex[:12]}"
    opened = await gw.post("/v1/channels/chat/inbound", headers=chat_key,
                           content=chat(conversation, "m-1", "你好，我想咨询退货"))
    assert opened.status_code == 201, opened.text
    ticket_id, token = opened.json()["ticket_id"], opened.json()["visitor_token"]
    visitor = {"Authorization": f"Bearer {token}"}
    url = f"/v1/chat/conversations/{conversation}/messages"

    first = await gw.get(url, headers=visitor)
    assert first.status_code == 200, first.text
    assert [m["body_text"] for m in first.json()["items"]] == ["你好，我想咨询退货"]
    cursor = first.json()["cursor"]

    # the visitor waits; the agent writes a note (nothing for the visitor) and a reply
    poll = asyncio.create_task(gw.get(url, params={"after": cursor, "wait": "20"}, headers=visitor))
    await asyncio.sleep(1.0)
    assert not poll.done()
    note = await gw.post(f"/v1/tickets/{ticket_id}/messages", headers=admin_headers,
                         json={"body": "内部备注：先查物流", "public": False})
    assert note.status_code == 201, note.text
    replied = await gw.post(f"/v1/tickets/{ticket_id}/messages", headers=admin_headers,
                            json={"body": "您好，已为您登记退货 / your return is registered"})
    assert replied.status_code == 201, replied.text
    posted = time.monotonic()
    answer = await asyncio.wait_for(poll, 25)
    assert answer.status_code == 200, answer.text
    assert time.monotonic() - posted < 5
    items = answer.json()["items"]
    assert [(m["author_kind"], m["body_text"]) for m in items] == [
        ("agent", "您好，已为您登记退货 / your return is registered")]
    assert "delivery_status" not in items[0] and "内部备注" not in answer.text

    # the visitor's token reads nothing else; no token, a forged one, a user's token: refused
    other = f"e2e-{uuid.uuid4().hex[:12]}"
    assert (await gw.post("/v1/channels/chat/inbound", headers=chat_key,
                          content=chat(other, "m-1", "another visitor"))).status_code == 201
    for headers, path, status in (
            (visitor, f"/v1/chat/conversations/{other}/messages", 403),
            ({}, url, 401),
            ({"Authorization": f"Bearer {token[:-4]}AAAA"}, url, 401),
            (admin_headers, url, 401),
            (visitor, f"/v1/tickets/{ticket_id}/messages", 401)):
        r = await gw.get(path, headers=headers)
        assert r.status_code == status, (path, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")

    # the widget's backend mints a fresh token for the conversation (after a page reload)
    minted = await gw.post(f"/v1/channels/chat/conversations/{conversation}/visitor-token",
                           headers=channel_key_headers["chat"])
    assert minted.status_code == 200, minted.text
    again = await gw.get(url, headers={"Authorization": f"Bearer {minted.json()['visitor_token']}"})
    assert [m["author_kind"] for m in again.json()["items"]] == ["customer", "agent"]
    web_key = channel_key_headers["web"]
    assert (await gw.post(f"/v1/channels/chat/conversations/{conversation}/visitor-token",
                          headers=web_key)).status_code == 403

    # notify-svc's chat adapter: the reply is available to the visitor, so "sent"
    reply_id = replied.json()["id"]

    async def sent():
        messages = (await gw.get(f"/v1/tickets/{ticket_id}/messages", headers=admin_headers)).json()["items"]
        found = {m["id"]: m for m in messages}
        return found[reply_id] if found[reply_id].get("delivery_status") == "sent" else None

    assert (await eventually(sent, timeout=60))["delivery_attempts"] == 1


async def test_the_document_states_the_visitor_route(gw):
    doc = (await gw.get("/openapi.json")).json()
    operation = doc["paths"]["/v1/chat/conversations/{conversation_id}/messages"]["get"]
    assert operation["security"] == [{"visitorToken": []}]
    assert doc["components"]["securitySchemes"]["visitorToken"]["scheme"] == "bearer"
    assert {"400", "401", "403", "404", "422", "429", "502", "503", "504"} <= operation["responses"].keys()
    assert "/v1/channels/chat/conversations/{conversation_id}/visitor-token" in doc["paths"]
