"""The forwarding hop.

aiohttp rather than httpx for this one path: DESIGN.md measured a shared httpx client at
~1.7 ms of CPU per forwarded request (capping a gateway near 400 req/s on 2 cores); aiohttp's
C-accelerated client does the same hop for a fraction of that (see bench/). The body is
read once (already bounded by the body-size middleware) and passed through untouched; the
response is relayed as bytes, never re-serialised.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from yarl import URL

from prometheus_client import Counter

from helpdesk_common.channels import CHANNEL_KINDS, CHANNEL_SIGNATURE_HEADERS
from helpdesk_common.identity import AGENT_ROLES, IDENTITY_HEADER, IdentitySigner, Principal
from helpdesk_common import tracing
from helpdesk_common.observability import request_id_var
from helpdesk_common.problems import Problem

from .upstreams import UPSTREAM_FAILOVERS, upstream_of

FORWARD_REQUEST_HEADERS = (
    "content-type", "accept", "accept-language", "idempotency-key", "if-match", "if-none-match",
    "traceparent", "tracestate",
)
RETURN_RESPONSE_HEADERS = (
    "content-type", "etag", "location", "retry-after", "idempotent-replayed", "cache-control", "allow",
    # downloads: the file name, and no content sniffing or scripting of user-supplied bytes
    "content-disposition", "x-content-type-options", "content-security-policy", "x-attachment-content-type",
    # the survey and confirmation pages (their token is in the URL): no Referer onwards, never
    # framed, never indexed
    "referrer-policy", "x-frame-options", "x-robots-tag",
    # the knowledge base's cached public reads: what the answer depends on (the caller's credential,
    # the reader's language), so no shared cache serves one caller's copy to another
    "vary", "content-language",
    # a public article's images may be embedded by other sites (every other answer is same-origin)
    "cross-origin-resource-policy",
)

UPSTREAM_RETRIES = Counter("gateway_upstream_retries_total",
                           "Requests re-sent once because a pooled upstream connection was dead", ["service"])
#: failures that happen before any response byte arrived: the connection was dead on reuse
_DEAD_CONNECTION = (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError)
#: how many times a request is re-sent after meeting a dead pooled connection
DEAD_CONNECTION_RESENDS = 2
#: failures before the request was sent: the connection was refused, or not accepted in time
_NOT_CONNECTED = (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError)

# channel API keys may create tickets, list and read their own, read and add messages on them
# and download the files of those messages (ticket-svc checks ownership and answers 404 for a
# file of an internal note): a bridge shows its customer the agents' public replies, files
# included, and the message list already names them; nothing else
_CHANNEL_ALLOWED = (
    ("POST", re.compile(r"^/v1/tickets/?$")),
    ("GET", re.compile(r"^/v1/tickets/?$")),
    ("GET", re.compile(r"^/v1/tickets/[^/]+/?$")),
    ("POST", re.compile(r"^/v1/tickets/[^/]+/messages/?$")),
    ("GET", re.compile(r"^/v1/tickets/[^/]+/messages/?$")),
    ("GET", re.compile(r"^/v1/tickets/[^/]+/attachments/[^/]+/?$")),
    # ... and the knowledge base's public routes (a web form's backend suggesting articles before
    # its ticket, reading and voting): kb-svc treats a key as an anonymous reader
    ("GET", re.compile(r"^/v1/kb/public(/.*)?$")),
    ("GET", re.compile(r"^/v1/kb/search/?$")),
    ("POST", re.compile(r"^/v1/kb/suggestions/?$")),
    ("POST", re.compile(r"^/v1/kb/suggestions/[^/]+/views/?$")),
    ("POST", re.compile(r"^/v1/kb/articles/[^/]+/votes/?$")),
)
# ... and post their own channel's native payload: an "email" key posts e-mail, not chat
_CHANNEL_INBOUND = re.compile(r"^/v1/channels/([^/]+)/inbound/?$")
# ... and the chat key mints visitor tokens for its conversations (ticket-svc checks the rest)
_CHAT_VISITOR_TOKEN = re.compile(r"^/v1/channels/chat/conversations/[^/]+/visitor-token/?$")
#: the one prefix a user of a role outside AGENT_ROLES (an ``editor``) is forwarded to: kb-svc
_KB_PATH = re.compile(r"^/v1/kb(/|$)")
_DOT_SEGMENT = re.compile(r"(^|/)\.{1,2}(/|$)")
#: downloads of any size (ticket-svc's ``/v1/export/tickets.csv``): relayed chunk by chunk as they
#: arrive, each read bounded by the upstream timeout rather than the whole answer
_STREAMED_DOWNLOAD = re.compile(r"^/v1/[^?]*\.csv$")


def channel_may(method: str, path: str, channel: str | None) -> bool:
    """Coarse check for channel API keys (the path is already free of dot segments)."""
    if method == "POST" and (inbound := _CHANNEL_INBOUND.match(path)):
        kind = inbound.group(1)
        return kind in CHANNEL_KINDS and kind == channel
    if method == "POST" and _CHAT_VISITOR_TOKEN.match(path):
        return channel == "chat"
    return any(method == m and pattern.match(path) for m, pattern in _CHANNEL_ALLOWED)


async def relay_chunks(upstream_response: aiohttp.ClientResponse):
    """The upstream's chunks as they come. A failure half-way ends the chunked answer without its
    last chunk, so the client sees an incomplete download rather than a short file that looks
    whole; the connection is released (closed, if the body was not read to the end) either way,
    also when the client goes away first."""
    try:
        async for chunk in upstream_response.content.iter_any():
            yield chunk
    finally:
        if upstream_response.content.at_eof():
            upstream_response.release()  # back to the pool
        else:
            upstream_response.close()  # a half-read answer: the connection cannot be reused


def safe_path(path: str) -> bool:
    """No dot segments (decoded), no backslashes: nothing that could climb out of /v1/<service>."""
    return not _DOT_SEGMENT.search(path) and "\\" not in path and "\x00" not in path


def new_session(*, max_connections: int, timeout_s: float) -> aiohttp.ClientSession:
    # an idle upstream connection is closed here after 30 s, before the upstream would close it
    # (its keep-alive: 75 s, helpdesk_common.devstack.UPSTREAM_KEEP_ALIVE_S and the Dockerfile);
    # with uvicorn's default of 5 s, a connection reused as the upstream closed it failed the
    # request after two re-sends (the likely cause of a 502 seen once in bench/run.py's light phase)
    connector = aiohttp.TCPConnector(limit=max_connections, ttl_dns_cache=300, keepalive_timeout=30)
    return aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=timeout_s, connect=2),
        auto_decompress=False,
        skip_auto_headers=("User-Agent", "Accept-Encoding"),
        cookie_jar=aiohttp.DummyCookieJar(),
    )


async def forward(
    request: Request, *, upstream: str, service_name: str, principal: Principal,
    session: aiohttp.ClientSession, signer: IdentitySigner,
    extra_headers: dict[str, str] | None = None, timeout: aiohttp.ClientTimeout | None = None,
) -> Response:
    """``extra_headers`` and ``timeout``: for the chat visitor's route (proxy/visitor.py), which
    hands its token to ticket-svc and long-polls past the usual upstream timeout."""
    answer = await exchange(
        request.method, request.url.path, request.scope, request.headers.get, request.body,
        upstream=upstream, service_name=service_name, principal=principal, session=session, signer=signer,
        extra_headers=extra_headers, timeout=timeout,
    )
    if answer.stream is not None:
        return StreamingResponse(relay_chunks(answer.stream), status_code=200, headers=answer.headers)
    return Response(answer.content, status_code=answer.status, headers=answer.headers)


@dataclass(slots=True)
class Answer:
    """What the upstream answered: its status, the headers the gateway returns, and its body
    (``content``), or for a download relayed as it arrives the upstream response (``stream``)."""

    status: int
    headers: dict[str, str]
    content: bytes = b""
    stream: aiohttp.ClientResponse | None = None


def forwarded_headers(method: str, path: str, header: Callable[[str], str | None], principal: Principal,
                      signer: IdentitySigner, extra_headers: dict[str, str] | None) -> dict[str, str]:
    """The checks of who may be forwarded where, and the headers the upstream gets: the caller's
    (``header``: a request header by lower-case name) that it needs, the signed identity, the
    request id and the trace context. A Problem when the caller may not go there."""
    if not safe_path(path):
        raise Problem(404, "not-found", "Not found", "No such resource.")
    if principal.kind == "channel" and not channel_may(method, path, principal.channel):
        raise Problem(403, "forbidden", "Forbidden",
                      "Channel API keys may only post their own channel's messages and create and read their own tickets.")
    if principal.kind == "user" and principal.role not in AGENT_ROLES and not _KB_PATH.match(path):
        raise Problem(403, "forbidden", "Forbidden", "Editors may only use the knowledge base (/v1/kb).")
    headers = {name: value for name in FORWARD_REQUEST_HEADERS if (value := header(name)) is not None}
    if principal.kind == "channel" and (inbound := _CHANNEL_INBOUND.match(path)):
        # the platform's signature travels in headers of its own (DingTalk: timestamp, sign)
        for name in CHANNEL_SIGNATURE_HEADERS.get(inbound.group(1), ()):
            if (value := header(name)) is not None:
                headers[name] = value
    headers.update(extra_headers or {})
    headers[IDENTITY_HEADER] = signer.token_for(principal)
    rid = request_id_var.get()
    if rid:
        headers["x-request-id"] = rid
    tracing.inject_into(headers)  # the upstream's span is a child of the gateway's
    return headers


async def exchange(
    method: str, path: str, scope: Mapping[str, Any], header: Callable[[str], str | None],
    read_body: Callable[[], Awaitable[bytes]], *,
    upstream: str, service_name: str, principal: Principal, session: aiohttp.ClientSession,
    signer: IdentitySigner, extra_headers: dict[str, str] | None = None,
    timeout: aiohttp.ClientTimeout | None = None,
) -> Answer:
    """One request sent on to ``upstream`` (a replica that refuses the connection: the next one;
    a pooled connection found dead: sent again) and its answer. ``path`` is the decoded path the
    checks judge; the raw one and the query string (``scope``) are sent as they came. The body
    (``read_body``) is read once the caller may go there."""
    headers = forwarded_headers(method, path, header, principal, signer, extra_headers)
    body = await read_body()
    raw_path = scope.get("raw_path") or path.encode()
    query = scope.get("query_string") or b""
    rest = raw_path.decode("latin-1") + (("?" + query.decode("latin-1")) if query else "")
    streamed = method == "GET" and _STREAMED_DOWNLOAD.match(path) is not None
    if streamed and timeout is None:
        timeout = aiohttp.ClientTimeout(total=None, connect=2, sock_read=session.timeout.total)
    replicas = upstream_of(upstream)
    candidates = replicas.order()
    tried, resent = 0, 0
    while True:
        base = candidates[tried]
        try:
            upstream_response = await session.request(method, URL(base + rest, encoded=True),
                                                      data=body or None, headers=headers, allow_redirects=False,
                                                      **({"timeout": timeout} if timeout else {}))
            if not replicas.single:
                replicas.up(base)
            out_headers = {
                name: value for name in RETURN_RESPONSE_HEADERS
                if (value := upstream_response.headers.get(name)) is not None
            }
            if streamed and upstream_response.status == 200 and upstream_response.content_length is None:
                return Answer(200, out_headers, stream=upstream_response)
            try:
                content = await upstream_response.read()
            finally:
                upstream_response.release()
            return Answer(upstream_response.status, out_headers, content)
        except _NOT_CONNECTED as exc:
            # the replica refused the connection or never accepted it: it saw nothing of this
            # request, so the next replica gets it (any method); with one replica, a 502
            replicas.down(base)
            tried += 1
            if tried < len(candidates):
                UPSTREAM_FAILOVERS.labels(service_name).inc()
                continue
            raise Problem(502, "bad-gateway", "Upstream unavailable", f"The {service_name} is unavailable.") from exc
        except asyncio.TimeoutError as exc:
            raise Problem(504, "gateway-timeout", "Upstream timeout", f"The {service_name} did not answer in time.") from exc
        except _DEAD_CONNECTION as exc:
            # a pooled keep-alive connection the upstream had closed (after answering someone
            # else, or on restart): nothing of this request was answered, so it is sent again
            # rather than failed. Twice at most: the pool may hand out a second connection the
            # upstream closed before it learns of the close (seen in CI under load); a third
            # failure is real
            if resent < DEAD_CONNECTION_RESENDS:
                resent += 1
                UPSTREAM_RETRIES.labels(service_name).inc()
                continue
            raise Problem(502, "bad-gateway", "Upstream unavailable", f"The {service_name} is unavailable.") from exc
        except aiohttp.ClientError as exc:
            raise Problem(502, "bad-gateway", "Upstream unavailable", f"The {service_name} is unavailable.") from exc
