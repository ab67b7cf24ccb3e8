"""Forwarding rules for channel keys, the new ticket-svc prefixes, and the two body limits."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import Response

from helpdesk_common.identity import IDENTITY_HEADER
from helpdesk_common.testing import running_app

from .conftest import new_gateway, serve, user_token

pytestmark = pytest.mark.timeout(120)


@pytest.mark.parametrize(
    ("method", "path", "channel", "allowed"),
    [
        ("POST", "/v1/channels/email/inbound", "email", True),
        ("POST", "/v1/channels/chat/inbound", "email", False),
        ("POST", "/v1/channels/chat/inbound", "chat", True),
        ("POST", "/v1/channels/api/inbound", "api", False),  # "api" is not an intake channel
        ("GET", "/v1/channels/email/inbound", "email", False),
        ("POST", "/v1/tickets/x/messages", "api", True),
        ("GET", "/v1/tickets/x/messages", "api", True),
        ("GET", "/v1/tickets/x/attachments/y", "web", True),  # ticket-svc: own tickets, public messages' files
        ("DELETE", "/v1/tickets/x/attachments/y", "web", False),
        ("GET", "/v1/tickets/x/attachments", "web", False),
        ("GET", "/v1/tickets/x/attachments/y/z", "web", False),
        ("GET", "/v1/tickets/x/audit", "web", False),
        ("PATCH", "/v1/tickets/x", "email", False),
        ("POST", "/v1/tickets/x/assign", "api", False),
        ("GET", "/v1/agents/me", "api", False),
    ],
)
def test_channel_key_rules(method, path, channel, allowed):
    from gateway.proxy.forwarding import channel_may

    assert channel_may(method, path, channel) is allowed


async def test_channel_key_is_scoped_to_its_channel(gateway_env, ticket_svc):
    _, admin = user_token("admin")
    async with serve(new_gateway()) as (url, _), httpx.AsyncClient(base_url=url, timeout=30) as client:
        keys = {}
        for channel in ("email", "api"):
            r = await client.post("/v1/api-keys", json={"name": channel, "channel": channel}, headers=admin)
            keys[channel] = {"Authorization": f"Bearer {r.json()['key']}"}
        mail = b"From: a@b.co\r\nSubject: hi\r\n\r\nhello"
        ok = await client.post("/v1/channels/email/inbound", content=mail,
                               headers={**keys["email"], "content-type": "message/rfc822"})
        assert ok.status_code == 299, ok.text  # reached the stand-in ticket-svc
        assert ticket_svc.forwarded[-1] == {"path": "/v1/channels/email/inbound", "method": "POST", "kind": "channel",
                                            "channel": "email", "body_bytes": len(mail)}
        for path in ("/v1/channels/chat/inbound", "/v1/channels/web/inbound"):
            denied = await client.post(path, content=b"{}", headers=keys["email"])
            assert denied.status_code == 403 and denied.headers["content-type"] == "application/problem+json"
        assert (await client.post("/v1/channels/email/inbound", content=mail, headers=keys["api"])).status_code == 403
        assert (await client.patch("/v1/tickets/x", json={"status": "open"}, headers=keys["email"])).status_code == 403
        assert (await client.post("/v1/tickets/x/messages", json={"body": "hi"}, headers=keys["email"])).status_code == 299
        assert (await client.get("/v1/tickets/x/messages", headers=keys["email"])).status_code == 299
        # dot segments never reach an upstream, encoded or not
        sneaky = await client.post("/v1/channels/email/%2e%2e/chat/inbound", content=b"{}", headers=keys["email"])
        assert sneaky.status_code == 404
        # users reach the new ticket-svc prefixes
        for prefix in ("channels", "agents", "teams", "routing", "forms", "processes", "macros", "views", "statuses",
                       "audit", "approvals", "triggers", "automations", "rules"):
            r = await client.get(f"/v1/{prefix}/probe", headers=admin)
            assert r.status_code == 299 and r.json()["path"] == f"/v1/{prefix}/probe", prefix


async def test_forwarded_requests_are_counted_by_route_template_and_head_is_not_forwarded(gateway_env, ticket_svc):
    """The forwarding routes answer in plain ASGI (proxy/endpoints.py): the request still
    carries its route, so the metrics (and the intake SLO rules on them) count it by template,
    401s and 405s included; HEAD is the gateway's 405 and never reaches a service."""
    from prometheus_client import REGISTRY

    def counted(method: str, route: str, status: str) -> float:
        return REGISTRY.get_sample_value("http_requests_total", {"method": method, "route": route, "status": status}) or 0

    _, admin = user_token("admin")
    async with serve(new_gateway()) as (url, _), httpx.AsyncClient(base_url=url, timeout=30) as client:
        before = [counted("GET", "/v1/tickets/{rest:path}", "299"), counted("GET", "/v1/tickets", "401"),
                  counted("HEAD", "/v1/teams/{rest:path}", "405"), counted("GET", "<unmatched>", "299")]
        assert (await client.get("/v1/tickets/x/messages", headers=admin)).status_code == 299
        assert (await client.get("/v1/tickets")).status_code == 401
        forwarded = len(ticket_svc.forwarded)
        head = await client.head("/v1/teams/probe", headers=admin)
        assert head.status_code == 405 and "HEAD" not in head.headers["allow"]
        assert len(ticket_svc.forwarded) == forwarded
        after = [counted("GET", "/v1/tickets/{rest:path}", "299"), counted("GET", "/v1/tickets", "401"),
                 counted("HEAD", "/v1/teams/{rest:path}", "405"), counted("GET", "<unmatched>", "299")]
        assert [a - b for a, b in zip(after, before)] == [1, 1, 1, 0]


