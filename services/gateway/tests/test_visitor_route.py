"""The chat visitor's route: the one path a visitor token opens, forwarded as a visitor with its
token, limited per address (bad tokens count as bad credentials) and per token, long-polls
given their time; nothing else accepts a visitor token."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from helpdesk_common.identity import IDENTITY_HEADER, IdentityVerifier
from helpdesk_common.testing import TEST_PUBLIC_KEY

from .conftest import new_gateway, serve, user_token

pytestmark = pytest.mark.timeout(120)
PATH = "/v1/chat/conversations/c-1/messages"


@pytest.fixture
async def chat_svc(monkeypatch) -> AsyncIterator[list[dict[str, Any]]]:
    """A stand-in ticket-svc for the visitor route: records what it got; the token ``bad``
    is refused (401), ``other`` is another conversation's (403); it sleeps ``wait`` seconds."""
    seen: list[dict[str, Any]] = []
    app = FastAPI()
    verifier = IdentityVerifier(TEST_PUBLIC_KEY)

    @app.get("/v1/chat/conversations/{conversation_id}/messages")
    async def messages(conversation_id: str, request: Request) -> JSONResponse:
        principal = verifier.verify(request.headers[IDENTITY_HEADER])
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        seen.append({"kind": principal.kind, "id": principal.id, "token": token, "conversation_id": conversation_id,
                     "query": dict(request.query_params)})
        if token == "bad":
            return JSONResponse({"status": 401}, status_code=401, media_type="application/problem+json")
        if token == "other":
            return JSONResponse({"status": 403}, status_code=403, media_type="application/problem+json")
        await asyncio.sleep(float(request.query_params.get("wait", 0)))
        return JSONResponse({"items": [], "cursor": None})

    @app.get("/v1/tickets")
    async def tickets() -> JSONResponse:
        return JSONResponse({"items": [], "next_cursor": None})

    async with serve(app, lifespan="off") as (url, _):
        monkeypatch.setenv("GATEWAY_TICKET_URL", url)
        yield seen


