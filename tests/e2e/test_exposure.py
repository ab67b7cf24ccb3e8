"""Headers and exposure on the real processes (docs/security.md, "Headers and exposure").

Every route of every service app and of the gateway is called once on the running stack (uvicorn
started as `make run` starts it): directly at the service without an identity, and through the
gateway (reads as an admin, writes without credentials, which the gateway refuses, until its
per-address limit answers 429). Every answer — 2xx, 401, 403, 404, 405, 413, 422, 429, a streamed
event stream or CSV download — carries the edge's security headers and a request id, no
``Server`` banner and no traceback; every error is a problem document naming that request id.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import logging
import re
import uuid
from collections import Counter
from typing import Any

import httpx
import pytest

from helpdesk_common.devstack import SERVICES

#: where the walk's gateway requests come from: the credential-less ones use up this address's
#: allowance of bad credentials (the 429 the walk must see), not the one other tests share; the
#: admin's reads come from another, which that limit does not hold
WALK_ADDRESS = "127.0.9.7"
READ_ADDRESS = "127.0.9.8"
NIL = "00000000-0000-4000-8000-000000000000"
EXPECTED = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cross-origin-opener-policy": "same-origin",
}
_PARAM = re.compile(r"\{([^}:]+)(?::[^}]+)?\}")
_TRACE = re.compile(r"Traceback \(most recent call last\)|File \"/|\bsite-packages\b|sqlalchemy\.exc|asyncpg\.exceptions")


def _walk(routes: Any) -> Any:
    for route in routes:
        nested = getattr(route, "original_router", None)
        if nested is not None:
            yield from _walk(nested.routes)
        elif getattr(route, "methods", None):
            yield route


def route_table(stack: Any, monkeypatch: pytest.MonkeyPatch) -> dict[str, list[tuple[str, str]]]:
    """service name -> (method, path template) of every route its app has, built in this process
    with the stack's own settings (as the running processes were)."""
    env = stack.env()
    env["INTERNAL_AUTH_PRIVATE_KEY"] = stack.secrets["internal_auth_private_key"]
    for name in ("customer_pii_keys", "customer_pii_index_key", "ticket_pii_keys", "ticket_pii_index_key"):
        if name in stack.secrets:
            env[name.upper()] = stack.secrets[name]
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    table: dict[str, list[tuple[str, str]]] = {}
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        for svc in SERVICES:
            app = importlib.import_module(f"{svc.package}.main").create_app()
            table[svc.name] = sorted({(method, route.path) for route in _walk(app.routes)
                                      for method in route.methods if method != "HEAD"})
    finally:  # build_app configured the process's logging for a service: the test's own again
        root.handlers[:], root.level = handlers, level
    return table


def concrete(path: str) -> str:
    return _PARAM.sub(NIL, path)


async def call(client: httpx.AsyncClient, method: str, path: str, headers: dict[str, str],
               **body: Any) -> tuple[httpx.Response, str]:
    """One request: the answer and its body as text; an event stream's body is not waited for
    (it never ends), only its headers."""
    if not body and method in ("POST", "PUT", "PATCH"):
        body = {"json": {}}
    headers = {"Accept": "application/json", **headers}  # an API client (link pages answer browsers in HTML)
    async with client.stream(method, path, headers=headers, **body) as response:
        if response.headers.get("content-type", "").startswith("text/event-stream"):
            return response, ""
        return response, (await response.aread()).decode("utf-8", "replace")