async def test_intake_paths_get_the_larger_body_limit(gateway_env, ticket_svc, monkeypatch):
    monkeypatch.setenv("MAX_BODY_BYTES", "1000")
    monkeypatch.setenv("MAX_INTAKE_BODY_BYTES", "5000")
    _, admin = user_token("admin")
    async with serve(new_gateway()) as (url, _), httpx.AsyncClient(base_url=url, timeout=30) as client:
        r = await client.post("/v1/api-keys", json={"name": "mail", "channel": "email"}, headers=admin)
        email = {"Authorization": f"Bearer {r.json()['key']}"}
        inbound = "/v1/channels/email/inbound"
        assert (await client.post(inbound, content=b"x" * 4000, headers=email)).status_code == 299
        too_big = await client.post(inbound, content=b"x" * 6000, headers=email)
        assert too_big.status_code == 413 and too_big.headers["content-type"] == "application/problem+json"

        async def chunks():  # no Content-Length: counted while streaming
            for _ in range(6):
                yield b"x" * 1000

        assert (await client.post(inbound, content=chunks(), headers=email)).status_code == 413
        # everything else keeps MAX_BODY_BYTES
        assert (await client.post("/v1/tickets", content=b"x" * 2000, headers={**admin, "content-type": "application/json"})).status_code == 413
        assert (await client.patch("/v1/tickets/x", content=b"x" * 2000, headers=admin)).status_code == 413
        # ... except multipart web forms creating a ticket
        form = {**admin, "content-type": "multipart/form-data; boundary=b"}
        assert (await client.post("/v1/tickets", content=b"x" * 4000, headers=form)).status_code == 299
        assert (await client.post("/v1/tickets", content=b"x" * 6000, headers=form)).status_code == 413
        assert (await client.post("/v1/tickets", content=b"x" * 900, headers=admin)).status_code == 299


