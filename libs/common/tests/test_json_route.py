"""``JsonBodyRoute`` answers exactly as FastAPI does: one endpoint served twice, once on an
ordinary route and once on a ``JsonBodyRoute``, must give the same answer to every request,
valid or not, and the short way must actually be taken for the plain ones (in-process ASGI:
pure request handling, no database)."""

from __future__ import annotations

import json
from typing import Annotated, Any

import httpx
import pytest
from fastapi import APIRouter, Depends, Header, Request
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import Field

from helpdesk_common.app import ServiceParts, build_app
from helpdesk_common.json_route import JsonBodyRoute, plan_of
from helpdesk_common.problems import Problem
from helpdesk_common.responses import JSONBytesResponse
from helpdesk_common.settings import ServiceSettings
from helpdesk_common.validation import StrictModel


class Item(StrictModel):
    subject: Annotated[str, Field(min_length=1, max_length=50)]
    count: int = 0
    tags: list[str] = []
    extra: dict[str, Any] = {}


async def caller(request: Request) -> str:
    token = request.headers.get("x-caller")
    if not token:
        raise Problem(401, "unauthorized", "Unauthorized", "Missing identity.")
    if token == "visitor":
        raise Problem(403, "forbidden", "Forbidden", "This operation is not allowed for the caller.")
    return token


async def create(request: Request, payload: Item, who: Annotated[str, Depends(caller)],
                 key: Annotated[str | None, Header(alias="Idempotency-Key", min_length=1, max_length=8)] = None,
                 ) -> JSONBytesResponse:
    return JSONBytesResponse({"who": who, "key": key, "item": payload.model_dump(), "path": request.url.path},
                             status_code=201, headers={"Location": "/v1/items/1"})


SHORT_WAYS = []


class CountingRoute(JsonBodyRoute):
    def _values(self, body: bytes, plan: Any) -> dict[str, Any] | None:
        values = super()._values(body, plan)
        if values is not None:
            SHORT_WAYS.append(body)
        return values


def _app():  # type: ignore[no-untyped-def]
    router = APIRouter()
    router.add_api_route("/v1/plain", create, methods=["POST"], status_code=201)
    router.add_api_route("/v1/short", create, methods=["POST"], status_code=201, route_class_override=CountingRoute)
    return build_app(ServiceSettings(service_name="json-route-test"), ServiceParts(title="t", routers=[router]))


APP = _app()


async def _both(body: bytes, headers: dict[str, str]) -> tuple[tuple, tuple]:
    answers = []
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=APP), base_url="http://t") as client:
        for path in ("/v1/plain", "/v1/short"):
            r = await client.post(path, content=body, headers={**headers, "x-request-id": "same-id"})
            text = r.text.replace("/v1/short", "/v1/plain")
            answers.append((r.status_code, text, sorted(r.headers.items())))
    return answers[0], answers[1]


JSON = {"content-type": "application/json", "x-caller": "agent-7"}

CASES = [
    (b'{"subject": "printer", "count": 3, "tags": ["a"], "extra": {"n": 1}}', JSON, True),
    ('{"subject": "打印机坏了", "extra": {"big": 123456789012345678901234567890}}'.encode(), JSON, True),
    (b'{"subject": "x", "extra": {"neg": -9223372036854775809, "f": 1.5}}', JSON, True),
    (b'{"subject": "x"}', {**JSON, "content-type": "application/json; charset=utf-8"}, True),
    (b'{"subject": "x"}', {**JSON, "content-type": "Application/JSON"}, True),
    (b'{"subject": "x"}', {**JSON, "content-type": "application/vnd.api+json"}, False),
    (b'{"subject": "x"}', {**JSON, "content-type": "text/plain"}, False),
    (b'{"subject": "x"}', {"x-caller": "agent-7"}, False),
    (b'{"subject": "x"}', {**JSON, "Idempotency-Key": "k1"}, False),
    (b'{"subject": "x"}', {**JSON, "Idempotency-Key": "far-too-long-key"}, False),
    # the body is read the short way, then the dependency's Problem answers as FastAPI's did
    (b'{"subject": "x"}', {**JSON, "x-caller": ""}, True),
    (b'{"subject": "x"}', {**JSON, "x-caller": "visitor"}, True),
    (b'{"subject": ""}', JSON, False),
    (b'{"subject": "x", "unknown": 1}', JSON, False),
    (b'{"subject": "x\\u0000y"}', JSON, False),
    (b'{"subject": "\\ud800"}', JSON, False),
    (b'{"subject": "x", "extra": {"v": NaN}}', JSON, False),
    (b'{"subject": "x", "extra": {"v": 1e400}}', JSON, False),
    (b'{"subject": "x",}', JSON, False),
    (b'', JSON, False),
    (b'null', JSON, False),
    (b'[]', JSON, False),
    (b'"text"', JSON, False),
    (b'\xff\xfe{', JSON, False),
    # json.loads reads UTF-16 and a byte-order mark as Starlette's Request.json does
    ('{"subject": "x"}'.encode("utf-16"), JSON, True),
    (b'\xef\xbb\xbf{"subject": "x"}', JSON, True),
]