def check(answer: tuple[httpx.Response, str], where: str, *, page: bool = False) -> list[str]:
    """What is wrong with one answer (empty: nothing)."""
    response, text = answer
    wrong = []
    headers = response.headers
    for name, value in EXPECTED.items():
        if headers.get(name) != value:
            wrong.append(f"{name}: {headers.get(name)!r}")
    csp = headers.get("content-security-policy", "")
    if "frame-ancestors 'none'" not in csp and not csp.startswith("default-src 'none'"):
        wrong.append(f"content-security-policy: {csp!r}")
    if not headers.get("cache-control"):
        wrong.append("no cache-control")
    if "cross-origin-resource-policy" not in headers:
        wrong.append("no cross-origin-resource-policy")
    if "server" in headers or "x-powered-by" in headers:
        wrong.append(f"banner: {headers.get('server') or headers.get('x-powered-by')}")
    rid = headers.get("x-request-id")
    if not rid:
        wrong.append("no x-request-id")
    if response.status_code >= 500 and response.status_code not in (502, 503, 504):
        wrong.append(f"status {response.status_code}")
    if _TRACE.search(text):
        wrong.append("traceback text in the body")
    if page:  # a customer's link page: HTML for a browser, its own policy, never cached
        if not headers.get("content-type", "").startswith("text/html") or headers.get("cache-control") != "no-store" \
                or "default-src 'none'" not in csp:
            wrong.append(f"page as {headers.get('content-type')}, {headers.get('cache-control')}, {csp!r}")
    elif response.status_code >= 400 and response.status_code != 304 and response.url.path.startswith("/api/v2/"):
        # the Zendesk-compatible surface answers errors in Zendesk's envelope, as its clients parse them
        try:
            body = json.loads(text)
            if headers.get("content-type") != "application/json" or not {"error", "description"} <= body.keys():
                wrong.append(f"Zendesk error as {headers.get('content-type')}: {text[:120]}")
            elif body.get("request_id") != rid:
                wrong.append(f"request_id {body.get('request_id')!r} != header {rid!r}")
        except ValueError:
            wrong.append("Zendesk error that is not JSON")
    elif response.status_code >= 400 and response.status_code != 304:
        if headers.get("content-type") != "application/problem+json":
            wrong.append(f"error as {headers.get('content-type')}")
        else:
            try:
                if json.loads(text).get("request_id") != rid:
                    wrong.append(f"request_id {json.loads(text).get('request_id')!r} != header {rid!r}")
            except ValueError:
                wrong.append("problem that is not JSON")
    return [f"{where} -> {response.status_code}: {w}" for w in wrong]


async def test_every_route_of_every_process_answers_with_the_edge_headers(stack, admin_headers, monkeypatch, report):
    table = route_table(stack, monkeypatch)
    problems: list[str] = []
    statuses: Counter[int] = Counter()
    calls = 0
    # 1. each service directly, without an identity (the gateway's signed one is what it trusts)
    async with httpx.AsyncClient(timeout=30) as client:
        for svc in SERVICES:
            if svc.name == "gateway":
                continue
            base = stack.url_of(svc.name)
            for method, path in table[svc.name]:
                answer = await call(client, method, base + concrete(path), {})
                problems += check(answer, f"{svc.name} {method} {path}")
                statuses[answer[0].status_code] += 1
                calls += 1
            for method, path in (("DELETE", "/healthz"), ("GET", "/nowhere")):  # 405, 404 outside every route
                answer = await call(client, method, base + path, {})
                problems += check(answer, f"{svc.name} {method} {path}")
                statuses[answer[0].status_code] += 1
    # 2. the gateway: its own routes and every service's /v1 route through it
    public = {(m, p) for svc in SERVICES if svc.name != "gateway" for m, p in table[svc.name] if p.startswith("/v1/")}
    own = {(m, p) for m, p in table["gateway"] if "{path" not in p}
    base_url = stack.creds["gateway_url"]
    async with httpx.AsyncClient(base_url=base_url, timeout=30,
                                 transport=httpx.AsyncHTTPTransport(local_address=WALK_ADDRESS)) as gw, \
            httpx.AsyncClient(base_url=base_url, timeout=30,
                              transport=httpx.AsyncHTTPTransport(local_address=READ_ADDRESS)) as reader:
        for method, path in sorted(own | public):
            client, headers = (reader, admin_headers) if method == "GET" else (gw, {})
            answer = await call(client, method, concrete(path), headers)
            problems += check(answer, f"gateway {method} {path}")
            statuses[answer[0].status_code] += 1
            calls += 1
        answer = await call(reader, "POST", "/v1/tickets", {**admin_headers, "Content-Type": "application/json"},
                            content=b"{" + b" " * 2_000_000 + b"}")
        problems += check(answer, "gateway POST /v1/tickets (2 MB body)")
        statuses[answer[0].status_code] += 1
        # the per-address limit on bad credentials: keep going until it answers (at most its 120/min)
        for _ in range(200):
            answer = await call(gw, "GET", "/v1/tickets", {"Authorization": "Bearer wrong"})
            problems += check(answer, "gateway GET /v1/tickets (bad credential)")
            statuses[answer[0].status_code] += 1
            calls += 1
            if answer[0].status_code == 429:
                assert answer[0].headers.get("retry-after")
                break
        # the customers' link pages, as a browser opens them (an unknown token: the page saying so)
        for path in ("/v1/surveys/hsv1.x.1.y", "/v1/confirmations/hcf1.x.1.y"):
            answer = await call(reader, "GET", path, {"Accept": "text/html"})
            assert answer[0].status_code == 404, (path, answer[0].status_code)
            problems += check(answer, f"gateway GET {path} (browser)", page=True)
        # a streamed CSV download and the live stream, as an admin
        for path in ("/v1/export/tickets.csv", "/v1/stream"):
            answer = await call(reader, "GET", path, admin_headers)
            assert answer[0].status_code == 200, (path, answer[0].status_code, answer[1][:300])
            problems += check(answer, f"gateway GET {path} (streamed)")
    report(f"edge headers: {calls} answers from {sum(len(r) for r in table.values())} routes of "
          f"{len(table)} processes; statuses {dict(sorted(statuses.items()))}")
    assert not problems, "\n".join(problems[:60]) + (f"\n... and {len(problems) - 60} more" if len(problems) > 60 else "")
    assert {200, 401, 404, 405, 413, 422, 429} <= statuses.keys(), statuses


