"""One catch-all route per upstream prefix under /v1; anything else is never forwarded."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.routing import APIRoute
from starlette.requests import ClientDisconnect
from starlette.datastructures import URL
from starlette.responses import Response, StreamingResponse

from ..deps import authenticated, authenticated_scope
from .forwarding import exchange, forward, relay_chunks

#: every method is forwarded: the service answers one it does not take with a 405 naming those
#: it does (Allow), which only it knows. HEAD is not: the gateway answers it 405 itself
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "QUERY"]
#: public prefix → (settings attribute with the upstream URL, name used in errors)
UPSTREAMS = {
    "tickets": ("ticket_url", "ticket service"),
    "channels": ("ticket_url", "ticket service"),
    "agents": ("ticket_url", "ticket service"),
    "teams": ("ticket_url", "ticket service"),
    "routing": ("ticket_url", "ticket service"),
    "forms": ("ticket_url", "ticket service"),
    "processes": ("ticket_url", "ticket service"),
    "approvals": ("ticket_url", "ticket service"),
    "triggers": ("ticket_url", "ticket service"),
    "automations": ("ticket_url", "ticket service"),
    "rules": ("ticket_url", "ticket service"),
    "macros": ("ticket_url", "ticket service"),
    "views": ("ticket_url", "ticket service"),
    "statuses": ("ticket_url", "ticket service"),
    "audit": ("ticket_url", "ticket service"),
    # ticket exports: the incremental export and the .csv / .xlsx downloads (ticket-svc owns tickets)
    "export": ("ticket_url", "ticket service"),
    # only GET .../conversations/{id}/messages, with a visitor token (proxy/visitor.py, routed
    # first); anything else under /v1/chat comes here with ordinary credentials and is ticket-svc's 404/405
    "chat": ("ticket_url", "ticket service"),
    "customers": ("customer_url", "customer service"),
    "organizations": ("customer_url", "customer service"),
    "customer-attributes": ("customer_url", "customer service"),
    "organization-attributes": ("customer_url", "customer service"),
    "orders": ("customer_url", "customer service"),
    "imports": ("customer_url", "customer service"),
    # GET/POST /v1/surveys/{token} without a login (proxy/survey.py, routed first); the settings
    # and lists come here with ordinary credentials
    "surveys": ("customer_url", "customer service"),
    "insights": ("customer_url", "customer service"),
    "customer-duplicates": ("customer_url", "customer service"),
    # data subject requests (admins; customer-svc's privacy/): export and erasure across services
    "privacy": ("customer_url", "customer service"),
    "sla": ("sla_url", "SLA service"),
    "analytics": ("analytics_url", "analytics service"),
    "webhooks": ("notify_url", "notify service"),
    "deliveries": ("notify_url", "notify service"),
    "notification-templates": ("notify_url", "notify service"),
    "notification-rules": ("notify_url", "notify service"),
    "notification-preferences": ("notify_url", "notify service"),
    "notification-contacts": ("notify_url", "notify service"),
    "notification-log": ("notify_url", "notify service"),
    # the knowledge base; its public reads, search, suggestions, views and votes go without a
    # login (proxy/kb.py, routed first), everything else needs a user
    "kb": ("kb_url", "knowledge-base service"),
}


def _handler(setting: str, service_name: str):
    """The forwarding endpoint of one upstream, as a FastAPI endpoint (``ForwardingRoute.handle``
    answers the same in plain ASGI without calling it). It authenticates the caller itself
    (``deps.authenticated``, what the ``Caller`` dependency runs) and takes the request alone, so
    FastAPI has no dependency to solve per forwarded request (that was 6 % of the gateway's CPU).
    It stays a FastAPI route: FastAPI rebuilds a plain Starlette route of an included router as
    a new ``Route`` (with an implied HEAD) and records no route on the request for it, which the
    metrics' route label (the intake SLO rules select on it) and the error logs need."""
    async def proxy(request: Request) -> Response:
        state = request.app.state
        return await forward(
            request, upstream=getattr(state.settings, setting), service_name=service_name,
            principal=await authenticated(request), session=state.http, signer=state.signer,
        )

    return proxy


#: what Starlette's ``URL`` changes in a decoded path: ``?``, ``#`` and ``\\`` escaped again, and
#: tab, carriage return and line feed dropped (``urlsplit``)
_URL_REWRITTEN = re.compile(r"[?#\\\t\r\n]")


def url_path(scope: dict) -> str:
    """The path exactly as ``Request.url.path`` gives it, so the checks (dot segments, a channel
    key's paths, the streamed downloads) and the login's rules judge the same string as on every
    other route: the decoded path itself, unless it holds a character Starlette's ``URL``
    rewrites (``/v1/tickets/.%09./x`` is ``/v1/tickets/../x`` to it, a dot segment)."""
    path = scope["path"]
    if _URL_REWRITTEN.search(path):
        return URL(scope=scope).path
    return path


def header_lookup(scope: dict) -> Callable[[str], str | None]:
    """A request header by name, any case (the first of its name, as ``Request.headers.get``)."""
    headers: dict[str, str] = {}
    for name, value in scope["headers"]:
        headers.setdefault(name.decode("latin-1").lower(), value.decode("latin-1"))
    get = headers.get
    return lambda name: get(name.lower())


async def read_body(receive: Any) -> bytes:
    """The whole request body (already bounded by the body-size middleware), as ``Request.body``."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.request":
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                return b"".join(chunks)
        elif message["type"] == "http.disconnect":
            raise ClientDisconnect()


class ForwardingRoute(APIRoute):
    """A forwarding route that answers in plain ASGI: it authenticates the caller, forwards, and
    sends the upstream's answer itself, without building a Request, a Response or FastAPI's
    per-request machinery around an endpoint that needs none of it (about 10 % of the gateway's
    CPU per forwarded request: docs/performance.md, round 18). Everything around the route is
    unchanged: the route is matched, ordered and recorded on the request like any other (the
    metrics' route label), and a Problem it raises is answered by the app's problem handlers.
    A method the route does not take gets Starlette's 405 as before. What FastAPI would add
    around an endpoint when the router is included (dependencies, a ``max_body_size``) is not
    applied: the proxy routers are included without any (the body-size middleware bounds the
    body)."""

    setting: str = ""
    service_name: str = ""

    async def handle(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] not in self.methods:
            await super().handle(scope, receive, send)
            return
        state = scope["app"].state
        header = header_lookup(scope)
        path = url_path(scope)
        answer = await exchange(
            scope["method"], path, scope, header, lambda: read_body(receive),
            upstream=getattr(state.settings, self.setting), service_name=self.service_name,
            principal=await authenticated_scope(scope, header, path), session=state.http, signer=state.signer,
        )
        if answer.stream is not None:
            await StreamingResponse(relay_chunks(answer.stream), status_code=200, headers=answer.headers)(
                scope, receive, send)
            return
        await send_answer(send, answer.status, answer.headers, answer.content)


async def send_answer(send: Any, status: int, headers: dict[str, str], content: bytes) -> None:
    """The answer as ``Response(content, status_code=status, headers=headers)`` sends it: the
    headers as given, and a Content-Length except on a 1xx, 204 or 304."""
    raw = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()]
    if status >= 200 and status not in (204, 304):
        raw.append((b"content-length", str(len(content)).encode("latin-1")))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": content})


def add_proxy_route(router: APIRouter, path: str, setting: str, service_name: str, *, name: str) -> None:
    router.add_api_route(path, _handler(setting, service_name), methods=METHODS, name=name,
                         route_class_override=ForwardingRoute)
    route = router.routes[-1]
    assert isinstance(route, ForwardingRoute)
    route.setting, route.service_name = setting, service_name


def build_routers() -> list[APIRouter]:
    """One router per prefix: with ``helpdesk_common.route_index`` a request is matched against
    its own prefix's two routes only, where one router of all 90 was walked route by route (about
    1 µs each: ~140 µs for ``/v1/kb``, the last)."""
    routers = []
    for prefix, (setting, service_name) in UPSTREAMS.items():
        router = APIRouter(include_in_schema=False)
        add_proxy_route(router, f"/v1/{prefix}", setting, service_name, name=f"proxy-{prefix}")
        add_proxy_route(router, f"/v1/{prefix}/{{rest:path}}", setting, service_name, name=f"proxy-{prefix}-sub")
        routers.append(router)
    return routers
