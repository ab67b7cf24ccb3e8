"""The document every service publishes (helpdesk_common.openapi, installed by build_app): error
answers derived from the routes as problem+json, the NUL rule and defaults of request bodies,
exact integer bounds; and the 405's Allow naming every method of a path."""

from __future__ import annotations

import uuid
from typing import Annotated

import httpx
import pytest
from fastapi import APIRouter, Header, Query, Request
from pydantic import BaseModel, Field

from helpdesk_common.app import ServiceParts, build_app
from helpdesk_common.identity import CurrentPrincipal
from helpdesk_common.openapi import PROBLEM_CONTENT_TYPE, problem_responses
from helpdesk_common.settings import ServiceSettings
from helpdesk_common.validation import Int64, StrictModel, json_kind_check


class ThingIn(StrictModel):
    name: str
    colour: str = "blue"
    size: Int64 = 1


class ThingRead(BaseModel):
    id: uuid.UUID
    name: str
    colour: str = "blue"


def _app():  # type: ignore[no-untyped-def]
    router = APIRouter(prefix="/v1/things")

    @router.post("", status_code=201, response_model=ThingRead)
    async def create(body: ThingIn, principal: CurrentPrincipal) -> dict:
        return {}

    @router.get("", response_model=list[ThingRead])
    async def listing(principal: CurrentPrincipal, cursor: Annotated[str | None, Query(max_length=10)] = None) -> list:
        return []

    @router.get("/summary")
    async def summary(request: Request) -> dict:
        return {"things": 0}

    @router.patch("/{thing_id}", response_model=ThingRead)
    async def change(thing_id: uuid.UUID, body: ThingIn, principal: CurrentPrincipal,
                     if_match: Annotated[str | None, Header(alias="If-Match")] = None) -> dict:
        return {}

    @router.get("/public/count", responses=problem_responses(503, _503="busy"))
    async def count(request: Request) -> dict:
        return {}

    return build_app(ServiceSettings(service_name="openapi-test"), ServiceParts(title="t", routers=[router]))


@pytest.fixture(scope="module")
def doc():  # type: ignore[no-untyped-def]
    return _app().openapi()


def test_error_answers_are_derived_from_the_route(doc):
    paths = doc["paths"]
    assert sorted(paths["/v1/things"]["post"]["responses"]) == ["201", "400", "401", "403", "409", "413", "422"]
    assert sorted(paths["/v1/things"]["get"]["responses"]) == ["200", "400", "401", "403", "422"]  # cursor: 400
    assert sorted(paths["/v1/things/{thing_id}"]["patch"]["responses"]) == [
        "200", "400", "401", "403", "404", "409", "412", "413", "422"]
    public = paths["/v1/things/public/count"]["get"]
    assert sorted(public["responses"]) == ["200", "503"] and public["security"] == []
    assert "security" not in paths["/v1/things"]["post"]


def test_every_error_is_a_problem(doc):
    for item in doc["paths"].values():
        for operation in item.values():
            for code, answer in operation["responses"].items():
                if code >= "400":
                    assert answer["content"] == {PROBLEM_CONTENT_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    schemas = doc["components"]["schemas"]
    assert schemas["Problem"]["required"] == ["type", "title", "status"]
    assert "HTTPValidationError" not in schemas and "ValidationError" not in schemas
    public = doc["paths"]["/v1/things/public/count"]["get"]["responses"]["503"]
    assert public["description"] == "busy" and public["headers"]["Retry-After"]["required"] is True


def test_request_bodies_state_the_nul_rule_and_leave_defaults_to_words(doc):
    thing_in = doc["components"]["schemas"]["ThingIn"]
    assert thing_in["properties"]["name"]["pattern"] == "^[^\\u0000]*$"
    colour = thing_in["properties"]["colour"]
    assert "default" not in colour and colour["description"] == 'Default: `"blue"`.'
    assert thing_in["required"] == ["name"]
    # answers keep theirs: there a default says what is always sent
    assert doc["components"]["schemas"]["ThingRead"]["properties"]["colour"]["default"] == "blue"


def test_integer_bounds_stay_exact(doc):
    size = doc["components"]["schemas"]["ThingIn"]["properties"]["size"]
    assert size["maximum"] == 2**63 - 1 and size["minimum"] == -(2**63)
    assert isinstance(size["maximum"], int)


async def test_a_405_names_every_method_of_the_path():
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=_app()), base_url="http://t") as client:
        r = await client.delete("/v1/things")
    assert r.status_code == 405 and r.headers["content-type"] == PROBLEM_CONTENT_TYPE
    assert r.headers["allow"] == "GET, POST"  # two routes, one per method (Starlette named only the first)


