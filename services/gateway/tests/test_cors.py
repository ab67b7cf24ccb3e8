"""The CORS allow-list (gateway/cors.py): exact origins only, none by default, no credentials,
preflights for what the SPA sends, refusals as problem documents, the edge headers on all of it."""

from __future__ import annotations

import httpx
import pytest

from gateway.cors import ALLOW_HEADERS, ALLOW_METHODS, parse_origins

from .conftest import new_gateway, serve

pytestmark = pytest.mark.timeout(120)

SPA = "https://desk.example.com"


@pytest.mark.parametrize(("spec", "origins"), [
    ("", []),
    (" , ", []),
    (SPA, [SPA]),
    (f"{SPA}, http://127.0.0.1:5173,{SPA}", [SPA, "http://127.0.0.1:5173"]),
    ("http://[::1]:8080", ["http://[::1]:8080"]),
    ("https://xn--fiqs8s.example", ["https://xn--fiqs8s.example"]),
])
def test_origins_accepted(spec, origins):
    assert parse_origins(spec) == origins


@pytest.mark.parametrize("spec", [
    "*", "https://*.example.com", "null", "desk.example.com", "https://desk.example.com/",
    "https://desk.example.com/app", "https://user@desk.example.com", "ftp://desk.example.com",
    "https://Desk.Example.com", "https://desk.example.com:443", "http://desk.example.com:80",
    "https://desk.example.com:99999", "https://desk.example.com:0", "https://desk.example.com?x=1",
    "https://中文.example", f"{SPA}, *",
])
def test_anything_but_an_exact_origin_is_refused_at_start(spec):
    with pytest.raises(ValueError, match="GATEWAY_CORS_ORIGINS"):
        parse_origins(spec)


def test_a_wildcard_origin_stops_the_gateway_from_starting(gateway_env, ticket_svc, monkeypatch):
    monkeypatch.setenv("GATEWAY_CORS_ORIGINS", "*")
    with pytest.raises(ValueError, match="GATEWAY_CORS_ORIGINS"):
        new_gateway()


def _edge_headers_present(response: httpx.Response) -> None:
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-request-id"]  # (uvicorn's banner: tests/e2e/test_exposure.py, on the real processes)


async def test_preflights_and_answers(gateway_env, ticket_svc, monkeypatch):
    monkeypatch.setenv("GATEWAY_CORS_ORIGINS", f"{SPA},http://127.0.0.1:5173")
    async with serve(new_gateway()) as (url, _), httpx.AsyncClient(base_url=url, timeout=30) as client:
        # every method and header the SPA uses passes its preflight, with no credentials allowed
        for method in ALLOW_METHODS:
            ok = await client.options("/v1/tickets/1", headers={
                "Origin": SPA, "Access-Control-Request-Method": method,
                "Access-Control-Request-Headers": ",".join(h.lower() for h in ALLOW_HEADERS)})
            assert ok.status_code == 200, (method, ok.text)
            assert ok.headers["access-control-allow-origin"] == SPA
            assert method in ok.headers["access-control-allow-methods"]
            assert "access-control-allow-credentials" not in ok.headers
            assert ok.headers["access-control-max-age"] == "600"
            assert "origin" in ok.headers["vary"].lower()
            _edge_headers_present(ok)
        # another origin, a header or a method the SPA does not use: refused, as a problem
        for origin, method, header in (("https://evil.example", "GET", "authorization"),
                                       (SPA.replace("https", "http"), "GET", "authorization"),
                                       (SPA, "TRACE", "authorization"), (SPA, "GET", "x-forwarded-for")):
            refused = await client.options("/v1/tickets", headers={
                "Origin": origin, "Access-Control-Request-Method": method, "Access-Control-Request-Headers": header})
            assert refused.status_code == 400, (origin, method, header)
            assert refused.headers["content-type"] == "application/problem+json"
            assert refused.json()["type"].endswith("/cors-refused")
            assert refused.json()["request_id"] == refused.headers["x-request-id"]
            assert refused.headers.get("access-control-allow-origin") in (None, SPA) and "null" not in str(refused.headers)
            _edge_headers_present(refused)
        # an actual request: the origin echoed, the request id readable by the SPA
        answer = await client.get("/v1/users/me", headers={"Origin": SPA})
        assert answer.status_code == 401
        assert answer.headers["access-control-allow-origin"] == SPA
        assert "x-request-id" in answer.headers["access-control-expose-headers"].lower()
        assert "access-control-allow-credentials" not in answer.headers
        elsewhere = await client.get("/v1/users/me", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in elsewhere.headers
        _edge_headers_present(elsewhere)


async def test_no_cors_answers_without_a_list(gateway_env, ticket_svc, monkeypatch):
    monkeypatch.delenv("GATEWAY_CORS_ORIGINS", raising=False)
    async with serve(new_gateway()) as (url, _), httpx.AsyncClient(base_url=url, timeout=30) as client:
        preflight = await client.options("/v1/tickets", headers={"Origin": SPA, "Access-Control-Request-Method": "GET"})
        assert not any(name.startswith("access-control-") for name in preflight.headers)
        assert preflight.headers["content-type"] == "application/problem+json"
        _edge_headers_present(preflight)
