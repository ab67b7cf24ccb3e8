"""The edge layer of every app (helpdesk_common/edge.py): security headers on every answer, the
request id in every problem (500 included), no banners, the API document only when enabled."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from fastapi import APIRouter
from fastapi.responses import HTMLResponse, StreamingResponse
from hypothesis import given
from hypothesis import strategies as st

from helpdesk_common.app import ServiceParts, build_app
from helpdesk_common.devstack import free_port
from helpdesk_common.edge import JSON_API_CSP, REQUEST_ID, request_id_of, security_headers, with_defaults
from helpdesk_common.problems import Problem
from helpdesk_common.settings import ServiceSettings

EXPECTED = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "content-security-policy": JSON_API_CSP,
    "cache-control": "no-store",
    "cross-origin-resource-policy": "same-origin",
    "cross-origin-opener-policy": "same-origin",
}
SECRET = "password=hunter2 in /srv/app/module.py line 42"


# --- the pure rules ---------------------------------------------------------------------------

DEFAULTS = security_headers()


@pytest.mark.parametrize(("given_headers", "expected_extra", "expected_absent"), [
    # nothing set: every default
    ([], {}, set()),
    # a route's own Cache-Control and CSP stay; the rest is added
    ([(b"cache-control", b"public, max-age=60"), (b"content-security-policy", b"default-src 'none'; style-src x")],
     {"cache-control": "public, max-age=60", "content-security-policy": "default-src 'none'; style-src x"}, set()),
    # banners go, whatever their case
    ([(b"server", b"uvicorn"), (b"X-Powered-By", b"FastAPI")], {}, {"server", "x-powered-by"}),
    # an id set inside is replaced by the edge's
    ([(b"x-request-id", b"inner")], {}, set()),
])
def test_with_defaults_table(given_headers, expected_extra, expected_absent):
    out = with_defaults(given_headers, DEFAULTS, b"rid-1")
    names = [name.lower() for name, _ in out]
    assert len(names) == len(set(names)), "a header twice"
    got = {name.decode().lower(): value.decode() for name, value in out}
    assert got == {**EXPECTED, **expected_extra, "x-request-id": "rid-1"}
    assert not expected_absent & got.keys()


def test_hsts_only_when_the_deployment_says_tls():
    assert b"strict-transport-security" not in dict(security_headers())
    assert dict(security_headers(hsts_max_age_s=31536000))[b"strict-transport-security"] == (
        b"max-age=31536000; includeSubDomains")


@pytest.mark.parametrize(("incoming", "kept"), [
    (b"abc-123", True), (b"0f" * 16, True), (b"gw:1.2_3", True), (b"a" * 128, True),
    (b"a" * 129, False), (b"", False), (b"has space", False), (b"<script>", False), ("中文".encode(), False),
    (b"new\\nline", False),
])
def test_a_callers_request_id_is_kept_only_when_it_looks_like_one(incoming, kept):
    rid = request_id_of({"headers": [(b"x-request-id", incoming)]})
    assert (rid == incoming.decode("latin-1")) is kept
    assert REQUEST_ID.fullmatch(rid)


@given(st.binary(max_size=300))
def test_the_request_id_echoed_is_always_a_safe_token(incoming):
    assert REQUEST_ID.fullmatch(request_id_of({"headers": [(b"x-request-id", incoming)]}))


# --- an app built by build_app ----------------------------------------------------------------

def _app(**settings):  # type: ignore[no-untyped-def]
    router = APIRouter()

    @router.get("/v1/boom")
    async def boom() -> None:
        raise RuntimeError(SECRET)

    @router.get("/v1/database-away/{how}")
    async def database_away(how: str) -> None:
        import asyncpg
        import sqlalchemy.exc

        if how == "restarting":
            raise asyncpg.exceptions.CannotConnectNowError("the database system is starting up")
        if how == "reset":
            raise ConnectionResetError(104, "Connection reset by peer")
        raise sqlalchemy.exc.DBAPIError("SELECT 1", {}, asyncpg.exceptions.AdminShutdownError("terminating"))

    @router.get("/v1/items/{item_id}")
    async def item(item_id: int) -> dict:
        if item_id == 429:
            raise Problem(429, "rate-limited", "Too many requests", headers={"Retry-After": "1"})
        return {"id": item_id}

    @router.get("/v1/page")
    async def page() -> HTMLResponse:
        return HTMLResponse("<p>hi</p>", headers={"Content-Security-Policy": "default-src 'none'; style-src 'self'",
                                                   "Cache-Control": "private, max-age=5"})

    @router.get("/v1/stream")
    async def stream() -> StreamingResponse:
        async def chunks():  # type: ignore[no-untyped-def]
            for i in range(3):
                yield f"{i}\n"
        return StreamingResponse(chunks(), media_type="text/plain")

    return build_app(ServiceSettings(service_name="edge-test", max_body_bytes=1000, **settings),
                     ServiceParts(title="t", routers=[router]))


def _client(app) -> httpx.AsyncClient:  # type: ignore[no-untyped-def]
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, raise_app_exceptions=False), base_url="http://t")


def _assert_edge_headers(response: httpx.Response, **own: str) -> None:
    for name, value in {**EXPECTED, **own}.items():
        assert response.headers.get(name) == value, (response.request.url, name, response.headers)
    assert "server" not in response.headers and "x-powered-by" not in response.headers
    assert REQUEST_ID.fullmatch(response.headers["x-request-id"])
    if response.headers.get("content-type", "").startswith("application/problem+json"):
        assert response.json()["request_id"] == response.headers["x-request-id"]


async def test_every_kind_of_answer_carries_the_headers_and_problems_the_request_id():
    async with _client(_app()) as client:
        answers = {
            "200": await client.get("/v1/items/1"),
            "401-like problem (429 raised by a route)": await client.get("/v1/items/429"),
            "404": await client.get("/v1/nothing-here"),
            "405": await client.delete("/v1/items/1"),
            "422 path": await client.get("/v1/items/not-a-number"),
            "422 query": await client.get("/v1/items/1?unknown=1"),
            "422 NUL (middleware)": await client.get("/v1/items/1?x=%00"),
            "413 (middleware)": await client.post("/v1/items/1", content=b"x" * 2000),
            "healthz": await client.get("/healthz"),
            "streamed": await client.get("/v1/stream"),
        }
        for name, response in answers.items():
            _assert_edge_headers(response)
        assert answers["streamed"].text == "0\n1\n2\n"
        assert {r.status_code for r in answers.values()} >= {200, 404, 405, 413, 422, 429}
        own = await client.get("/v1/page")
        _assert_edge_headers(own, **{"content-security-policy": "default-src 'none'; style-src 'self'",
                                     "cache-control": "private, max-age=5"})


async def test_an_unexpected_error_is_a_generic_problem_with_the_request_id(capsys):
    async with _client(_app()) as client:
        given_id = await client.get("/v1/boom", headers={"X-Request-ID": "req-42"})
        fresh = await client.get("/v1/boom")
        forged = await client.get("/v1/boom", headers={"X-Request-ID": "<script>alert(1)</script>"})
    for response in (given_id, fresh, forged):
        assert response.status_code == 500
        assert response.headers["content-type"] == "application/problem+json"
        _assert_edge_headers(response)
        body = response.json()
        assert body == {"type": "https://helpdesk.dev/problems/internal-error", "title": "Internal error",
                        "status": 500, "detail": "An unexpected error occurred.", "request_id": body["request_id"]}
        assert "Traceback" not in response.text and "hunter2" not in response.text and "RuntimeError" not in response.text
    assert given_id.json()["request_id"] == "req-42" == given_id.headers["x-request-id"]
    assert forged.headers["x-request-id"] != "<script>alert(1)</script>"
    # the stack is in the log, under the same request id, for whoever runs the service
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    logged = [line for line in lines if line["msg"] == "unhandled error"]
    assert [line["request_id"] for line in logged] == [r.json()["request_id"] for r in (given_id, fresh, forged)]
    assert all("Traceback" in line["exc"] and "hunter2" in line["exc"] for line in logged)


async def test_an_unavailable_database_is_a_503_to_retry_not_a_500(capsys):
    """The fault suite stopped PostgreSQL under load and every request answered 500 (the stack
    logged as an unhandled error); a lost or refused database connection is a 503 with Retry-After."""
    async with _client(_app()) as client:
        answers = [await client.get(f"/v1/database-away/{how}") for how in ("restarting", "reset", "wrapped")]
        boom = await client.get("/v1/boom")
    for response in answers:
        assert response.status_code == 503, response.text
        assert response.headers["retry-after"] == "1"
        _assert_edge_headers(response, **{"retry-after": "1"})
        assert response.json()["type"] == "https://helpdesk.dev/problems/service-unavailable"
        assert "starting up" not in response.text and "Connection reset" not in response.text
    assert boom.status_code == 500  # anything else is still a 500
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert [line["msg"] for line in lines if line["level"] in ("warning", "error")] == [
        "database unavailable"] * 3 + ["unhandled error"]


async def test_no_server_banner_from_uvicorn_started_as_the_stack_starts_it():
    """uvicorn adds ``server: uvicorn`` itself, outside the app: devstack and the Dockerfile start
    it with --no-server-header (server_header=False); a 500 there has no trace either."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(_app(), host="127.0.0.1", port=port, lifespan="off", log_config=None,
                                           server_header=False))
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(30):
            while not server.started:
                await asyncio.sleep(0.05)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            for path in ("/v1/items/1", "/v1/boom", "/nowhere", "/v1/stream"):
                response = await client.get(path)
                _assert_edge_headers(response)
                assert "Traceback" not in response.text
    finally:
        server.should_exit = True
        async with asyncio.timeout(30):
            await task


