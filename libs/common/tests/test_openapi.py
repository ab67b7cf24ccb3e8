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
