"""The knowledge base through the gateway (issue 14, proxy/kb.py): the public routes without a
login (anonymous readers limited per address, customer tokens passed to kb-svc untouched), a
user's or a channel key's credentials as usual, everything else under /v1/kb for users only."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from helpdesk_common.identity import IDENTITY_HEADER, IdentityVerifier
from helpdesk_common.testing import TEST_PUBLIC_KEY

from .conftest import new_gateway, serve, user_token

pytestmark = pytest.mark.timeout(120)

CUSTOMER_TOKEN = "hkc1.AAAAAAAAAAAAAAAAAAAAAA.4102444800.c2lnbmF0dXJl"


def fake_kb() -> tuple[FastAPI, list[dict[str, Any]]]:
    """Stands in for kb-svc: records what reached it; answers a customer token 'bad' with 401,
    and an If-None-Match of the article's ETag with 304."""
    seen: list[dict[str, Any]] = []
    verifier = IdentityVerifier(TEST_PUBLIC_KEY)
    app = FastAPI()

    @app.api_route("/{path:path}", methods=["GET", "POST", "PATCH", "PUT", "DELETE"])
    async def echo(path: str, request: Request) -> Response:
        principal = verifier.verify(request.headers[IDENTITY_HEADER])
        seen.append({"path": "/" + path, "method": request.method, "kind": principal.kind, "id": principal.id,
                     "role": principal.role, "authorization": request.headers.get("authorization"),
                     "client": request.headers.get("x-kb-client"), "voter": request.headers.get("x-kb-voter")})
        if request.headers.get("authorization") == "Bearer hkc1.bad":
            return JSONResponse({"title": "Unauthorized"}, status_code=401)
        headers = {"etag": '"a1-v3"', "cache-control": "public, max-age=60", "vary": "Authorization, Accept-Language",
                   "content-language": "zh-CN"}
        if request.headers.get("if-none-match") == '"a1-v3"':
            return Response(status_code=304, headers=headers)
        return JSONResponse({"ok": True}, headers=headers)

    return app, seen


@pytest.fixture
async def kb(gateway_env, monkeypatch):
    app, seen = fake_kb()
    async with serve(app, lifespan="off") as (url, _):
        monkeypatch.setenv("GATEWAY_KB_URL", url)
        monkeypatch.setenv("GATEWAY_KB_PUBLIC_ADDRESS_RATE_LIMIT_RPS", "0.01")
        monkeypatch.setenv("GATEWAY_KB_PUBLIC_ADDRESS_RATE_LIMIT_BURST", "8")
        yield seen


PUBLIC = [("GET", "/v1/kb/public/articles/a1"), ("GET", "/v1/kb/public/categories"), ("GET", "/v1/kb/search"),
          ("POST", "/v1/kb/suggestions"), ("POST", "/v1/kb/suggestions/s1/views"), ("POST", "/v1/kb/articles/a1/votes")]


async def test_public_routes_need_no_login_and_keep_a_customer_token(kb):
    async with serve(new_gateway()) as (url, _), httpx.AsyncClient(base_url=url, timeout=30) as client:
        for method, path in PUBLIC[:3]:
            answer = await client.request(method, path, params={"q": "退款"} if "search" in path else None,
                                          json={} if method == "POST" else None)
            assert answer.status_code == 200, (path, answer.text)
            assert kb[-1]["path"] == path and kb[-1]["kind"] == "visitor" and kb[-1]["id"].startswith("anon:")
            assert "127.0.0.1" not in kb[-1]["id"]  # a digest of the address, the same for each request
            assert kb[-1]["id"] == kb[0]["id"]
            assert kb[-1]["authorization"] is None
        # caching headers both ways
        cached = await client.get("/v1/kb/public/articles/a1", headers={"If-None-Match": '"a1-v3"'})
        assert cached.status_code == 304 and cached.headers["etag"] == '"a1-v3"'
        assert cached.headers["cache-control"] == "public, max-age=60"
        first = await client.get("/v1/kb/public/articles/a1", headers={"Accept-Language": "zh-CN"})
        assert first.headers["vary"] == "Authorization, Accept-Language" and first.headers["content-language"] == "zh-CN"
        # a customer token goes to kb-svc as it came, with an identity naming a digest of it
        customer = await client.post("/v1/kb/articles/a1/votes", json={"helpful": True},
                                     headers={"Authorization": f"Bearer {CUSTOMER_TOKEN}"})
        assert customer.status_code == 200, customer.text
        assert kb[-1]["authorization"] == f"Bearer {CUSTOMER_TOKEN}" and kb[-1]["kind"] == "visitor"
        assert not kb[-1]["id"].startswith("anon:") and CUSTOMER_TOKEN not in kb[-1]["id"]
        # an anonymous vote carries the reader's vote id and a digest of the address (never the
        # address itself), which kb-svc keys its own limit on
        voted = await client.post("/v1/kb/articles/a1/votes", json={"helpful": True},
                                  headers={"X-KB-Voter": "v" * 20, "X-KB-Client": "spoofed"})
        assert voted.status_code == 200 and kb[-1]["voter"] == "v" * 20
        assert kb[-1]["client"] == kb[0]["id"].removeprefix("anon:") and "127.0.0.1" not in kb[-1]["client"]
        # kb-svc's 401 for a bad one reaches the caller
        bad = await client.get("/v1/kb/search", headers={"Authorization": "Bearer hkc1.bad"})
        assert bad.status_code == 401