def test_devstack_and_the_image_start_uvicorn_without_its_banner():
    from pathlib import Path

    import helpdesk_common.devstack as devstack

    root = Path(__file__).resolve().parents[3]
    assert "--no-server-header" in Path(devstack.__file__).read_text()
    cmd = next(line for line in (root / "Dockerfile").read_text().splitlines() if line.startswith("CMD"))
    assert "uvicorn" in cmd and "--no-server-header" in cmd


async def test_the_api_document_only_when_enabled():
    async with _client(_app()) as client:
        for path in ("/openapi.json", "/docs", "/redoc", "/docs/oauth2-redirect"):
            r = await client.get(path)
            assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json", path
    async with _client(_app(API_DOCS_ENABLED=True)) as client:
        document = await client.get("/openapi.json")
        assert document.status_code == 200 and "/v1/items/{item_id}" in document.json()["paths"]
        _assert_edge_headers(document)
        # a service never serves the Swagger UI or ReDoc pages: the gateway's /docs shows the whole API
        assert (await client.get("/docs")).status_code == 404
        assert (await client.get("/redoc")).status_code == 404


def test_the_api_document_is_off_by_default(monkeypatch):
    monkeypatch.delenv("API_DOCS_ENABLED", raising=False)
    assert ServiceSettings().api_docs_enabled is False
    monkeypatch.setenv("API_DOCS_ENABLED", "true")
    assert ServiceSettings().api_docs_enabled is True


async def test_hsts_when_configured():
    async with _client(_app(HSTS_MAX_AGE_S=600)) as client:
        r = await client.get("/v1/items/1")
    assert r.headers["strict-transport-security"] == "max-age=600; includeSubDomains"
    async with _client(_app()) as client:
        assert "strict-transport-security" not in (await client.get("/v1/items/1")).headers
