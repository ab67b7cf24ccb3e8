"""The chat visitor's side on the real database: tokens from intake and from the mint route,
what a visitor reads (public customer and agent messages of its own conversation only), the
long-poll (woken by NOTIFY, empty at its timeout, bounded) and every refusal."""

import asyncio
import json
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpdesk_common.identity import Principal
from helpdesk_common.testing import identity_headers, running_app
from ticket_svc.visitor import tokens

VISITOR_KEY = "test-visitor-token-key-0123456789abcdef"
CHAT = identity_headers(Principal(kind="channel", id="chat-key", channel="chat"))
WEB = identity_headers(Principal(kind="channel", id="web-key", channel="web"))
ADMIN = identity_headers(Principal(kind="user", id="u-admin", role="admin"))
VISITOR = identity_headers(Principal(kind="visitor", id="v-test"))


@pytest.fixture
async def visitor_client(infra, ticket_db, monkeypatch):
    from helpdesk_common.testing import service_env

    service_env(monkeypatch, infra, "TICKET_", ticket_db)
    monkeypatch.setenv("TICKET_CONSUMERS_ENABLED", "false")
    monkeypatch.setenv("TICKET_VISITOR_TOKEN_KEY", VISITOR_KEY)
    monkeypatch.setenv("TICKET_VISITOR_MAX_WAITERS", "2")
    from ticket_svc.config import Settings
    from ticket_svc.main import create_app

    app = create_app(Settings())
    async with running_app(app) as c:
        c.app = app
        yield c


def chat(conversation: str, message: str, text: str = "你好，我想咨询退货") -> bytes:
    return json.dumps({"conversation_id": conversation, "message_id": message, "text": text,
                       "visitor": {"name": "访客 7"}}, ensure_ascii=False).encode()


async def say(client, conversation: str, message: str, text: str = "你好") -> dict:
    r = await client.post("/v1/channels/chat/inbound", content=chat(conversation, message, text),
                          headers={**CHAT, "Content-Type": "application/json"})
    assert r.status_code in (200, 201), r.text
    return r.json()


def as_visitor(token: str) -> dict[str, str]:
    return {**VISITOR, "Authorization": f"Bearer {token}"}


async def reply(client, ticket_id: str, body: str, *, public: bool = True) -> dict:
    r = await client.post(f"/v1/tickets/{ticket_id}/messages", json={"body": body, "public": public}, headers=ADMIN)
    assert r.status_code == 201, r.text
    return r.json()


# --- tokens, pure -------------------------------------------------------------------------------

def test_token_round_trip_expiry_and_tampering():
    key = b"k" * 32
    token = tokens.mint(key, conversation_key="chat:c-1", expires=2_000)
    assert tokens.verify(key, token, now=1_999) == tokens.VisitorGrant("chat:c-1", 2_000)
    with pytest.raises(tokens.InvalidToken):
        tokens.verify(key, token, now=2_000)  # expired
    with pytest.raises(tokens.InvalidToken):
        tokens.verify(b"x" * 32, token, now=0)  # another key
    prefix, conversation, expires, sig = token.split(".")
    forged = [
        ".".join((prefix, conversation, "9999999999", sig)),  # a later expiry
        ".".join((prefix, tokens._b64(b"chat:c-2"), expires, sig)),  # another conversation
        ".".join((prefix, conversation, expires, sig[:-2] + ("AA" if sig[-2:] != "AA" else "BB"))),
        token[:-1], "hvt1", "", "a.b.c.d", "hvt1.!!!.1.x", "x" * 1000, token + ".x",
        ".".join((prefix, conversation, "²", sig)), ".".join((prefix, conversation, "١٢", sig)),
    ]
    for bad in forged:
        with pytest.raises(tokens.InvalidToken):
            tokens.verify(key, bad, now=0)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=600),
                 st.lists(st.text(max_size=40), min_size=3, max_size=3).map(lambda p: ".".join(["hvt1", *p]))),
       st.text(min_size=1, max_size=140))
def test_any_string_is_a_grant_only_when_we_minted_it(candidate, conversation):
    """Whatever arrives as a token: a grant only when minted with our key, else InvalidToken
    (never another exception, which would be a 500)."""
    key = b"k" * 32
    try:
        tokens.verify(key, candidate, now=0)
    except tokens.InvalidToken:
        pass
    else:
        raise AssertionError(f"accepted {candidate!r}")
    minted = tokens.mint(key, conversation_key=conversation, expires=10)
    assert tokens.verify(key, minted, now=0).conversation_key == conversation


# --- through the service ------------------------------------------------------------------------