async def test_upstream_down_is_a_502(gateway_env, ticket_svc, monkeypatch):
    from helpdesk_common.devstack import free_port

    monkeypatch.setenv("GATEWAY_TICKET_URL", f"http://127.0.0.1:{free_port()}")
    _, admin = user_token("admin")
    async with serve(new_gateway()) as (url, _), httpx.AsyncClient(base_url=url, timeout=30) as client:
        r = await client.get("/v1/teams", headers=admin)
        assert r.status_code == 502 and r.headers["content-type"] == "application/problem+json"


async def test_ready_and_serving_while_the_broker_is_down(gateway_env, ticket_svc, monkeypatch):
    from helpdesk_common.devstack import free_port

    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", f"127.0.0.1:{free_port()}")  # nothing listens there
    _, admin = user_token("admin")
    async with running_app(new_gateway()) as client:
        ready = await client.get("/readyz")
        # no broker check; the outbox (users.events) buffers until the broker is back
        assert ready.status_code == 200 and ready.json()["checks"] == {"database": "ok", "outbox": "ok"}
        assert (await client.get("/v1/tickets", headers=admin)).status_code == 299
        user = await client.post("/v1/users", json={"email": "nobroker@example.com", "password": "correct horse battery"},
                                 headers=admin)
        assert user.status_code == 201 and (await client.get("/readyz")).status_code == 200


async def test_own_openapi_document_includes_the_stream(gateway_env, ticket_svc):
    async with running_app(new_gateway()) as client:
        doc = (await client.get("/openapi.json")).json()
    stream = doc["paths"]["/v1/stream"]["get"]
    assert "text/event-stream" in stream["responses"]["200"]["content"]


async def test_a_document_missing_a_service_is_not_cached(gateway_env, ticket_svc):
    """Only the stand-in ticket-svc answers here: the composed document lacks the others, so the
    gateway serves it but asks again next time rather than hiding them for a minute."""
    app = new_gateway()
    async with running_app(app) as client:
        doc = (await client.get("/openapi.json")).json()
        assert "/v1/stream" in doc["paths"]
        assert getattr(app.state, "openapi_cache", None) is None


async def test_imports_and_orders_reach_customer_svc_with_the_upload_limit(gateway_env, ticket_svc, monkeypatch):
    """/v1/orders and /v1/imports are forwarded; a multipart upload to /v1/imports gets the intake
    limit (spreadsheets), anything else there keeps MAX_BODY_BYTES; channel keys stay out."""
    monkeypatch.setenv("GATEWAY_CUSTOMER_URL", ticket_svc.url)
    monkeypatch.setenv("MAX_BODY_BYTES", "1000")
    monkeypatch.setenv("MAX_INTAKE_BODY_BYTES", "5000")
    _, admin = user_token("admin")
    async with serve(new_gateway()) as (url, _), httpx.AsyncClient(base_url=url, timeout=30) as client:
        for path in ("/v1/orders", "/v1/orders/x", "/v1/imports/x/errors.csv"):
            r = await client.get(path, headers=admin)
            assert r.status_code == 299 and r.json()["path"] == path, path
        form = {**admin, "content-type": "multipart/form-data; boundary=b"}
        assert (await client.post("/v1/imports", content=b"x" * 4000, headers=form)).status_code == 299
        assert (await client.post("/v1/imports", content=b"x" * 6000, headers=form)).status_code == 413
        json_body = {**admin, "content-type": "application/json"}
        assert (await client.post("/v1/imports", content=b"x" * 2000, headers=json_body)).status_code == 413
        assert (await client.post("/v1/orders", content=b"x" * 2000, headers=form)).status_code == 413
        r = await client.post("/v1/api-keys", json={"name": "web", "channel": "web"}, headers=admin)
        key = {"Authorization": f"Bearer {r.json()['key']}"}
        assert (await client.post("/v1/orders", json={}, headers=key)).status_code == 403
        assert (await client.get("/v1/imports/x", headers=key)).status_code == 403