@pytest.mark.parametrize(("body", "headers", "short"), CASES)
async def test_every_answer_is_fastapis(body, headers, short):
    SHORT_WAYS.clear()
    plain, fast = await _both(body, headers)
    assert fast == plain
    assert bool(SHORT_WAYS) == short, (plain, SHORT_WAYS)


_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=10),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=8)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.fixed_dictionaries({}, optional={"subject": st.text(max_size=60), "count": _JSON_VALUES,
                                           "tags": _JSON_VALUES, "extra": _JSON_VALUES, "other": _JSON_VALUES}))
async def test_generated_bodies_get_fastapis_answers(document):
    plain, fast = await _both(json.dumps(document).encode(), JSON)
    assert fast == plain


def test_a_route_of_another_shape_always_takes_fastapis_way():
    router = APIRouter()

    async def with_query(request: Request, payload: Item, q: int = 0) -> JSONBytesResponse:
        return JSONBytesResponse({})

    def sync_caller(request: Request) -> str:
        return "x"

    async def with_sync_dependency(payload: Item, who: Annotated[str, Depends(sync_caller)]) -> JSONBytesResponse:
        return JSONBytesResponse({})

    async def with_required_header(payload: Item, h: Annotated[str, Header()]) -> JSONBytesResponse:
        return JSONBytesResponse({})

    async def two_bodies(a: Item, b: Item) -> JSONBytesResponse:
        return JSONBytesResponse({})

    for endpoint in (with_query, with_sync_dependency, with_required_header, two_bodies):
        router.add_api_route("/x", endpoint, methods=["POST"], route_class_override=JsonBodyRoute)
        assert plan_of(router.routes[-1]) is None, endpoint.__name__
    router.add_api_route("/y", create, methods=["POST"], route_class_override=JsonBodyRoute)
    assert plan_of(router.routes[-1]) is not None


async def _post(app, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        r = await client.post(path, content=body, headers=headers)
    return r.status_code, r.text


async def test_an_include_s_dependencies_and_the_app_s_overrides_apply_as_on_fastapi_s_way():
    """A router included with dependencies, and an app with dependency overrides: FastAPI keeps
    them on the include's effective route, which the short way reads too."""
    async def gate(request: Request) -> None:
        raise Problem(403, "forbidden", "Forbidden", "Closed.")

    router = APIRouter()
    router.add_api_route("/v1/short", create, methods=["POST"], status_code=201, route_class_override=CountingRoute)
    app = build_app(ServiceSettings(service_name="json-route-gated"), ServiceParts(title="t", routers=[]))
    app.include_router(router, dependencies=[Depends(gate)])
    body = b'{"subject": "x"}'
    assert (await _post(app, "/v1/short", body, JSON))[0] == 403

    open_app = build_app(ServiceSettings(service_name="json-route-overridden"), ServiceParts(title="t", routers=[router]))

    async def someone_else(request: Request) -> str:
        return "override"

    assert '"who":"agent-7"' in (await _post(open_app, "/v1/short", body, JSON))[1]
    open_app.dependency_overrides[caller] = someone_else
    assert '"who":"override"' in (await _post(open_app, "/v1/short", body, JSON))[1]


async def test_a_chunked_body_over_the_limit_is_answered_as_fastapi_answers_it():
    """The body limit's refusal while the body is read (a body without a Content-Length) is
    FastAPI's answer on both ways."""
    router = APIRouter()
    router.add_api_route("/v1/plain", create, methods=["POST"], status_code=201)
    router.add_api_route("/v1/short", create, methods=["POST"], status_code=201, route_class_override=CountingRoute)
    app = build_app(ServiceSettings(service_name="json-route-small", max_body_bytes=100),
                    ServiceParts(title="t", routers=[router]))

    async def chunks():  # type: ignore[no-untyped-def]
        yield b'{"subject": "'
        yield b"x" * 200
        yield b'"}'

    answers = []
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        for path in ("/v1/plain", "/v1/short"):
            r = await client.post(path, content=chunks(), headers={**JSON, "x-request-id": "same-id"})
            answers.append((r.status_code, r.text))
    assert answers[0] == answers[1] and answers[0][0] in (400, 413)


async def test_a_header_parameter_not_sent_gets_its_default_as_on_fastapi_s_way():
    async def with_factory(payload: Item, who: Annotated[str, Depends(caller)],
                           marks: Annotated[list[str], Header(default_factory=lambda: ["none"])],
                           ) -> JSONBytesResponse:
        return JSONBytesResponse({"marks": marks})

    router = APIRouter()
    router.add_api_route("/v1/plain", with_factory, methods=["POST"])
    router.add_api_route("/v1/short", with_factory, methods=["POST"], route_class_override=CountingRoute)
    app = build_app(ServiceSettings(service_name="json-route-factory"), ServiceParts(title="t", routers=[router]))
    SHORT_WAYS.clear()
    plain = await _post(app, "/v1/plain", b'{"subject": "x"}', JSON)
    fast = await _post(app, "/v1/short", b'{"subject": "x"}', JSON)
    assert plain == fast == (200, '{"marks":["none"]}') and SHORT_WAYS