async def test_intake_answers_a_token_renewed_with_each_message(visitor_client):
    first = await say(visitor_client, "conv-a", "m-1")
    assert first["created"] is True and first["visitor_token"].startswith("hvt1.")
    grant = tokens.verify(VISITOR_KEY.encode(), first["visitor_token"], now=time.time())
    assert grant.conversation_key == "chat:conv-a"
    assert grant.expires - time.time() == pytest.approx(86_400, abs=5)
    # a duplicate delivery answers the original ids, and a token too
    again = await say(visitor_client, "conv-a", "m-1")
    assert again["ticket_id"] == first["ticket_id"] and again["visitor_token"]
    # other channels answer none
    r = await visitor_client.post("/v1/channels/web/inbound", data={"subject": "hi", "email": "a@example.com"},
                                  headers=WEB)
    assert r.status_code == 201 and "visitor_token" not in r.json()


async def test_the_visitor_reads_public_customer_and_agent_messages_only(visitor_client):
    opened = await say(visitor_client, "conv-b", "m-1", "我的订单没到")
    token = opened["visitor_token"]
    await reply(visitor_client, opened["ticket_id"], "内部：查物流", public=False)
    await reply(visitor_client, opened["ticket_id"], "您好，正在为您查询")
    other = await say(visitor_client, "conv-other", "m-1", "另一个会话")
    await reply(visitor_client, other["ticket_id"], "other conversation's reply")

    r = await visitor_client.get("/v1/chat/conversations/conv-b/messages", headers=as_visitor(token))
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    page = r.json()
    assert [(m["author_kind"], m["body_text"]) for m in page["items"]] == [
        ("customer", "我的订单没到"), ("agent", "您好，正在为您查询")]
    for item in page["items"]:  # nothing internal: no delivery state, ticket or author id
        assert set(item) == {"id", "author_kind", "author_name", "body_text", "body_html", "attachments",
                             "created_at"}
    # after the cursor: nothing new, the same cursor back
    r = await visitor_client.get("/v1/chat/conversations/conv-b/messages", params={"after": page["cursor"]},
                                 headers=as_visitor(token))
    assert r.json() == {"items": [], "cursor": page["cursor"]}
    # the next visitor message comes after it
    await say(visitor_client, "conv-b", "m-2", "谢谢")
    r = await visitor_client.get("/v1/chat/conversations/conv-b/messages", params={"after": page["cursor"]},
                                 headers=as_visitor(token))
    assert [m["body_text"] for m in r.json()["items"]] == ["谢谢"]


async def test_refusals(visitor_client):
    a = await say(visitor_client, "conv-c", "m-1")
    b = await say(visitor_client, "conv-d", "m-1")
    url = "/v1/chat/conversations/conv-c/messages"

    async def status(headers: dict, path: str = url, **params) -> tuple[int, dict]:
        r = await visitor_client.get(path, headers=headers, params=params)
        assert r.headers["content-type"].startswith("application/problem+json") or r.status_code == 200
        return r.status_code, r.json()

    assert (await status(as_visitor(b["visitor_token"])))[0] == 403  # another conversation's token
    assert (await status(VISITOR))[0] == 401  # no token
    assert (await status({**VISITOR, "Authorization": "Bearer hvt1.x.1.y"}))[0] == 401
    expired = tokens.mint(VISITOR_KEY.encode(), conversation_key="chat:conv-c", expires=int(time.time()) - 1)
    assert (await status(as_visitor(expired)))[0] == 401
    forged = tokens.mint(b"not-our-key" * 4, conversation_key="chat:conv-c", expires=int(time.time()) + 60)
    assert (await status(as_visitor(forged)))[0] == 401
    # the visitor token without the gateway's visitor identity, or with a user's / a key's
    assert (await status({"Authorization": f"Bearer {a['visitor_token']}"}))[0] == 401
    assert (await status({**ADMIN, "Authorization": f"Bearer {a['visitor_token']}"}))[0] == 401
    assert (await status({**CHAT, "Authorization": f"Bearer {a['visitor_token']}"}))[0] == 401
    # a visitor identity reaches nothing else
    r = await visitor_client.get(f"/v1/tickets/{a['ticket_id']}/messages", headers=as_visitor(a["visitor_token"]))
    assert r.status_code == 403
    # bad input
    assert (await status(as_visitor(a["visitor_token"]), after="forged"))[0] == 400
    assert (await status(as_visitor(a["visitor_token"]), wait="26"))[0] == 422
    assert (await status(as_visitor(a["visitor_token"]), wait="nan"))[0] == 422