async def test_a_relayed_problem_names_the_request_id_the_client_sent(gw, admin_headers):
    """The gateway sends its request id on to the service, whose problem document the client then
    gets unchanged: one id from the client's log to the service's."""
    rid = f"e2e-{uuid.uuid4().hex}"
    relayed = await gw.get(f"/v1/tickets/{uuid.uuid4()}", headers={**admin_headers, "X-Request-ID": rid})
    assert relayed.status_code == 404 and relayed.headers["content-type"] == "application/problem+json"
    assert relayed.json()["request_id"] == rid == relayed.headers["x-request-id"]
    # a problem the gateway writes itself (no service involved), and a generated id
    own = await gw.get("/v1/tickets", headers={"Authorization": "Bearer nope"})
    assert own.status_code == 401 and own.json()["request_id"] == own.headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", own.headers["x-request-id"])
    # an id that is not one is not echoed (it would go into logs and other services' headers)
    odd = await gw.get(f"/v1/tickets/{uuid.uuid4()}", headers={**admin_headers, "X-Request-ID": "a b<c>"})
    assert odd.headers["x-request-id"] != "a b<c>" and odd.json()["request_id"] == odd.headers["x-request-id"]


async def test_the_dev_stack_serves_the_api_document(gw):
    """`make run` turns API_DOCS_ENABLED on (production settings leave it off: tests of both states
    are in libs/common/tests/test_edge.py and services/gateway/tests/test_browser_access.py)."""
    document, page = await asyncio.gather(gw.get("/openapi.json"), gw.get("/docs"))
    assert document.status_code == 200 and document.json()["paths"]
    assert page.status_code == 200 and "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert (await gw.get("/redoc")).status_code == 404


async def test_metrics_only_for_the_scraper_on_every_process(stack):
    """Every process (the gateway on its ops listener: its public port never answers /metrics,
    tests/e2e/test_metrics.py) answers /metrics to a direct scrape from the scraper's addresses
    (loopback here) and, to a request that came through a proxy it does not trust (the dev stack
    trusts none), the 404 an absent route gets (metrics_access.py)."""
    async with httpx.AsyncClient(timeout=30) as client:
        for svc in SERVICES:
            base = stack.metrics_url(svc.name).removesuffix("/metrics")
            scrape = await call(client, "GET", base + "/metrics", {})
            assert scrape[0].status_code == 200 and "http_requests" in scrape[1], svc.name
            for proxied in ({"X-Forwarded-For": "203.0.113.5"}, {"Forwarded": "for=203.0.113.5"}):
                refused = await call(client, "GET", base + "/metrics", proxied)
                absent = await call(client, "GET", base + "/nowhere", proxied)
                assert refused[0].status_code == absent[0].status_code == 404, (svc.name, refused[1])
                assert "http_requests" not in refused[1]
                assert not check(refused, f"{svc.name} /metrics"), check(refused, f"{svc.name} /metrics")
