"""The shared guards against bad input reaching PostgreSQL (issue 9, "Medium 5").

- every request body model (``StrictModel``) refuses NUL, lone surrogates and NaN/Infinity
  anywhere in the document, naming where;
- every service refuses NUL in the URL (path or query string) with a 422 naming the parameter,
  before any route runs;
- database errors that bad input causes are 4xx problems (422, unique violations 409), on the
  bare asyncpg path and through SQLAlchemy alike, and are logged because each one is a missing
  validation; other database errors stay 500.
"""

from __future__ import annotations

import logging
import math
import uuid
from datetime import datetime
from typing import Annotated, Any

import asyncpg
import httpx
import orjson
import pytest
from fastapi import APIRouter, Query
from pydantic import ValidationError
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import create_async_engine

from helpdesk_common.app import ServiceParts, build_app
from helpdesk_common.pagination import decode_cursor
from helpdesk_common.problems import Problem
from helpdesk_common.settings import ServiceSettings
from helpdesk_common.validation import (
    INT32_MAX,
    INT64_MAX,
    Int32,
    StrictModel,
    UtcDatetime,
    find_invalid,
)


class Body(StrictModel):
    name: str = "x"
    extra: dict[str, Any] = {}
    items: list[Any] = []
    position: Int32 = 0


@pytest.mark.parametrize(("doc", "where", "why"), [
    ({"name": "a\x00"}, "name", "NUL"),
    ({"extra": {"k": "\ud800"}}, "extra.k", "surrogate"),
    ({"extra": {"\udfff": 1}}, "extra", "surrogate"),
    ({"items": [1, {"v": ["ok", "x\udbff"]}]}, "items[1].v[1]", "surrogate"),
    ({"extra": {"k": math.nan}}, "extra.k", "NaN"),
    ({"items": [math.inf]}, "items[0]", "NaN"),
    ({"extra": {"k": -math.inf}}, "extra.k", "NaN"),
])
def test_strict_model_refuses_text_postgres_cannot_store(doc, where, why):
    assert find_invalid(doc) is not None
    with pytest.raises(ValidationError) as caught:
        Body.model_validate(doc)
    message = str(caught.value)
    assert where in message and why in message, message


def test_strict_model_keeps_good_text_and_numbers():
    body = Body.model_validate({"name": "emoji \U0001F600 报价", "extra": {"f": 1.5, "big": 10**30, "s": "\ufffd"},
                                "items": [0.0, -1e308, "x"]})
    assert body.name == "emoji \U0001F600 报价" and body.extra["big"] == 10**30
    assert find_invalid({"a": ["b", {"c": 1.0}]}) is None


@pytest.mark.parametrize(("value", "ok"), [(INT32_MAX, True), (-(2**31), True), (INT32_MAX + 1, False),
                                           (-(2**31) - 1, False), (10**20, False)])
def test_int32_matches_the_column(value, ok):
    if ok:
        assert Body(position=value).position == value
    else:
        with pytest.raises(ValidationError):
            Body(position=value)


def test_cursor_with_a_date_beyond_utc_is_a_400():
    import base64

    forged = base64.urlsafe_b64encode(orjson.dumps(["9999-12-31T23:00:00-14:00", str(uuid.uuid4())])).decode()
    with pytest.raises(Problem) as caught:
        decode_cursor(forged)
    assert caught.value.status == 400


# --- the assembled app: middleware and problem handlers as every service gets them ---------------

def _app(infra) -> Any:
    """A service built by the shared factory, with routes that send bad values to a real PostgreSQL
    (the bare asyncpg way and through SQLAlchemy), as a handler with a missing validation would."""
    router = APIRouter()
    url = f"{infra.db_base}/postgres"
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)

    @router.get("/v1/echo/{item}")
    async def echo(item: str, tag: Annotated[list[str] | None, Query()] = None, q: str | None = None,
                   after: UtcDatetime | None = None) -> dict:
        return {"item": item, "tag": tag, "q": q, "after": after}

    @router.get("/v1/raw/{case}")
    async def raw(case: str) -> dict:
        conn = await asyncpg.connect(dsn)
        try:
            if case == "int4-argument":
                await conn.fetchval("SELECT $1::int4", 2**31)
            elif case == "int8-argument":
                await conn.fetchval("SELECT $1::int8", 10**20)
            elif case == "nul-text":
                await conn.fetchval("SELECT length($1::text)", "a\x00b")
            elif case == "surrogate-text":
                await conn.fetchval("SELECT length($1::text)", "a\ud800")
            elif case == "out-of-range":
                await conn.fetchval("SELECT $1::text::int4", "99999999999")
            elif case == "not-a-number":
                await conn.fetchval("SELECT $1::text::int4", "abc")
            elif case == "unique":
                async with conn.transaction():
                    await conn.execute("CREATE TEMP TABLE u (name text UNIQUE)")
                    await conn.execute("INSERT INTO u VALUES ('a'), ('a')")
            elif case == "syntax":
                await conn.execute("SELEKT 1")
        finally:
            await conn.close()
        return {}

    @router.get("/v1/orm/{case}")
    async def orm(case: str) -> dict:
        engine = create_async_engine(url)
        try:
            async with engine.begin() as conn:
                if case == "int4-argument":
                    await conn.execute(text("SELECT CAST(:v AS int4)"), {"v": 2**31})
                elif case == "out-of-range":
                    await conn.execute(text("SELECT CAST(CAST(:v AS text) AS int4)"), {"v": "99999999999"})
                elif case == "nul-text":
                    await conn.execute(text("SELECT length(CAST(:v AS text))"), {"v": "a\x00b"})
                elif case == "unique":
                    await conn.execute(text("CREATE TEMP TABLE u (name text UNIQUE)"))
                    await conn.execute(text("INSERT INTO u VALUES ('a'), ('a')"))
                elif case == "syntax":
                    await conn.execute(text("SELEKT 1"))
        finally:
            await engine.dispose()
        return {}

    @router.get("/v1/hash")
    async def digest(value: str = "x") -> dict:
        # what ticket-svc's request_hash does with a body whose model let a lone surrogate through
        return {"n": len(orjson.dumps({"v": value + "\ud800"}))}

    settings = ServiceSettings(service_name="hygiene-test")
    return build_app(settings, ServiceParts(title="t", routers=[router], uses_broker=False))


