"""A JSON-body route that calls its endpoint without FastAPI's per-request machinery when the
request is an ordinary one, and hands every other request to FastAPI unchanged.

FastAPI answers a request by reading the body, building a ``Request``, solving the
endpoint's dependencies (each parameter asked, on every request, where it comes from), opening
two exit stacks and wrapping the endpoint's exceptions. On ticket-svc's ``POST /v1/tickets``
that machinery cost about as much as the body's parsing and validation themselves (round 19's
profile: ``solve_dependencies`` a fifth of the request's CPU). ``JsonBodyRoute`` takes the
shortest way when everything about the request is plain — a JSON body (``application/json``),
no optional header the endpoint reads, a body that parses and validates, a caller the
principal dependency accepts — and calls the endpoint with the same values FastAPI would have
passed. Anything else (a malformed or invalid body, a header parameter present, another content
type, an endpoint of another shape) goes to FastAPI's own handling with the body replayed, so
every error answer is FastAPI's, byte for byte.

The values are FastAPI's own: the body is parsed with ``json.loads`` as Starlette's
``Request.json`` does (not orjson, which reads integers beyond 64 bits as floats), validated with
the route's body field (``from_attributes`` included), and the principal comes from the same
dependency function, whose Problem, raised from here, is answered by the app's problem handlers
exactly as when FastAPI raised it.

What the endpoint may declare for the short way: a ``Request`` parameter, one JSON body
parameter (not embedded, not a form), a ``Response`` it returns itself, optional header parameters (the short way only when none of them is sent), and
dependencies that are async functions of the request alone (``current_principal``), without
sub-dependencies. A route of any other shape always takes FastAPI's way.
"""

from __future__ import annotations

import copy
import inspect
import json
from typing import Any

from fastapi import params
from fastapi.routing import APIRoute, _get_scope_effective_route_context
from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response

#: content types the short way parses (FastAPI parses these, other ``application/json`` spellings and
#: ``application/*+json``)
JSON_TYPES = frozenset({b"application/json", b"application/json; charset=utf-8", b"application/json;charset=utf-8"})


class _Plan:
    """What the short way needs of a route, worked out once: None when it cannot take it."""

    __slots__ = ("request_name", "body_name", "body_field", "header_names", "header_defaults", "dependencies")

    def __init__(self, request_name: str | None, body_name: str, body_field: Any, header_names: frozenset[bytes],
                 header_defaults: tuple[tuple[str, Any], ...], dependencies: tuple[tuple[str, Any, str], ...]) -> None:
        self.request_name = request_name
        self.body_name = body_name
        self.body_field = body_field
        self.header_names = header_names
        self.header_defaults = header_defaults
        self.dependencies = dependencies


def plan_of(route: Any) -> _Plan | None:
    """The short way's plan for ``route`` (an ``APIRoute``, or the effective route FastAPI made
    of it when its router was included: with the include's dependencies), or None when its
    endpoint has another shape."""
    dependant = route.dependant
    if (dependant is None or len(dependant.body_params) != 1 or route.body_field is None or route._embed_body_fields
            or isinstance(route.body_field.field_info, params.Form) or route.max_body_size is not None
            or dependant.path_params or dependant.query_params or dependant.cookie_params
            or dependant.websocket_param_name or dependant.http_connection_param_name
            or dependant.response_param_name or dependant.background_tasks_param_name
            or dependant.security_scopes_param_name):
        return None
    for field in dependant.header_params:
        info = field.field_info
        if (info.is_required() or not isinstance(field.alias, str) or info.validation_alias is not None
                and not isinstance(info.validation_alias, str) or isinstance(info.annotation, type)
                and issubclass(info.annotation, BaseModel)):
            return None
    dependencies = []
    for sub in dependant.dependencies:
        call = sub.call
        if (sub.name is None or call is None or not inspect.iscoroutinefunction(call) or sub.request_param_name is None
                or sub.dependencies or sub.body_params or sub.path_params or sub.query_params or sub.header_params
                or sub.cookie_params or sub.security_scopes_param_name or sub.response_param_name
                or sub.background_tasks_param_name or sub.http_connection_param_name):
            return None
        dependencies.append((sub.name, call, sub.request_param_name))
    # every name a header parameter answers to, as sent and with FastAPI's underscore conversion:
    # one too many only sends more requests FastAPI's way
    names = {name for field in dependant.header_params
             for name in (field.alias, field.name, field.field_info.validation_alias) if isinstance(name, str)}
    return _Plan(
        request_name=dependant.request_param_name,
        body_name=dependant.body_params[0].name,
        body_field=route.body_field,
        header_names=frozenset(form.encode("latin-1") for name in names
                               for form in (name.lower(), name.lower().replace("_", "-"))),
        # what FastAPI passes for a header not sent: a copy of the default (a factory's included)
        header_defaults=tuple((field.name, field) for field in dependant.header_params),
        dependencies=tuple(dependencies),
    )