async def test_customer_duplicates_reach_customer_svc(gateway_env, ticket_svc, monkeypatch):
    """/v1/customer-duplicates (duplicate suggestions across the base, dismissals) is customer-svc's;
    channel keys stay out, as on every customer route."""
    monkeypatch.setenv("GATEWAY_CUSTOMER_URL", ticket_svc.url)
    _, admin = user_token("admin")
    async with serve(new_gateway()) as (url, _), httpx.AsyncClient(base_url=url, timeout=30) as client:
        for method, path in (("GET", "/v1/customer-duplicates"), ("POST", "/v1/customer-duplicates/dismiss")):
            r = await client.request(method, path, json={} if method == "POST" else None, headers=admin)
            assert r.status_code == 299 and r.json()["path"] == path, path
        r = await client.post("/v1/api-keys", json={"name": "web", "channel": "web"}, headers=admin)
        key = {"Authorization": f"Bearer {r.json()['key']}"}
        assert (await client.get("/v1/customer-duplicates", headers=key)).status_code == 403


async def test_privacy_requests_reach_customer_svc(gateway_env, ticket_svc, monkeypatch):
    """/v1/privacy/... (data subject requests) is customer-svc's, which lets admins only; channel
    keys stay out at the gateway."""
    monkeypatch.setenv("GATEWAY_CUSTOMER_URL", ticket_svc.url)
    _, admin = user_token("admin")
    async with serve(new_gateway()) as (url, _), httpx.AsyncClient(base_url=url, timeout=30) as client:
        for method, path in (("GET", "/v1/privacy/requests"), ("POST", "/v1/privacy/requests"),
                             ("POST", "/v1/privacy/requests/x/suspend")):
            r = await client.request(method, path, json={} if method == "POST" else None, headers=admin)
            assert r.status_code == 299 and r.json()["path"] == path, path
        r = await client.post("/v1/api-keys", json={"name": "web", "channel": "web"}, headers=admin)
        key = {"Authorization": f"Bearer {r.json()['key']}"}
        assert (await client.get("/v1/privacy/requests", headers=key)).status_code == 403


async def test_a_csv_download_is_relayed_as_it_comes(gateway_env, ticket_svc, monkeypatch):
    """ticket-svc streams /v1/export/tickets.csv (no Content-Length); the gateway sends each chunk on
    at once instead of reading the whole answer first, and a download may outlast the upstream
    timeout as long as every read is within it."""
    from fastapi import FastAPI
    from fastapi.responses import StreamingResponse

    release = asyncio.Event()
    app = FastAPI()

    @app.get("/v1/export/tickets.csv")
    async def export() -> StreamingResponse:
        async def rows():
            yield "\ufeffid,subject\r\n".encode()
            await release.wait()  # the rest only once the client has the header
            for i in range(6):
                # 3.6 s in all, longer than the 3 s upstream timeout; each gap a fifth of it (0.8 s of
                # 2 s was cut on a loaded runner, where a gap stretched past the per-read bound)
                await asyncio.sleep(0.6)
                yield f"{i},退款 {i}\r\n".encode()
        return StreamingResponse(rows(), media_type="text/csv; charset=utf-8",
                                 headers={"Content-Disposition": 'attachment; filename="tickets.csv"'})

    monkeypatch.setenv("GATEWAY_UPSTREAM_TIMEOUT_S", "3")
    _, admin = user_token("admin")
    async with serve(app, lifespan="off") as (upstream, _):
        monkeypatch.setenv("GATEWAY_TICKET_URL", upstream)
        async with serve(new_gateway()) as (url, _), httpx.AsyncClient(base_url=url, timeout=30) as client:
            async with client.stream("GET", "/v1/export/tickets.csv", headers=admin) as response:
                assert response.status_code == 200
                assert response.headers["content-disposition"] == 'attachment; filename="tickets.csv"'
                assert "content-length" not in response.headers
                chunks = response.aiter_bytes()
                first = await asyncio.wait_for(chunks.__anext__(), 10)  # before the upstream is done
                assert first.startswith("\ufeffid,subject".encode())
                release.set()
                rest = b"".join([chunk async for chunk in chunks])
            assert (first + rest).decode().splitlines()[1:] == [f"{i},退款 {i}" for i in range(6)]