@pytest.fixture
async def app_client(infra):
    transport = httpx.ASGITransport(app=_app(infra), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://svc") as client:
        yield client


@pytest.mark.parametrize(("url", "fields"), [
    ("/v1/echo/x?tag=%00", ["query.tag"]),
    ("/v1/echo/x?tag=ok&tag=a%00b&q=%00", ["query.tag", "query.q"]),
    ("/v1/echo/x?q=%E4%BD%A0%00", ["query.q"]),
    ("/v1/echo/x?a%00b=1", ["query.a\\x00b"]),
    ("/v1/echo/a%00b", ["path"]),
    ("/v1/unknown%00", ["path"]),
])
async def test_nul_in_the_url_is_a_422_naming_the_parameter(app_client, url, fields):
    r = await app_client.get(url, headers={"X-Request-ID": "req-nul"})
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["status"] == 422 and body["type"] == "https://helpdesk.dev/problems/validation-error"
    assert [e["field"] for e in body["errors"]] == fields
    assert body["request_id"] == "req-nul" and r.headers["x-request-id"] == "req-nul"


@pytest.mark.parametrize("url", ["/v1/echo/x?q=%2500", "/v1/echo/x?q=100%25", "/v1/echo/%E4%BD%A0?q=%01",
                                 "/v1/echo/x?q=%ED%A0%80"])
async def test_urls_without_nul_pass(app_client, url):
    assert (await app_client.get(url)).status_code == 200


@pytest.mark.parametrize(("after", "status"), [("2026-01-01T00:00:00+08:00", 200), ("2026-01-01T00:00:00", 200),
                                               ("9999-12-31T23:00:00-14:00", 422),
                                               ("0001-01-01T00:00:00+14:00", 422)])
async def test_datetimes_must_survive_conversion_to_utc(app_client, after, status):
    r = await app_client.get("/v1/echo/x", params={"after": after})
    assert r.status_code == status, r.text
    if status == 200:
        assert datetime.fromisoformat(r.json()["after"].replace("Z", "+00:00")).utcoffset().total_seconds() == 0


@pytest.mark.parametrize(("case", "status"), [
    ("int4-argument", 422), ("int8-argument", 422), ("nul-text", 422), ("surrogate-text", 422),
    ("out-of-range", 422), ("not-a-number", 422), ("unique", 409), ("syntax", 500),
])
async def test_database_errors_from_input_are_4xx_on_asyncpg(app_client, caplog, case, status):
    caplog.set_level(logging.WARNING, logger="helpdesk_common.problems")
    r = await app_client.get(f"/v1/raw/{case}")
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert "asyncpg" not in r.text and "SELECT" not in r.text  # no database internals leak
    if status < 500:
        logged = [rec for rec in caplog.records if rec.getMessage().startswith("input refused by the database")]
        assert logged and logged[0].route == "/v1/raw/{case}"


@pytest.mark.parametrize(("case", "status"), [
    ("int4-argument", 422), ("out-of-range", 422), ("nul-text", 422), ("unique", 409), ("syntax", 500),
])
async def test_database_errors_from_input_are_4xx_through_sqlalchemy(app_client, case, status):
    r = await app_client.get(f"/v1/orm/{case}")
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"


async def test_lone_surrogate_refused_by_orjson_is_a_422(app_client):
    r = await app_client.get("/v1/hash")
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"


def test_int64_bound_is_the_column_bound():
    assert INT64_MAX == 9223372036854775807
