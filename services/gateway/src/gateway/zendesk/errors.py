"""Zendesk's error envelope on ``/api/v2``: ``{"error", "description", "details"}``.

Problems raised anywhere below a route of this surface (authentication and rate limits in its
dependencies, validation, the services' own answers relayed by ``upstream.call``) come out in
this shape with their status and headers (``Retry-After`` on a 429, as Zendesk sends it); the
rest of the API keeps RFC 9457 problems."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute

from helpdesk_common.observability import request_id_var
from helpdesk_common.problems import Problem, field_errors
from helpdesk_common.responses import JSONBytesResponse

#: Zendesk's ``error`` values by status, and the description it gives when there is no detail
ERRORS: dict[int, tuple[str, str]] = {
    400: ("InvalidValue", "Invalid request"),
    401: ("Couldn't authenticate you", "Couldn't authenticate you"),
    403: ("Forbidden", "You do not have access to this resource"),
    404: ("RecordNotFound", "Not found"),
    405: ("InvalidEndpoint", "Not found"),
    409: ("DuplicateValue", "Conflict with the current state of the record"),
    412: ("RecordInvalid", "The record changed since it was read"),
    413: ("RequestTooLarge", "Request body too large"),
    415: ("UnsupportedMediaType", "Unsupported media type"),
    422: ("RecordInvalid", "Record validation errors"),
    428: ("RecordInvalid", "A precondition header is required"),
    429: ("TooManyRequests", "Rate limit exceeded"),
    502: ("ServiceUnavailable", "A service behind the API is unavailable"),
    503: ("ServiceUnavailable", "Busy; retry in a moment"),
    504: ("ServiceUnavailable", "A service behind the API did not answer in time"),
}


def details_of(errors: list[dict[str, Any]] | None) -> dict[str, list[dict[str, str]]]:
    """Field errors as Zendesk groups them: by field name, each ``{"description", "error"}``.
    The location prefix (``body.``, ``query.``) is dropped: Zendesk names the field alone."""
    details: dict[str, list[dict[str, str]]] = {}
    for error in errors or []:
        path = str(error.get("field", ""))
        field = path.split(".", 1)[1] if "." in path else path
        details.setdefault(field or "base", []).append(
            {"description": str(error.get("message", "")), "error": str(error.get("code", "invalid"))})
    return details


def error_response(status: int, description: str | None, errors: list[dict[str, Any]] | None = None,
                   headers: dict[str, str] | None = None, *, error: str | None = None) -> JSONBytesResponse:
    known, default = ERRORS.get(status, ("InternalError" if status >= 500 else "InvalidValue", "Error"))
    body: dict[str, Any] = {"error": error or known, "description": description or default}
    if errors:
        body["details"] = details_of(errors)
    if rid := request_id_var.get():  # beside Zendesk's keys (clients ignore extra ones): the line in our logs
        body["request_id"] = rid
    return JSONBytesResponse(body, status_code=status, headers=headers)


def not_found(what: str = "Not found") -> Problem:
    return Problem(404, "not-found", "Not found", what)


class ZendeskRoute(APIRoute):
    """Answers with Zendesk's envelope whatever went wrong inside the route (its dependencies
    included); unexpected exceptions still reach the app's 500 handler."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except Problem as exc:
                return error_response(exc.status, exc.detail or exc.title, exc.extensions.get("errors"), exc.headers)
            except RequestValidationError as exc:
                errors = field_errors(exc)
                if any(e["code"] == "json_invalid" for e in errors):
                    return error_response(400, "The request body is not valid JSON.")
                return error_response(422, "Record validation errors", errors)

        return route