async def test_a_forwarded_answer_is_relayed_as_the_upstream_gave_it(gateway_env, monkeypatch):
    """The forwarding route answers in plain ASGI (proxy/endpoints.py, ``ForwardingRoute``): what
    reaches the service and what the client gets back are what the Request / Response path gave.
    The upstream gets the method, the raw path and query as sent (an escaped backslash
    included), the body's bytes, the first of a repeated header and the signed identity; the
    client gets the status, the body, a Content-Length (none on a 204 or 304), the headers the
    gateway relays and no others, the security headers and the request id."""
    from fastapi import FastAPI

    seen: list[dict] = []
    app = FastAPI()

    @app.api_route("/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
    async def upstream(path: str, request: Request) -> Response:
        seen.append({"method": request.method, "raw_path": request.scope["raw_path"],
                     "query": request.scope["query_string"], "body": await request.body(),
                     "language": request.headers.getlist("accept-language"),
                     "identity": IDENTITY_HEADER in request.headers,
                     "request_id": request.headers.get("x-request-id")})
        if path.endswith("empty"):
            return Response(status_code=204, headers={"etag": '"7"'})
        if path.endswith("unchanged"):
            return Response(status_code=304, headers={"etag": '"7"'})
        return Response("工单 已创建".encode(), status_code=201, media_type="application/json",
                        headers={"etag": '"8"', "location": "/v1/tickets/1", "set-cookie": "a=b",
                                 "x-internal": "secret"})

    _, admin = user_token("admin")
    async with serve(app, lifespan="off") as (upstream_url, _):
        monkeypatch.setenv("GATEWAY_TICKET_URL", upstream_url)
        async with serve(new_gateway()) as (url, _), httpx.AsyncClient(base_url=url, timeout=30) as client:
            body = "退款 refund".encode()
            r = await client.post("/v1/tickets/a%5Cb/messages?x=1&y=%E4%B8%AD", content=body,
                                  headers=[*admin.items(), ("accept-language", "zh-CN"), ("accept-language", "en"),
                                           ("x-request-id", "req-42"), ("cookie", "c=d")])
            assert r.status_code == 201 and r.content == "工单 已创建".encode(), r.text
            assert r.headers["content-length"] == str(len(r.content))
            assert r.headers["content-type"] == "application/json"
            assert r.headers["etag"] == '"8"' and r.headers["location"] == "/v1/tickets/1"
            assert "set-cookie" not in r.headers and "x-internal" not in r.headers
            assert r.headers["x-request-id"] == "req-42" and r.headers["x-content-type-options"] == "nosniff"
            assert r.headers["cache-control"] == "no-store"
            assert seen[-1] == {"method": "POST", "raw_path": b"/v1/tickets/a%5Cb/messages", "query": b"x=1&y=%E4%B8%AD",
                                "body": body, "language": ["zh-CN"], "identity": True, "request_id": "req-42"}
            for path, status in (("/v1/tickets/empty", 204), ("/v1/tickets/unchanged", 304)):
                r = await client.delete(path, headers=admin)
                assert r.status_code == status and r.content == b"" and r.headers["etag"] == '"7"'
                assert "content-length" not in r.headers, path
            r = await client.options("/v1/tickets/x", headers=admin)  # OPTIONS is forwarded too
            assert r.status_code == 201 and seen[-1]["method"] == "OPTIONS" and seen[-1]["body"] == b""
            # the checks judge the path as Starlette's URL gives it: a tab or carriage return is
            # dropped, so this is a dot segment, refused before any upstream sees it
            forwarded = len(seen)
            for sneaky in ("/v1/tickets/.%09./x", "/v1/tickets/.%0D./x"):
                r = await client.get(sneaky, headers=admin)
                assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json", sneaky
            assert len(seen) == forwarded
