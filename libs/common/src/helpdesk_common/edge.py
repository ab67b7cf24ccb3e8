"""The outermost layer of every app (each service and the gateway): request id, response headers, metrics.

``EdgeMiddleware`` wraps the whole Starlette stack, error handling included (``ServiceApp``
puts it outside ``ServerErrorMiddleware``), so that every answer — a handler's, a middleware's
413/422, the CORS preflight, the 500 problem for an unexpected error, a streamed download —
carries:

- ``X-Request-ID``: the caller's when it is a plausible id (``REQUEST_ID``: at most 128 letters,
  digits and ``-_.:``), otherwise a fresh one; the same id is in ``request_id_var`` for the logs
  and for every problem document's ``request_id`` member, and the gateway sends it on to the
  services it calls, so a relayed problem names the id the client saw;
- the security headers of a JSON API (``security_headers``), each only when the route did not set
  its own (an HTML page's CSP, a knowledge-base read's ``Cache-Control``);
- no ``Server`` or ``X-Powered-By`` header from the application (uvicorn's own ``server`` header
  is turned off where uvicorn is started: ``--no-server-header``).

Plain ASGI (not BaseHTTPMiddleware): it sits on the intake hot path. The work per response is one
pass over the response's headers and a list extension; the header values are encoded once, when
the app is built.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterable
from typing import Any

from .observability import count_request, request_id_var

#: a caller's X-Request-ID is echoed (and logged, and sent on) only when it looks like an id
REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")

#: the policy of a JSON API: it loads nothing, is never framed, never sniffed, never cached
JSON_API_CSP = "default-src 'none'; frame-ancestors 'none'"

#: headers an answer never carries from the application (they name the software and its version)
BANNER_HEADERS = frozenset({b"server", b"x-powered-by"})


def security_headers(*, hsts_max_age_s: int = 0) -> tuple[tuple[bytes, bytes], ...]:
    """The default headers of every answer, as raw ASGI pairs (lower-case names).

    ``hsts_max_age_s`` > 0 adds ``Strict-Transport-Security`` (only a deployment that is served
    over TLS says so: HSTS over plain HTTP is ignored by browsers, and behind TLS it pins
    browsers to it for that long)."""
    headers = [
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "no-referrer"),
        ("x-frame-options", "DENY"),
        ("content-security-policy", JSON_API_CSP),
        ("cache-control", "no-store"),
        # no other site may embed an answer (an <img>, a <script> of a JSON body): CORS requests
        # from allowed origins are not affected; the knowledge base's public images set cross-origin
        ("cross-origin-resource-policy", "same-origin"),
        ("cross-origin-opener-policy", "same-origin"),
    ]
    if hsts_max_age_s > 0:
        headers.append(("strict-transport-security", f"max-age={hsts_max_age_s}; includeSubDomains"))
    return tuple((name.encode("latin-1"), value.encode("latin-1")) for name, value in headers)


#: headers of an answer the edge replaces or removes
_DROPPED = BANNER_HEADERS | {b"x-request-id"}


def with_defaults(headers: Iterable[tuple[bytes, bytes]], defaults: tuple[tuple[bytes, bytes], ...],
                  request_id: bytes) -> list[tuple[bytes, bytes]]:
    """``headers`` (an answer's, raw ASGI pairs) without banners and with every default header
    whose name it does not set already, plus ``X-Request-ID`` (replacing one set inside)."""
    out = list(headers)
    present = {name.lower() for name, _ in out}
    if not present.isdisjoint(_DROPPED):  # rare: nothing of ours sets them
        out = [(name, value) for name, value in out if name.lower() not in _DROPPED]
    out += [pair for pair in defaults if pair[0] not in present]
    out.append((b"x-request-id", request_id))
    return out


def request_id_of(scope: dict) -> str:
    """The caller's X-Request-ID when it is a plausible id, otherwise a new one."""
    for key, value in scope.get("headers", ()):
        if key == b"x-request-id":
            incoming = value.decode("latin-1")
            if REQUEST_ID.fullmatch(incoming):
                return incoming
            break
    # 128 random bits in hex, as uuid4().hex less its version bits and its object (1.6 -> 0.4 µs)
    return os.urandom(16).hex()


class EdgeMiddleware:
    """Request id, default response headers and the HTTP metrics for every HTTP answer of
    ``app``; keeps the connection open after an unexpected error it already answered.

    The metrics (``observability.count_request``: the status the client got, by route
    template) are counted here, outside the error handling, so that the 500 problem of an
    unexpected error and a CORS preflight are counted as they were answered; ``count=False``
    for the ops listener, whose probes and scrapes are not the API's traffic.

    Starlette answers an unhandled exception with the 500 problem and then re-raises it, and
    uvicorn closes the connection when an exception reaches it after the response. The
    gateway's pool would then hand that dead connection to the next request, someone else's
    (it retries once, but the close is needless). The error is logged by the problem handler.
    An exception before the answer is complete still reaches the server.
    """

    def __init__(self, app: Any, *, defaults: tuple[tuple[bytes, bytes], ...], count: bool = True) -> None:
        self.app = app
        self.defaults = defaults
        self.count = count

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        rid = request_id_of(scope)
        token = request_id_var.set(rid)
        rid_bytes = rid.encode("latin-1")
        defaults = self.defaults
        status = 500  # what is counted when nothing was sent
        answered = False

        async def send_with_headers(message: dict) -> None:
            nonlocal status, answered
            kind = message["type"]
            if kind == "http.response.start":
                status = message["status"]
                message["headers"] = with_defaults(message.get("headers", ()), defaults, rid_bytes)
            elif kind == "http.response.body" and not message.get("more_body", False):
                answered = True
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except Exception:
            if not answered:
                raise
        finally:
            request_id_var.reset(token)
            if self.count:
                count_request(scope, status, time.perf_counter() - started)
