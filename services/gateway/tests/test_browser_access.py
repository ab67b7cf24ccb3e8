"""What the agents' single-page app needs from the gateway: a stream ticket for EventSource
(which cannot send Authorization), a CORS allow-list (none by default), and the API docs."""

from __future__ import annotations

import asyncio
import os
import time

import httpx
import jwt
import pytest

from .conftest import SIGNING_KEYS, SseReader, new_gateway, serve

pytestmark = pytest.mark.timeout(120)

PASSWORD = "correct horse battery staple"


async def signed_in(client: httpx.AsyncClient, role: str = "agent") -> dict:
    from .conftest import user_token

    _, admin = user_token("admin")
    email = f"{role}-{time.monotonic_ns()}@example.com"
    assert (await client.post("/v1/users", json={"email": email, "password": PASSWORD, "role": role},
                              headers=admin)).status_code == 201
    return (await client.post("/v1/auth/login", json={"email": email, "password": PASSWORD})).json()


async def test_a_stream_ticket_opens_the_stream_without_authorization(gateway_env, ticket_svc):
    async with serve(new_gateway()) as (url, _), httpx.AsyncClient(base_url=url, timeout=30) as client:
        tokens = await signed_in(client, "supervisor")
        auth = {"Authorization": f"Bearer {tokens['access_token']}"}
        issued = await client.post("/v1/stream/tickets", headers=auth)
        assert issued.status_code == 201, issued.text
        ticket = issued.json()["ticket"]
        assert issued.json()["expires_in"] == 60
        async with SseReader(client, f"/v1/stream?ticket={ticket}", {}) as stream:
            assert stream.response.status_code == 200
            assert (await stream.next(10)) == {"retry": "3000"}
        # the ticket is for the stream only, not a bearer token for the API
        assert (await client.get("/v1/users", headers={"Authorization": f"Bearer {ticket}"})).status_code == 401
        # and an access token is no stream ticket
        assert (await client.get(f"/v1/stream?ticket={tokens['access_token']}")).status_code == 401
        # it dies with its session
        assert (await client.post("/v1/auth/logout", headers=auth)).status_code == 204
        after = await client.get(f"/v1/stream?ticket={ticket}")
        assert after.status_code == 401 and after.headers["content-type"] == "application/problem+json"
        # expired or forged tickets are refused
        now = int(time.time())
        claims = jwt.decode(ticket, options={"verify_signature": False})
        expired = SIGNING_KEYS.sign({**claims, "iat": now - 120, "exp": now - 60})
        assert (await client.get(f"/v1/stream?ticket={expired}")).status_code == 401
        forged = jwt.encode(claims, "another secret", algorithm="HS256")
        assert (await client.get(f"/v1/stream?ticket={forged}")).status_code == 401


async def test_channel_keys_get_no_stream_ticket(gateway_env, ticket_svc):
    from .conftest import user_token

    _, admin = user_token("admin")
    async with serve(new_gateway()) as (url, _), httpx.AsyncClient(base_url=url, timeout=30) as client:
        key = (await client.post("/v1/api-keys", json={"name": "chat", "channel": "chat"}, headers=admin)).json()["key"]
        r = await client.post("/v1/stream/tickets", headers={"Authorization": f"Bearer {key}"})
        assert r.status_code == 403
        assert (await client.post("/v1/stream/tickets")).status_code == 401


async def test_no_cors_by_default(gateway_env, ticket_svc):
    async with serve(new_gateway()) as (url, _), httpx.AsyncClient(base_url=url, timeout=30) as client:
        r = await client.options("/v1/tickets", headers={"Origin": "https://evil.example",
                                                          "Access-Control-Request-Method": "GET"})
        assert "access-control-allow-origin" not in r.headers


async def test_cors_allow_list(gateway_env, ticket_svc, monkeypatch):
    monkeypatch.setenv("GATEWAY_CORS_ORIGINS", "https://desk.example.com")
    async with serve(new_gateway()) as (url, _), httpx.AsyncClient(base_url=url, timeout=30) as client:
        ok = await client.options("/v1/tickets", headers={
            "Origin": "https://desk.example.com", "Access-Control-Request-Method": "PATCH",
            "Access-Control-Request-Headers": "authorization,if-match"})
        assert ok.status_code == 200
        assert ok.headers["access-control-allow-origin"] == "https://desk.example.com"
        assert "PATCH" in ok.headers["access-control-allow-methods"]
        other = await client.options("/v1/tickets", headers={"Origin": "https://evil.example",
                                                              "Access-Control-Request-Method": "GET"})
        assert other.status_code == 400 and "access-control-allow-origin" not in other.headers
        login = await client.post("/v1/auth/login", json={"email": "x@example.com", "password": "nope"},
                                  headers={"Origin": "https://desk.example.com"})
        assert login.headers["access-control-allow-origin"] == "https://desk.example.com"


async def test_api_docs_are_served_and_can_be_turned_off(gateway_env, ticket_svc, monkeypatch):
    """API_DOCS_ENABLED (the tests' and the dev stack's environment) serves /docs and the composed
    /openapi.json; without it (the default) both are 404 problems; GATEWAY_DOCS_ENABLED wins."""
    import base64
    import hashlib
    import re

    assert os.environ["API_DOCS_ENABLED"] == "true"
    async with serve(new_gateway()) as (url, _), httpx.AsyncClient(base_url=url, timeout=30) as client:
        page = await client.get("/docs")
        assert page.status_code == 200 and "swagger" in page.text.lower() and "/openapi.json" in page.text
        # its own policy: the CDN's assets and its one inline script by hash; never framed
        csp = page.headers["content-security-policy"]
        (script,) = re.findall(r"<script>(.*?)</script>", page.text, re.S)
        digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in csp and "frame-ancestors 'none'" in csp and "'unsafe-eval'" not in csp
        assert "'unsafe-inline'" not in csp.split("script-src", 1)[1].split(";", 1)[0]
        assert page.headers["x-frame-options"] == "DENY" and page.headers["x-content-type-options"] == "nosniff"
        assert (await client.get("/openapi.json")).status_code == 200
        assert (await client.get("/redoc")).status_code == 404
    for name in ("GATEWAY_DOCS_ENABLED", "API_DOCS_ENABLED"):
        monkeypatch.setenv(name, "false")
        async with serve(new_gateway()) as (url, _), httpx.AsyncClient(base_url=url, timeout=30) as client:
            for path in ("/docs", "/openapi.json", "/redoc"):
                answer = await client.get(path)
                assert answer.status_code == 404 and answer.headers["content-type"] == "application/problem+json"
                assert answer.json()["request_id"] == answer.headers["x-request-id"]
    monkeypatch.delenv("GATEWAY_DOCS_ENABLED")
    monkeypatch.delenv("API_DOCS_ENABLED")
    async with serve(new_gateway()) as (url, _), httpx.AsyncClient(base_url=url, timeout=30) as client:
        assert (await client.get("/openapi.json")).status_code == 404  # the default: off
    await asyncio.sleep(0)
