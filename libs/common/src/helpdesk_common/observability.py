"""JSON logs carrying the request id, Prometheus HTTP metrics by route template, body limits.

The middlewares are plain ASGI (not BaseHTTPMiddleware) because they sit on every request of
the intake hot path and BaseHTTPMiddleware costs a task and a stream per request.
"""

from __future__ import annotations

import contextvars
import logging
import re
import sys
import time
from typing import Any

import orjson
from prometheus_client import Counter, Histogram

from . import tracing

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "request_id", default=None
)

HTTP_REQUESTS = Counter(
    "http_requests_total", "HTTP requests handled", ["method", "route", "status"]
)
HTTP_DURATION = Histogram(
    "http_request_duration_seconds",
    "HTTP request duration by route template",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)

_RESERVED = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line; extra= fields are kept, secrets are the caller's job."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        rid = request_id_var.get()
        if rid:
            doc["request_id"] = rid
        ids = tracing.log_ids()
        if ids is not None:
            doc["trace_id"], doc["span_id"] = ids
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_"):
                doc[key] = value
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(doc, default=str).decode()


def configure_logging(service: str, level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("aiokafka", "kafka"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # uvicorn's access log would double every request line; our metrics cover it.
    logging.getLogger("uvicorn.access").disabled = True


def _header(scope: dict, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return None


#: the methods counted under their own name; any other (a client may send any token) is OTHER,
#: so that callers cannot grow the metrics' label sets
COUNTED_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT",
                             "QUERY"})

class Children:
    """A labelled metric's children by their label values, each looked up once: ``labels()``
    checks and joins its arguments and takes the metric's lock on every call (about 0.9 µs,
    round 19), on paths that run per request or per event. At most ``limit`` children are kept
    (the label sets here are bounded: methods, route templates, statuses, consumers, event types,
    topics); past it, ``labels()`` answers as before. A child removed from its metric
    (``remove``, ``clear``: nothing here calls them) would no longer be exported while this kept
    counting on it."""

    __slots__ = ("_metric", "_children", "_limit")

    def __init__(self, metric: Any, *, limit: int = 10_000) -> None:
        self._metric = metric
        self._children: dict[tuple[str, ...], Any] = {}
        self._limit = limit

    def __call__(self, *values: str) -> Any:
        child = self._children.get(values)
        if child is None:
            child = self._metric.labels(*values)
            if len(self._children) < self._limit:
                self._children[values] = child
        return child


_REQUESTS_BY = Children(HTTP_REQUESTS)
_DURATION_BY = Children(HTTP_DURATION)


def count_request(scope: dict, status: int, seconds: float) -> None:
    """One answered request in the HTTP metrics, labelled by its route's template (the route
    Starlette's router put in the scope; ``<unmatched>`` when none matched)."""
    template = getattr(scope.get("route"), "path", None) or "<unmatched>"
    method = scope["method"]
    if method not in COUNTED_METHODS:
        method = "OTHER"
    _REQUESTS_BY(method, template, str(status)).inc()
    _DURATION_BY(method, template).observe(seconds)


class BodyTooLarge(Exception):
    pass


#: the default of ``MAX_INTAKE_BODY_BYTES`` (settings.py), used when the app has no settings
DEFAULT_MAX_INTAKE_BODY_BYTES = 52_428_800


#: ``POST /v1/kb/articles/{id}/attachments``: the request body is the file
_KB_UPLOAD = re.compile(r"/v1/kb/articles/[0-9A-Fa-f-]{32,36}/attachments/?")


def is_intake_request(scope: dict) -> bool:
    """Requests that carry a channel's native payload: raw e-mail with attachments, web forms.

    Everything under ``/v1/channels/``, multipart POSTs that create a ticket or an import
    (customer-svc's spreadsheets) and the file uploads of knowledge-base articles (kb-svc caps
    each file at the ticket attachment size itself); every other request keeps
    ``MAX_BODY_BYTES``, so the large limit cannot be used to push big JSON bodies through
    ordinary endpoints.
    """
    path: str = scope.get("path", "")
    if path.startswith("/v1/channels/"):
        return True
    if scope.get("method") == "POST" and _KB_UPLOAD.fullmatch(path):
        return True
    if scope.get("method") == "POST" and path in ("/v1/tickets", "/v1/tickets/", "/v1/imports", "/v1/imports/"):
        ctype = _header(scope, b"content-type") or ""
        return ctype.lower().startswith("multipart/form-data")
    return False


def body_framing(scope: dict) -> tuple[str | None, bool]:
    """The request's ``Content-Length`` (as sent) and whether it has a ``Transfer-Encoding``, in
    one pass over its headers."""
    declared, encoded = None, False
    for key, value in scope.get("headers", ()):
        if key == b"content-length":
            if declared is None:
                declared = value.decode("latin-1")
        elif key == b"transfer-encoding":
            encoded = True
    return declared, encoded


class RequestChecksMiddleware:
    """What every request of a service is refused for before it is routed, in one layer:

    1. a body above the limit: 413, before any handler buffers it. The limit is ``max_bytes``
       except for intake requests (``is_intake_request``), which get ``intake_max_bytes``; when
       that is not given, the app's settings' ``max_intake_body_bytes`` (set by ``build_app``'s
       lifespan), so every service applies the same shared setting;
    2. U+0000 in the path or the query string: 422 (PostgreSQL text refuses NUL, so a
       ``?tag=%00`` that reached a query was a 500 in every service whose parameter lacked its
       own check). One byte scan of the raw query string (``%00`` is the only way a NUL gets
       there: servers refuse raw NUL bytes in the request line, and ``%2500`` does not contain
       ``%00``) and one of the decoded path; only a refused request pays for parsing, to name
       the parameters. Lone surrogates cannot arrive this way: percent-encoded UTF-16 halves
       decode to U+FFFD;
    3. a method that a concrete path shadowed by a templated route does not serve: 405 with the
       concrete path's ``Allow`` (``app.shadowed_concrete_paths``).

    They were three layers, each a coroutine call (and the body limit two wrapped callables) on
    every request. A body with a ``Content-Length`` and no ``Transfer-Encoding`` is framed by
    the server to exactly that length (httptools and h11 both), so only a request without one
    (chunked) has its ``receive`` counted: the limit's check of a declared length covers the rest.
    """

    def __init__(self, app: Any, *, max_bytes: int, intake_max_bytes: int | None = None,
                 shadowed: dict[str, frozenset[str]] | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.intake_max_bytes = intake_max_bytes
        self.shadowed = shadowed if shadowed is not None else {}

    def _limit(self, scope: dict) -> int:
        if not is_intake_request(scope):
            return self.max_bytes
        if self.intake_max_bytes is not None:
            return self.intake_max_bytes
        app = scope.get("app")
        settings = getattr(getattr(app, "state", None), "settings", None)
        return int(getattr(settings, "max_intake_body_bytes", DEFAULT_MAX_INTAKE_BODY_BYTES))

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        max_bytes = self._limit(scope)
        declared, encoded = body_framing(scope)
        if declared is not None and not (declared.isascii() and declared.isdigit() and len(declared) <= 18
                                         and int(declared) <= max_bytes):
            await send_problem(send, 413, "payload-too-large", "Payload too large",
                               f"The request body exceeds {max_bytes} bytes.")
            return
        if b"%00" in scope.get("query_string", b"") or "\x00" in scope.get("path", ""):
            await send_problem(send, 422, "validation-error", "Validation failed",
                               "NUL characters are not allowed in URLs.", errors=nul_url_errors(scope))
            return
        if self.shadowed:
            methods = self.shadowed.get(scope.get("path", ""))
            if methods is not None and scope["method"] not in methods:
                await send_problem(send, 405, "method-not-allowed", "Method not allowed", "Method Not Allowed",
                                   headers=((b"allow", ", ".join(sorted(methods)).encode("latin-1")),))
                return
        if declared is not None and not encoded:
            await self.app(scope, receive, send)
            return
        received = 0
        started = False

        async def limited_receive() -> dict:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_bytes:
                    raise BodyTooLarge()
            return message

        async def tracking_send(message: dict) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await send_problem(send, 413, "payload-too-large", "Payload too large",
                                   f"The request body exceeds {max_bytes} bytes.")


def nul_url_errors(scope: dict) -> list[dict[str, str]]:
    """One error per query parameter (``query.<name>``, as FastAPI names them) or for the path."""
    from urllib.parse import parse_qsl

    errors: list[dict[str, str]] = []
    if "\x00" in scope.get("path", ""):
        errors.append({"field": "path", "message": "NUL characters are not allowed", "code": "nul_character"})
    seen: set[str] = set()
    query = scope.get("query_string", b"").decode("latin-1")
    for name, value in parse_qsl(query, keep_blank_values=True):
        if ("\x00" in name or "\x00" in value) and name not in seen:
            seen.add(name)
            errors.append({"field": "query." + name.replace("\x00", "\\x00"),
                           "message": "NUL characters are not allowed", "code": "nul_character"})
    return errors


PROBLEM_BASE = "https://helpdesk.dev/problems/"


async def send_problem(send: Any, status: int, kind: str, title: str, detail: str, *,
                       headers: tuple[tuple[bytes, bytes], ...] = (), **extensions: Any) -> None:
    """A problem document straight from an ASGI middleware (no app, no exception handlers);
    ``headers``: more raw header pairs of the answer (a 405's ``allow``)."""
    doc: dict[str, Any] = {"type": PROBLEM_BASE + kind, "title": title, "status": status, "detail": detail}
    rid = request_id_var.get()
    if rid:
        doc["request_id"] = rid
    doc.update(extensions)
    body = orjson.dumps(doc)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/problem+json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