class JsonBodyRoute(APIRoute):
    """``APIRoute`` with the short way described in the module's docstring."""

    #: route (this one, or the effective route of an include of it) → its plan; strong
    #: references to the routes keep their ids from being reused
    _plans: dict[int, tuple[Any, _Plan | None]]

    def _plan_for(self, scope: Any) -> tuple[Any, _Plan | None]:
        """The route FastAPI would answer with (its include's, when the router was included:
        dependencies, methods and overrides as included) and its plan."""
        context = _get_scope_effective_route_context(scope)
        target = context if context is not None and context.original_route is self else self
        plans = self.__dict__.setdefault("_plans", {})
        found = plans.get(id(target))
        if found is None or found[0] is not target:
            found = plans[id(target)] = (target, plan_of(target))
        return target, found[1]

    async def handle(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await super().handle(scope, receive, send)
            return
        target, plan = self._plan_for(scope)
        provider = target.dependency_overrides_provider
        if plan is None or scope["method"] not in target.methods or (
                provider is not None and getattr(provider, "dependency_overrides", None)):
            await super().handle(scope, receive, send)
            return
        content_type = None
        for name, value in scope["headers"]:
            if name == b"content-type":
                if content_type is None:
                    content_type = value
            elif name in plan.header_names:
                content_type = b""  # a header parameter sent: FastAPI's way
                break
        if content_type is None or content_type.lower() not in JSON_TYPES:
            await super().handle(scope, receive, send)
            return
        received: list[Any] = []
        chunks: list[bytes] = []
        try:
            while True:
                message = await receive()
                received.append(message)
                if message["type"] != "http.request":
                    break
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    break
        except Exception as exc:  # noqa: BLE001 - e.g. the body limit's: FastAPI's way answers it
            received.append(exc)
        body = b"".join(chunks)
        last = received[-1]
        values = self._values(body, plan) if isinstance(last, dict) and last["type"] == "http.request" else None
        if values is None:
            await super().handle(scope, _replaying(received, receive), send)
            return
        request = Request(scope, receive)
        request._body = body  # as Request.body() would have kept it, for an endpoint that reads it
        for name, call, request_name in plan.dependencies:
            values[name] = await call(**{request_name: request})
        for name, field in plan.header_defaults:
            values[name] = copy.deepcopy(field.default)
        if plan.request_name is not None:
            values[plan.request_name] = request
        response = await self.endpoint(**values)
        if not isinstance(response, Response):  # FastAPI would serialise it: a route of another kind
            raise TypeError(f"{self.name}: a JsonBodyRoute's endpoint returns a Response")
        await response(scope, receive, send)

    @staticmethod
    def _values(body: bytes, plan: _Plan) -> dict[str, Any] | None:
        """The endpoint's body argument from ``body`` as FastAPI would make it, or None when
        FastAPI would answer with an error (its way then answers it)."""
        if not body:
            return None
        try:
            data = json.loads(body)
        except Exception:  # noqa: BLE001 - FastAPI's way reports it exactly (422 or 400)
            return None
        value, errors = plan.body_field.validate(data, {}, loc=("body",))
        if errors:
            return None
        return {plan.body_name: value}


def _replaying(received: list[Any], receive: Any) -> Any:
    """A ``receive`` that gives ``received`` again (raising an exception where reading raised
    one), then the server's."""
    pending = list(received)

    async def replay() -> dict:
        if pending:
            item = pending.pop(0)
            if isinstance(item, BaseException):
                raise item
            return item
        return await receive()

    return replay
