"""One rule for query strings in every service (issue 9, "Also fix" 7): a query parameter the
matched route does not declare is a 422 problem naming it; routes that take arbitrary query
strings say so explicitly (``ACCEPTS_ANY_QUERY``), and routes outside the OpenAPI document
(the gateway's catch-all proxy, whose upstream route checks the query itself) are not checked."""

from __future__ import annotations

from typing import Annotated

import httpx
import pytest
from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict

from helpdesk_common.app import ACCEPTS_ANY_QUERY, ServiceParts, build_app, unknown_query_names
from helpdesk_common.settings import ServiceSettings


class Filters(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: str | None = None
    tier: str | None = None


async def paging(limit: int = 10, page_cursor: Annotated[str | None, Query(alias="cursor")] = None) -> dict:
    return {"limit": limit, "cursor": page_cursor}


def _app():  # type: ignore[no-untyped-def]
    router = APIRouter()

    @router.get("/v1/items")
    async def items(paged: Annotated[dict, Depends(paging)], q: str | None = None,
                    status: Annotated[list[str] | None, Query()] = None,
                    created_after: Annotated[str | None, Query(alias="created-after")] = None) -> dict:
        return {"paged": paged, "q": q, "status": status}

    @router.get("/v1/customers")
    async def customers(query: Annotated[Filters, Query()]) -> dict:
        return query.model_dump()

    @router.post("/v1/channels/wecom/inbound", openapi_extra=ACCEPTS_ANY_QUERY)
    async def signed(request: Request) -> dict:
        return {"query": dict(request.query_params)}

    @router.get("/v1/proxy/{rest:path}", include_in_schema=False)
    async def proxy(rest: str) -> dict:
        return {"rest": rest}

    return build_app(ServiceSettings(service_name="query-test", api_docs_enabled=True), ServiceParts(title="t", routers=[router]))


@pytest.fixture(scope="module")
def client():  # type: ignore[no-untyped-def]
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=_app()), base_url="http://t")


@pytest.mark.parametrize("query", [
    "", "q=x", "limit=5&cursor=abc", "status=open&status=new", "created-after=2026", "q=", "q", "limit=5&&q=x",
    "q=%E9%80%80",
])
async def test_declared_parameters_pass(client, query):
    r = await client.get(f"/v1/items?{query}")
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(("query", "unknown"), [
    ("stauts=open", ["stauts"]),
    ("q=x&limt=5&foo", ["limt", "foo"]),
    ("created_after=2026", ["created_after"]),  # the alias is the name
    ("page_cursor=x", ["page_cursor"]),  # the Python name of an aliased parameter is not
    ("q%5B%5D=x", ["q[]"]),  # names are compared decoded
    ("a+b=1", ["a b"]),
])
async def test_unknown_parameters_are_422_naming_them(client, query, unknown):
    r = await client.get(f"/v1/items?{query}")
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["type"].endswith("/validation-error")
    assert [e["field"] for e in body["errors"]] == [f"query.{name}" for name in unknown]
    assert {e["code"] for e in body["errors"]} == {"extra_forbidden"}


async def test_a_query_model_declares_its_fields(client):
    assert (await client.get("/v1/customers?email=a@b.c&tier=vip")).status_code == 200
    r = await client.get("/v1/customers?emial=a@b.c")
    assert r.status_code == 422 and [e["field"] for e in r.json()["errors"]] == ["query.emial"]


async def test_explicit_and_unlisted_routes_take_any_query(client):
    r = await client.post("/v1/channels/wecom/inbound?msg_signature=s&timestamp=1&nonce=n&echostr=e")
    assert r.status_code == 200 and r.json()["query"]["echostr"] == "e"
    assert (await client.get("/v1/proxy/tickets?limit=5&anything=1")).status_code == 200
    assert (await client.get("/healthz?probe=1")).status_code == 200


async def test_the_answer_is_bounded():
    names = unknown_query_names(b"&".join(b"x%d=1" % i for i in range(100)) + b"&" + b"y" * 5000, frozenset())
    assert len(names) == 100 + 1
    r = await httpx.AsyncClient(transport=httpx.ASGITransport(app=_app()), base_url="http://t").get(
        "/v1/items?" + "&".join(f"n{i}=1" for i in range(50)) + "&" + "z" * 3000)
    errors = r.json()["errors"]
    assert r.status_code == 422 and len(errors) == 10 and all(len(e["field"]) <= 106 for e in errors)


async def test_a_wrong_method_stays_a_405(client):
    r = await client.delete("/v1/items?stauts=open")
    assert r.status_code == 405


async def test_the_openapi_document_marks_routes_that_take_any_query(client):
    doc = (await client.get("/openapi.json")).json()
    assert doc["paths"]["/v1/channels/wecom/inbound"]["post"]["x-any-query-parameters"] is True
    assert "x-any-query-parameters" not in doc["paths"]["/v1/items"]["get"]