async def test_users_and_channel_keys_are_authenticated_as_usual(kb):
    _, admin = user_token("admin")
    _, editor = user_token("editor")
    _, agent = user_token("agent")
    async with serve(new_gateway()) as (url, _), httpx.AsyncClient(base_url=url, timeout=30) as client:
        for who, headers in (("agent", agent), ("editor", editor)):
            answer = await client.get("/v1/kb/search", params={"q": "refund"}, headers=headers)
            assert answer.status_code == 200 and kb[-1]["kind"] == "user" and kb[-1]["role"] == who
            assert kb[-1]["authorization"] is None  # the user's token stays at the gateway
        # an editor reaches the rest of /v1/kb (kb-svc decides)
        made = await client.post("/v1/kb/articles", json={"title": "x"}, headers=editor)
        assert made.status_code == 200 and kb[-1] == {**kb[-1], "path": "/v1/kb/articles", "role": "editor"}
        # a wrong user token on a public route is a 401, not an anonymous read
        before = len(kb)
        wrong = await client.get("/v1/kb/search", headers={"Authorization": "Bearer not-a-token"})
        assert wrong.status_code == 401 and len(kb) == before
        key = (await client.post("/v1/api-keys", json={"name": "form", "channel": "web"}, headers=admin)).json()["key"]
        form = {"Authorization": f"Bearer {key}"}
        suggested = await client.post("/v1/kb/suggestions", json={"subject": "退款"}, headers=form)
        assert suggested.status_code == 200 and kb[-1]["kind"] == "channel"
        # a channel key writes nothing in the knowledge base
        refused = await client.post("/v1/kb/articles", json={}, headers=form)
        assert refused.status_code == 403 and len(kb) == before + 1


async def test_the_rest_of_the_knowledge_base_needs_a_user(kb):
    async with serve(new_gateway()) as (url, _), httpx.AsyncClient(base_url=url, timeout=30) as client:
        for method, path in (("GET", "/v1/kb/articles"), ("POST", "/v1/kb/articles"), ("POST", "/v1/kb/categories"),
                             ("GET", "/v1/kb/articles/a1/versions"), ("POST", "/v1/kb/customer-tokens"),
                             ("PUT", "/v1/kb/search"), ("DELETE", "/v1/kb/public/articles/a1"),
                             ("GET", "/v1/kb/suggestions/s1/views")):
            answer = await client.request(method, path, json={} if method in ("POST", "PUT") else None)
            assert answer.status_code == 401, (method, path, answer.text)
            assert answer.headers["content-type"].startswith("application/problem+json")
            assert answer.headers.get("www-authenticate", "").lower().startswith("bearer")
        # a customer token is not a login for them
        answer = await client.get("/v1/kb/articles", headers={"Authorization": f"Bearer {CUSTOMER_TOKEN}"})
        assert answer.status_code == 401
        assert kb == []


async def test_anonymous_readers_are_limited_per_address(kb):
    async with serve(new_gateway()) as (url, _), httpx.AsyncClient(base_url=url, timeout=30) as client:
        answers = [await client.get("/v1/kb/public/articles/a1") for _ in range(10)]
        assert [a.status_code for a in answers[:8]] == [200] * 8
        limited = answers[9]
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
        assert limited.headers["content-type"].startswith("application/problem+json")
        assert len(kb) == 8
        # the limit is the anonymous one: a signed-in agent still reads
        _, agent = user_token("agent")
        assert (await client.get("/v1/kb/public/articles/a1", headers=agent)).status_code == 200