def visitor(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_chat_keys_may_mint_visitor_tokens_and_no_other_key():
    from gateway.proxy.forwarding import channel_may

    path = "/v1/channels/chat/conversations/c-1/visitor-token"
    assert channel_may("POST", path, "chat") is True
    assert channel_may("POST", path, "email") is False
    assert channel_may("GET", path, "chat") is False
    assert channel_may("GET", PATH, "chat") is False


async def test_the_token_is_forwarded_as_a_visitor(gateway_env, chat_svc):
    async with serve(new_gateway()) as (url, _), httpx.AsyncClient(base_url=url, timeout=30) as client:
        r = await client.get(PATH, params={"after": "x"}, headers=visitor("hvt1.a.1.b"))
        assert r.status_code == 200 and r.json() == {"items": [], "cursor": None}
        assert chat_svc[-1]["kind"] == "visitor" and chat_svc[-1]["token"] == "hvt1.a.1.b"
        assert chat_svc[-1]["query"] == {"after": "x"} and "hvt1" not in chat_svc[-1]["id"]
        # a user's token is no credential here: it goes as a visitor token, for ticket-svc to refuse
        _, admin = user_token("admin")
        await client.get(PATH, headers=admin)
        assert chat_svc[-1]["kind"] == "visitor"
        # no token: refused by the gateway, never forwarded
        count = len(chat_svc)
        for headers in ({}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer"},
                        visitor("x" * 600)):
            r = await client.get(PATH, headers=headers)
            assert r.status_code == 401 and r.headers["content-type"] == "application/problem+json"
        assert len(chat_svc) == count
        # a visitor token opens nothing else
        for method, path in (("POST", PATH), ("GET", "/v1/chat/conversations/c-1"),
                             ("GET", "/v1/tickets"), ("GET", "/v1/chat/conversations/c-1/messages/x")):
            r = await client.request(method, path, headers=visitor("hvt1.a.1.b"))
            assert r.status_code == 401, (method, path)


async def test_a_long_poll_outlives_the_usual_upstream_timeout(gateway_env, chat_svc, monkeypatch):
    # the fake answers after ``wait`` (4 s), twice the usual timeout (2 s); the gateway allows
    # 2 + 4 s, so a loaded machine has 2 s of margin (with 1 + 2 s a busy CI runner went over)
    monkeypatch.setenv("GATEWAY_UPSTREAM_TIMEOUT_S", "2")
    async with serve(new_gateway()) as (url, _), httpx.AsyncClient(base_url=url, timeout=30) as client:
        r = await client.get(PATH, params={"wait": "4"}, headers=visitor("hvt1.a.1.b"))
        assert r.status_code == 200, r.text


async def test_parked_visitors_have_their_own_bounded_connections(gateway_env, chat_svc, monkeypatch):
    monkeypatch.setenv("GATEWAY_UPSTREAM_MAX_CONNECTIONS", "1")
    monkeypatch.setenv("GATEWAY_VISITOR_MAX_CONNECTIONS", "2")
    _, admin = user_token("admin")
    async with serve(new_gateway()) as (url, _), httpx.AsyncClient(base_url=url, timeout=30) as client:
        # parked for 8 s: ample time, on a loaded runner, for the checks below while both wait
        parked = [asyncio.create_task(client.get(PATH, params={"wait": "8"}, headers=visitor(f"t-{i}")))
                  for i in range(2)]
        for _ in range(100):  # both visitors' requests reached the upstream and hold its connections
            if len(chat_svc) == 2:
                break
            await asyncio.sleep(0.05)
        assert len(chat_svc) == 2
        # a third visitor is told to come back; an agent's request does not wait behind the visitors
        busy = await client.get(PATH, params={"wait": "0"}, headers=visitor("t-3"))
        assert busy.status_code == 503 and busy.headers["retry-after"] == "2"
        assert len(chat_svc) == 2  # refused at the gateway, never forwarded
        r = await asyncio.wait_for(client.get("/v1/tickets", headers=admin), 5)
        assert r.status_code == 200
        assert not any(task.done() for task in parked)  # the agent went past visitors still parked
        assert [(await task).status_code for task in parked] == [200, 200]


async def test_bad_tokens_count_against_the_address(gateway_env, chat_svc, monkeypatch):
    monkeypatch.setenv("GATEWAY_AUTH_FAILURES_PER_MINUTE_PER_ADDRESS", "3")
    async with serve(new_gateway()) as (url, _), httpx.AsyncClient(base_url=url, timeout=30) as client:
        assert (await client.get(PATH, headers=visitor("bad"))).status_code == 401
        assert (await client.get(PATH, headers=visitor("other"))).status_code == 403
        assert (await client.get(PATH, headers=visitor("bad"))).status_code == 401
        r = await client.get(PATH, headers=visitor("hvt1.good"))
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1


async def test_each_token_has_its_own_rate(gateway_env, chat_svc, monkeypatch):
    monkeypatch.setenv("GATEWAY_VISITOR_RATE_LIMIT_RPS", "0.01")
    monkeypatch.setenv("GATEWAY_VISITOR_RATE_LIMIT_BURST", "2")
    async with serve(new_gateway()) as (url, _), httpx.AsyncClient(base_url=url, timeout=30) as client:
        assert [(await client.get(PATH, headers=visitor("t-1"))).status_code for _ in range(3)] == [200, 200, 429]
        assert (await client.get(PATH, headers=visitor("t-2"))).status_code == 200


def test_the_document_keeps_a_service_security_scheme():
    from gateway.proxy.openapi import merge

    scheme = {"type": "http", "scheme": "bearer", "description": "visitor"}
    up = {"paths": {PATH.replace("c-1", "{conversation_id}"): {"get": {"security": [{"visitorToken": []}],
                                                                       "responses": {}}}},
          "components": {"securitySchemes": {"visitorToken": scheme}}}
    doc = merge({"paths": {}}, [("ticket service", up, {"chat"})])
    assert doc["components"]["securitySchemes"]["visitorToken"] == scheme
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    operation = doc["paths"]["/v1/chat/conversations/{conversation_id}/messages"]["get"]
    assert operation["security"] == [{"visitorToken": []}]
    assert {"429", "502", "504"} <= operation["responses"].keys()
