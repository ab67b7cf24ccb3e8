"""RFC 9457 problem details for every error a service returns.

Each error kind has a stable ``type`` URI; validation errors list the offending fields.
Unexpected exceptions become a bare 500 problem with the request id, never a stack trace.
"""

from __future__ import annotations

import logging
from typing import Any

import asyncpg
import orjson
from asyncpg.exceptions import _base as asyncpg_base
from fastapi import FastAPI, Request, routing
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import DBAPIError
from .responses import JSONBytesResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from . import db_errors
from .observability import PROBLEM_BASE, request_id_var

log = logging.getLogger(__name__)

PROBLEM_CONTENT_TYPE = "application/problem+json"

_KIND_BY_STATUS = {
    400: "bad-request",
    401: "unauthorized",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    406: "not-acceptable",
    409: "conflict",
    412: "precondition-failed",
    413: "payload-too-large",
    415: "unsupported-media-type",
    422: "validation-error",
    428: "precondition-required",
    429: "rate-limited",
    502: "bad-gateway",
    503: "service-unavailable",
    504: "gateway-timeout",
}


class Problem(Exception):
    """Raise from service code to answer with a specific problem."""

    def __init__(
        self,
        status: int,
        kind: str,
        title: str,
        detail: str | None = None,
        *,
        headers: dict[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail or title)
        self.status = status
        self.kind = kind
        self.title = title
        self.detail = detail
        self.headers = headers
        self.extensions = extensions


def problem_response(
    status: int,
    kind: str,
    title: str,
    detail: str | None = None,
    *,
    headers: dict[str, str] | None = None,
    **extensions: Any,
) -> JSONBytesResponse:
    body: dict[str, Any] = {"type": PROBLEM_BASE + kind, "title": title, "status": status}
    if detail:
        body["detail"] = detail
    rid = request_id_var.get()
    if rid:
        body["request_id"] = rid
    body.update(extensions)
    return JSONBytesResponse(body, status_code=status, headers=headers, media_type=PROBLEM_CONTENT_TYPE)


def _field_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    errors = []
    for err in exc.errors():
        loc = [str(part) for part in err.get("loc", ())]
        errors.append({"field": ".".join(loc), "message": err.get("msg", ""), "code": err.get("type", "")})
    return errors


def field_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    """A validation error's ``errors`` as every 422 of the API lists them (``field``, ``message``,
    ``code``); for surfaces with an envelope of their own (the gateway's Zendesk API)."""
    return _field_errors(exc)


async def _on_problem(_: Request, exc: Problem) -> JSONBytesResponse:
    return problem_response(exc.status, exc.kind, exc.title, exc.detail, headers=exc.headers, **exc.extensions)


def allowed_methods(request: Request) -> str:
    """Every method some route of the app takes at this path (RFC 9110: a 405 lists them all).
    Starlette names only the first route whose path matched, but a path is often served by
    several routes, one per method (``GET`` and ``POST /v1/tickets``)."""
    path = request.scope.get("path", "")
    concrete = getattr(request.app.state, "shadowed_concrete_paths", {}).get(path)
    if concrete is not None:  # a concrete path's methods, not those of templated routes it shadows
        return ", ".join(sorted(concrete))
    methods: set[str] = set()
    for route in routing.iter_route_contexts(request.app.routes):
        regex = getattr(route, "path_regex", None)
        if regex is not None and route.methods and regex.match(path):
            methods |= set(route.methods)
    return ", ".join(sorted(methods))


async def _on_http(request: Request, exc: StarletteHTTPException) -> JSONBytesResponse:
    kind = _KIND_BY_STATUS.get(exc.status_code, "error")
    title = kind.replace("-", " ").capitalize()
    detail = exc.detail if isinstance(exc.detail, str) else None
    headers = getattr(exc, "headers", None)
    if exc.status_code == 405:
        headers = {**(headers or {}), "Allow": allowed_methods(request)}
    return problem_response(exc.status_code, kind, title, detail, headers=headers)


async def _on_validation(_: Request, exc: RequestValidationError) -> JSONBytesResponse:
    errors = _field_errors(exc)
    if any(e["code"] == "json_invalid" for e in errors):
        return problem_response(400, "malformed-json", "Malformed JSON", "The request body is not valid JSON.")
    return problem_response(
        422, "validation-error", "Validation failed", "One or more fields are invalid.", errors=errors
    )


async def _on_unexpected(request: Request, exc: Exception) -> JSONBytesResponse:
    if db_errors.unavailable(exc):
        # the database is restarting or unreachable (found by the fault suite: PostgreSQL stopped
        # under load answered every request with a 500): a 503 the client may retry, no stack
        route = getattr(request.scope.get("route"), "path", None) or request.url.path
        log.warning("database unavailable", extra={"route": route, "method": request.method,
                                                   "error_class": type(exc).__name__})
        return problem_response(503, "service-unavailable", "Service unavailable",
                                "The service's database is unavailable; retry shortly.", headers={"Retry-After": "1"})
    log.exception("unhandled error", exc_info=exc)
    return problem_response(500, "internal-error", "Internal error", "An unexpected error occurred.")


# --- the safety net: errors that bad input causes below the schema ------------------------------
#
# Validation at the schema (helpdesk_common.validation, each service's models) is the guard;
# these handlers only keep a missing check from answering 500. Each hit is logged as a warning
# with the route and SQLSTATE, because it names a validation someone still has to add. The
# answer never carries the database's message (it may quote SQL, schema names or other rows).

#: SQLSTATEs caused by the values a request sent: class 22 (data exception: numeric value out of
#: range, invalid text representation, character not in repertoire, untranslatable character,
#: datetime overflow...) and the integrity violations a client can provoke
_CONFLICT_STATES = frozenset({"23505", "23P01"})  # unique, exclusion: the value is taken
_INVALID_STATES = frozenset({"23503", "23514"})  # foreign key (no such thing), check constraint


def _asyncpg_error(exc: BaseException) -> BaseException | None:
    """The asyncpg exception behind ``exc``: itself, or the one SQLAlchemy wrapped (``.orig``,
    whose ``__cause__`` is asyncpg's own)."""
    seen = 0
    current: BaseException | None = exc
    while current is not None and seen < 5:
        if isinstance(current, (asyncpg.PostgresError, asyncpg_base.DataError)):
            return current
        current = getattr(current, "orig", None) or current.__cause__
        seen += 1
    return None


def input_error_status(exc: BaseException) -> int | None:
    """409 / 422 when ``exc`` is the database (or its driver) refusing a value the request
    sent; None for anything else, which stays a 500."""
    if isinstance(exc, UnicodeEncodeError):
        return 422 if exc.reason == "surrogates not allowed" else None
    if isinstance(exc, orjson.JSONEncodeError):
        return 422 if "surrogates not allowed" in str(exc) else None
    error = _asyncpg_error(exc)
    if error is None:
        return None
    if isinstance(error, asyncpg_base.DataError):  # the driver refused a query argument (int out of range)
        return 422
    state = getattr(error, "sqlstate", None) or ""
    if state in _CONFLICT_STATES:
        return 409
    if state.startswith("22") or state in _INVALID_STATES:
        return 422
    return None


async def _on_database_error(request: Request, exc: Exception) -> JSONBytesResponse:
    status = input_error_status(exc)
    if status is None:
        raise exc  # a real failure: the 500 handler logs it with its stack
    route = getattr(request.scope.get("route"), "path", None) or request.url.path
    error = _asyncpg_error(exc) or exc
    log.warning("input refused by the database: a validation is missing", extra={
        "route": route, "method": request.method, "error_class": type(error).__name__,
        "sqlstate": getattr(error, "sqlstate", None), "error_message": str(error)[:300],
    })
    if status == 409:
        return problem_response(409, "conflict", "Conflict", "A value that must be unique is already taken.")
    return problem_response(422, "validation-error", "Validation failed",
                            "A value is out of range or is not text the database can store.")


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(Problem, _on_problem)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _on_http)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _on_validation)  # type: ignore[arg-type]
    for database_error in (asyncpg.PostgresError, asyncpg_base.DataError, DBAPIError, UnicodeEncodeError,
                           orjson.JSONEncodeError):
        app.add_exception_handler(database_error, _on_database_error)
    app.add_exception_handler(Exception, _on_unexpected)
