"""RFC 9457 problem details for every error a service returns.

Each error kind has a stable ``type`` URI; validation errors list the offending fields.
Unexpected exceptions become a bare 500 problem with the request id, never a stack trace.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from .responses import JSONBytesResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

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


async def _on_problem(_: Request, exc: Problem) -> JSONBytesResponse:
    return problem_response(exc.status, exc.kind, exc.title, exc.detail, headers=exc.headers, **exc.extensions)


async def _on_http(_: Request, exc: StarletteHTTPException) -> JSONBytesResponse:
    kind = _KIND_BY_STATUS.get(exc.status_code, "error")
    title = kind.replace("-", " ").capitalize()
    detail = exc.detail if isinstance(exc.detail, str) else None
    return problem_response(exc.status_code, kind, title, detail, headers=getattr(exc, "headers", None))


async def _on_validation(_: Request, exc: RequestValidationError) -> JSONBytesResponse:
    errors = _field_errors(exc)
    if any(e["code"] == "json_invalid" for e in errors):
        return problem_response(400, "malformed-json", "Malformed JSON", "The request body is not valid JSON.")
    return problem_response(
        422, "validation-error", "Validation failed", "One or more fields are invalid.", errors=errors
    )


async def _on_unexpected(_: Request, exc: Exception) -> JSONBytesResponse:
    log.exception("unhandled error", exc_info=exc)
    return problem_response(500, "internal-error", "Internal error", "An unexpected error occurred.")


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(Problem, _on_problem)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _on_http)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _on_validation)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _on_unexpected)
