"""The survey link: GET/POST /v1/surveys/{token} reach customer-svc without a login (as a
visitor identity, body and content type untouched, the page's security headers returned),
limited per address, tokens customer-svc does not know counting as bad credentials; the
settings stay authenticated; the document shows the link's operations with no security."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse

from helpdesk_common.identity import IDENTITY_HEADER, IdentityVerifier
from helpdesk_common.testing import TEST_PUBLIC_KEY

from .conftest import new_gateway, serve, user_token

pytestmark = pytest.mark.timeout(120)
TOKEN = "hsv1.AAAAAAAAAAAAAAAAAAAAAA.2000000000.c2lnbmF0dXJl"
PAGE_HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY",
                "Content-Security-Policy": "default-src 'none'"}


@pytest.fixture
async def customer_svc(monkeypatch) -> AsyncIterator[list[dict[str, Any]]]:
    """A stand-in customer-svc: records what it got; the token ``bad`` is not one (404)."""
    seen: list[dict[str, Any]] = []
    app = FastAPI()
    verifier = IdentityVerifier(TEST_PUBLIC_KEY)

    @app.api_route("/v1/surveys/{token}", methods=["GET", "POST"])
    async def survey(token: str, request: Request) -> Any:
        principal = verifier.verify(request.headers[IDENTITY_HEADER])
        seen.append({"method": request.method, "kind": principal.kind, "id": principal.id, "role": principal.role,
                     "token": token, "body": await request.body(), "type": request.headers.get("content-type"),
                     "authorization": request.headers.get("authorization")})
        if token == "bad":
            return JSONResponse({"status": 404}, status_code=404, media_type="application/problem+json")
        if token == "settings":  # the settings' own route: what the authenticated proxy forwards
            return JSONResponse({"csat_enabled": True})
        return HTMLResponse("<!doctype html><form method=post></form>", headers=PAGE_HEADERS)

    async with serve(app, lifespan="off") as (url, _):
        monkeypatch.setenv("GATEWAY_CUSTOMER_URL", url)
        yield seen


async def test_the_link_is_forwarded_without_a_login(gateway_env, customer_svc):
    async with serve(new_gateway()) as (url, _), httpx.AsyncClient(base_url=url, timeout=30) as client:
        page = await client.get(f"/v1/surveys/{TOKEN}", headers={"Accept": "text/html"})
        assert page.status_code == 200 and page.text.startswith("<!doctype html>")
        for name, value in PAGE_HEADERS.items():
            assert page.headers[name] == value
        form = await client.post(f"/v1/surveys/{TOKEN}", content="rating=5&comment=%E5%A5%BD",
                                 headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert form.status_code == 200
        got = customer_svc[-1]
        assert (got["method"], got["kind"], got["token"], got["body"], got["type"]) == (
            "POST", "visitor", TOKEN, b"rating=5&comment=%E5%A5%BD", "application/x-www-form-urlencoded")
        assert TOKEN not in got["id"] and got["authorization"] is None
        # a user's credentials are not passed on, and change nothing
        _, admin = user_token("admin")
        await client.get(f"/v1/surveys/{TOKEN}", headers=admin)
        assert customer_svc[-1]["kind"] == "visitor" and customer_svc[-1]["authorization"] is None
        # other methods on the link are customer-svc's 405 (with its Allow), not a request for a login
        for method in ("PUT", "DELETE", "PATCH", "TRACE"):
            r = await client.request(method, f"/v1/surveys/{TOKEN}")
            assert r.status_code == 405 and set(r.headers["allow"].split(", ")) >= {"GET", "POST"}, method
        # HEAD is not a request for a login either (nor a failed one counted against the address)
        head = await client.head(f"/v1/surveys/{TOKEN}")
        assert head.status_code == 405, head.status_code
        # other paths under /v1/surveys are the ordinary proxy's: a login is needed
        assert (await client.get("/v1/surveys")).status_code == 401


async def test_the_settings_stay_authenticated(gateway_env, customer_svc):
    async with serve(new_gateway()) as (url, _), httpx.AsyncClient(base_url=url, timeout=30) as client:
        count = len(customer_svc)
        for method in ("GET", "PUT"):
            r = await client.request(method, "/v1/surveys/settings")
            assert r.status_code == 401 and r.headers["content-type"] == "application/problem+json"
        assert len(customer_svc) == count
        _, admin = user_token("admin")
        r = await client.get("/v1/surveys/settings", headers=admin)
        assert r.status_code == 200 and r.json() == {"csat_enabled": True}
        assert (customer_svc[-1]["kind"], customer_svc[-1]["role"]) == ("user", "admin")


async def test_unknown_tokens_count_against_the_address(gateway_env, customer_svc, monkeypatch):
    monkeypatch.setenv("GATEWAY_AUTH_FAILURES_PER_MINUTE_PER_ADDRESS", "3")
    async with serve(new_gateway()) as (url, _), httpx.AsyncClient(base_url=url, timeout=30) as client:
        assert [(await client.get("/v1/surveys/bad")).status_code for _ in range(3)] == [404, 404, 404]
        r = await client.get(f"/v1/surveys/{TOKEN}")
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1


async def test_each_address_has_its_rate(gateway_env, customer_svc, monkeypatch):
    monkeypatch.setenv("GATEWAY_SURVEY_ADDRESS_RATE_LIMIT_RPS", "0.01")
    monkeypatch.setenv("GATEWAY_SURVEY_ADDRESS_RATE_LIMIT_BURST", "2")
    async with serve(new_gateway()) as (url, _), httpx.AsyncClient(base_url=url, timeout=30) as client:
        codes = [(await client.get(f"/v1/surveys/{TOKEN}")).status_code for _ in range(3)]
        assert codes == [200, 200, 429]
        # an agent's signed-in requests are not in the link's bucket
        _, admin = user_token("admin")
        assert (await client.get("/v1/surveys/settings", headers=admin)).status_code == 200


def test_the_document_shows_the_link_without_security():
    """customer-svc's own document, merged as the gateway serves it."""
    from customer_svc.config import Settings
    from customer_svc.main import create_app

    from helpdesk_common.pii_crypto import new_settings

    from gateway.proxy.endpoints import UPSTREAMS
    from gateway.proxy.openapi import merge

    assert UPSTREAMS["surveys"][0] == "customer_url"
    own = {"openapi": "3.1.0", "info": {"title": "t", "version": "1"}, "paths": {}, "components": {"schemas": {}}}
    keys = new_settings("CUSTOMER_")  # customer-svc does not start without its personal-data keys
    customer_settings = Settings(pii_keys=keys["CUSTOMER_PII_KEYS"], pii_index_key=keys["CUSTOMER_PII_INDEX_KEY"])
    doc = merge(own, [("customer service", create_app(customer_settings).openapi(), {"surveys"})])
    link = doc["paths"]["/v1/surveys/{token}"]
    assert link["get"]["security"] == [] and link["post"]["security"] == []
    assert {"200", "404", "409", "410", "429"} <= link["post"]["responses"].keys()
    assert "text/html" in link["get"]["responses"]["200"]["content"]
    settings = doc["paths"]["/v1/surveys/settings"]
    assert "security" not in settings["put"] and doc["security"] == [{"bearer": []}]
    assert "401" in settings["put"]["responses"]