async def test_minting_for_an_existing_conversation(visitor_client):
    await say(visitor_client, "conv-e", "m-1")
    path = "/v1/channels/chat/conversations/conv-e/visitor-token"
    r = await visitor_client.post(path, headers=CHAT)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["conversation_id"] == "conv-e"
    assert tokens.verify(VISITOR_KEY.encode(), body["visitor_token"], now=time.time()).conversation_key == "chat:conv-e"
    r = await visitor_client.get("/v1/chat/conversations/conv-e/messages", headers=as_visitor(body["visitor_token"]))
    assert r.status_code == 200 and len(r.json()["items"]) == 1
    assert (await visitor_client.post(path, headers=WEB)).status_code == 403  # another channel's key
    assert (await visitor_client.post(path, headers=VISITOR)).status_code == 403
    assert (await visitor_client.post("/v1/channels/chat/conversations/nobody/visitor-token",
                                      headers=CHAT)).status_code == 404


@pytest.mark.timeout(60)
async def test_long_poll_wakes_on_an_agent_reply_and_times_out_empty(visitor_client):
    opened = await say(visitor_client, "conv-f", "m-1")
    headers = as_visitor(opened["visitor_token"])
    url = "/v1/chat/conversations/conv-f/messages"
    cursor = (await visitor_client.get(url, headers=headers)).json()["cursor"]

    # nothing new: an empty page after `wait`, not before
    started = time.monotonic()
    r = await visitor_client.get(url, params={"after": cursor, "wait": "1.5"}, headers=headers)
    assert r.json() == {"items": [], "cursor": cursor}
    assert 1.4 <= time.monotonic() - started < 5

    # an agent reply wakes a parked poll (NOTIFY at commit), well before its 20 s
    poll = asyncio.create_task(visitor_client.get(url, params={"after": cursor, "wait": "20"}, headers=headers))
    await asyncio.sleep(0.5)
    assert visitor_client.app.state.visitor_waiters.count == 1
    posted = time.monotonic()
    await reply(visitor_client, opened["ticket_id"], "Hello, we are on it")
    r = await asyncio.wait_for(poll, 10)
    woke_after = time.monotonic() - posted
    assert [m["body_text"] for m in r.json()["items"]] == ["Hello, we are on it"]
    assert r.json()["items"][0]["author_kind"] == "agent"
    assert woke_after < 1.5, woke_after
    assert visitor_client.app.state.visitor_waiters.count == 0

    # an internal note wakes nobody with anything to read
    cursor = r.json()["cursor"]
    poll = asyncio.create_task(visitor_client.get(url, params={"after": cursor, "wait": "1"}, headers=headers))
    await asyncio.sleep(0.2)
    await reply(visitor_client, opened["ticket_id"], "internal", public=False)
    assert (await asyncio.wait_for(poll, 10)).json()["items"] == []


@pytest.mark.timeout(60)
async def test_parked_polls_are_bounded(visitor_client):
    opened = await say(visitor_client, "conv-g", "m-1")
    headers = as_visitor(opened["visitor_token"])
    url = "/v1/chat/conversations/conv-g/messages"
    cursor = (await visitor_client.get(url, headers=headers)).json()["cursor"]
    parked = [asyncio.create_task(visitor_client.get(url, params={"after": cursor, "wait": "10"}, headers=headers))
              for _ in range(2)]  # TICKET_VISITOR_MAX_WAITERS=2 in this app
    # until both are parked (a fixed sleep raced them on a loaded CI machine)
    hub = visitor_client.app.state.visitor_waiters
    for _ in range(200):
        if hub.count == 2:
            break
        await asyncio.sleep(0.05)
    assert hub.count == 2
    r = await visitor_client.get(url, params={"after": cursor, "wait": "10"}, headers=headers)
    assert r.status_code == 503 and r.headers["retry-after"] == "2"
    assert r.headers["content-type"].startswith("application/problem+json")
    # a poll that does not wait is never refused
    assert (await visitor_client.get(url, params={"after": cursor}, headers=headers)).status_code == 200
    await say(visitor_client, "conv-g", "m-2", "still there?")
    for task in parked:
        assert [m["body_text"] for m in (await asyncio.wait_for(task, 10)).json()["items"]] == ["still there?"]


async def test_the_document_states_the_visitor_route(visitor_client):
    doc = (await visitor_client.get("/openapi.json")).json()
    operation = doc["paths"]["/v1/chat/conversations/{conversation_id}/messages"]["get"]
    assert operation["security"] == [{"visitorToken": []}]
    assert {"400", "401", "403", "404", "422", "503"} <= operation["responses"].keys()
    assert doc["components"]["securitySchemes"]["visitorToken"]["scheme"] == "bearer"
    intake = doc["components"]["schemas"]["IntakeRead"]["properties"]
    assert "visitor_token" in intake
