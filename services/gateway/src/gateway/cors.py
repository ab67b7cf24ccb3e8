"""CORS for the agents' single-page app: an allow-list of exact origins, none by default.

The SPA sends its token in ``Authorization`` (never a cookie), so no answer allows credentials;
an origin is an exact ``scheme://host[:port]`` (no wildcard, no path, no ``null``), checked when
the gateway starts so that a typo fails the deployment instead of opening the API. A preflight
the list refuses is answered with a problem document like every other 4xx.
"""

from __future__ import annotations

import re
from typing import Any

from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response

from helpdesk_common.problems import problem_response

#: what the SPA sends: its token, JSON bodies, the API's conditional and idempotent writes, the
#: stream's resume point, tracing, its own request id, and the knowledge base's anonymous voter id
ALLOW_HEADERS = ("Authorization", "Content-Type", "Accept-Language", "Idempotency-Key", "If-Match", "If-None-Match",
                 "Last-Event-ID", "traceparent", "tracestate", "X-Request-ID", "X-KB-Voter")
ALLOW_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
#: what the SPA reads from answers (beyond the CORS-safelisted ones): versions, where a created
#: thing is, when to retry, replays, downloads' names, and the request id to quote in a report
EXPOSE_HEADERS = ("ETag", "Location", "Retry-After", "Idempotent-Replayed", "Content-Disposition", "X-Request-ID")
#: browsers cache a preflight this long (Chromium caps it at 2 hours)
MAX_AGE_S = 600

_ORIGIN = re.compile(r"(https?)://([a-z0-9](?:[a-z0-9.-]*[a-z0-9])?|\[[0-9a-f:.]+\])(?::([0-9]{1,5}))?")


def parse_origins(spec: str) -> list[str]:
    """The origins of ``GATEWAY_CORS_ORIGINS`` (comma-separated), each exactly as a browser sends
    it in ``Origin``; ValueError naming the first one that is not such an origin."""
    origins: list[str] = []
    for item in spec.split(","):
        origin = item.strip()
        if not origin:
            continue
        match = _ORIGIN.fullmatch(origin)
        port = match and match.group(3)
        if not match or (port and not 0 < int(port) < 65536) or (
                port and int(port) == {"http": 80, "https": 443}[match.group(1)]):
            raise ValueError(f"GATEWAY_CORS_ORIGINS: {origin[:100]!r} is not an origin such as "
                             "https://desk.example.com or http://127.0.0.1:5173 (lower case, no path, "
                             "no wildcard, no default port)")
        if origin not in origins:
            origins.append(origin)
    return origins


class ProblemCORSMiddleware(CORSMiddleware):
    """Starlette's CORS with a problem document for a refused preflight (it answers plain text)."""

    def preflight_response(self, request_headers: Any) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code < 400:
            return response
        detail = bytes(response.body).decode("utf-8", "replace")
        return problem_response(response.status_code, "cors-refused", "CORS request refused", detail)


def install_cors(app: Any, spec: str) -> None:
    """Add the CORS layer when ``spec`` names origins (an empty list: no CORS answers at all)."""
    origins = parse_origins(spec)
    if origins:
        app.add_middleware(ProblemCORSMiddleware, allow_origins=origins, allow_credentials=False,
                           allow_methods=list(ALLOW_METHODS), allow_headers=list(ALLOW_HEADERS),
                           expose_headers=list(EXPOSE_HEADERS), max_age=MAX_AGE_S)