@pytest.mark.parametrize("method", ["PATCH", "OPTIONS", "DELETE"])
async def test_a_concrete_path_is_matched_before_a_templated_one(method):
    """``/v1/things/summary`` is GET only, though ``PATCH /v1/things/{thing_id}`` matches it too
    (OpenAPI: concrete paths first): 405 naming GET, not the templated route's 422 about an id."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=_app()), base_url="http://t") as client:
        refused = await client.request(method, "/v1/things/summary")
        served = await client.get("/v1/things/summary")
        templated = await client.patch(f"/v1/things/{uuid.uuid4()}", json={"name": "x"})
    assert refused.status_code == 405 and refused.headers["content-type"] == PROBLEM_CONTENT_TYPE, refused.text
    assert refused.headers["allow"] == "GET"
    assert refused.json()["type"].endswith("/method-not-allowed")
    assert served.status_code == 200 and served.json() == {"things": 0}
    assert templated.status_code == 401  # the templated route still takes every other id


@pytest.mark.parametrize(("annotation", "ok", "refused"), [
    (int, [1, 1.0, -3], [True, "1", 1.5]),
    (bool, [True, False], [0, 1, "true"]),
    (float, [1, 1.5], [True, "1.5"]),
    (Int64 | None, [None, 2], [False]),
    (list[int], [[1, 2]], [[1, True]]),
    (dict[str, int], [{"a": 1}], [{"a": False}]),
])
def test_json_kinds_are_not_converted_across(annotation, ok, refused):
    check, _ = json_kind_check(annotation)
    assert all(check(value) for value in ok) and not any(check(value) for value in refused)


def test_a_field_of_no_convertible_kind_is_not_checked():
    assert json_kind_check(str) is None and json_kind_check(int | str) is None
    assert json_kind_check(Annotated[dict, Field()]) is None


LOCALE_LIKE = r"^[\t ]*(?:[A-Za-z]{2,3}(?:[-_][A-Za-z]{3}){0,3}|[A-Za-z]{4,8})(?:[-_][0-9]{3})?[\t ]*$"


@pytest.mark.parametrize(("pattern", "excludes"), [
    (LOCALE_LIKE, True),  # alternatives inside a group, anchored at both ends
    (r"^[A-Za-z0-9_-]{16,128}$", True),
    (r"^\d{4}-\d{2}$", True),
    (r"^[\s\w]+$", True),  # \s and \w do not match U+0000
    (r"^a|b$", False),  # a top-level alternative: "b" unanchored at the start, "a" at the end
    (r"^[A-Z]+", False),  # unanchored at the end: "A\u0000" matches
    (r"[A-Z]+$", False),
    (r"^.+$", False),  # a dot matches U+0000
    (r"^[^,]+$", False),  # so does a negated class
    (r"^[^\x00-\x1f]*$", True), (r"^[^\u0000]+$", True), (r"^[^\s\x00]+$", True),  # unless it lists U+0000
    (r"^[^\s]+$", False), (r"^[^\W]+$", False),  # (judged on the safe side: [^\W] does exclude it)
    (r"^\S+$", False), (r"^\W$", False), (r"^\D$", False), (r"^\p{L}+$", False),
    (r"^[\x00-\x1f]$", False), (r"^\u0000$", False), (r"^\0$", False), (r"^\u{0}$", False), (r"^\c@$", False),
    (r"^[a\]]+$", True),  # an escaped bracket inside a class
    (r"^abc\$", False),  # the final $ escaped: not an anchor
    (r"^(a$", False),  # unbalanced: not judged
])
def test_a_pattern_that_excludes_nul_is_recognised_on_the_safe_side(pattern, excludes):
    import re

    from helpdesk_common.openapi import pattern_excludes_nul

    assert pattern_excludes_nul(pattern) is excludes
    if excludes:  # and what it accepts, it accepts without U+0000 (checked with Python's re)
        compiled = re.compile(pattern)
        for text in ("en", "zh-Hant", "abcd", "2026-12", "a]b", "x" * 20, "  ", "1234", "中文", "a,b"):
            if compiled.search(text):
                for at in range(len(text) + 1):
                    assert not compiled.search(text[:at] + "\x00" + text[at:])


def test_the_nul_rule_is_not_repeated_beside_a_pattern_that_excludes_nul():
    """A string with its own pattern that cannot match U+0000 gets no ``allOf`` beside it (generators
    draw from one pattern and filter by the other: 54 s instead of 6 s for one operation); one
    that can still gets it."""
    from helpdesk_common.openapi import NO_NUL_PATTERN, _no_nul

    strict = {"type": "string", "pattern": r"^[a-z]{2}$"}
    loose = {"type": "string", "pattern": r"^.*\S.*$"}
    _no_nul(strict)
    _no_nul(loose)
    assert "allOf" not in strict
    assert loose["allOf"] == [{"pattern": NO_NUL_PATTERN}]
