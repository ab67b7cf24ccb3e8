"""FastAPI's per-request parameter questions, memoised (fastapi_memo.py): same answers."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

import httpx
from fastapi import Depends, FastAPI, Header, Query
from fastapi.dependencies import utils as deps
from pydantic import AliasChoices, BaseModel

from helpdesk_common import fastapi_memo


class Paging(BaseModel):
    page: int = 1
    size: int = 10


async def filters(
    status: Annotated[list[Literal["new", "open"]] | None, Query(max_length=5)] = None,
    team_id: uuid.UUID | None = None,
    created_after: datetime | None = None,
    tag: Annotated[list[str] | None, Query()] = None,
) -> dict[str, Any]:
    return {"status": status, "team_id": team_id, "created_after": created_after, "tag": tag}


def _app() -> FastAPI:
    app = FastAPI()

    @app.get("/items")
    async def items(f: Annotated[dict, Depends(filters)], limit: Annotated[int, Query(ge=1, le=100)] = 25,
                    q: Annotated[str | None, Query(alias="search")] = None,
                    x_tenant: Annotated[str | None, Header()] = None,
                    nums: Annotated[list[int], Query(validation_alias=AliasChoices("n", "num"))] = []) -> dict:  # noqa: B006
        return {**f, "limit": limit, "q": q, "tenant": x_tenant, "nums": nums}

    @app.get("/paged")
    async def paged(p: Annotated[Paging, Query()]) -> dict:
        return p.model_dump()

    return app


QUERIES = [
    ("/items", ""), ("/items", "status=new&status=open&tag=a&tag=b&limit=3&search=退款"),
    ("/items", "status=closed"), ("/items", "limit=0"), ("/items", "team_id=nope"),
    ("/items", "n=1&n=2"), ("/items", "num=3"), ("/items", "created_after=2026-01-01T00:00:00Z"),
    ("/items", "status=" + "&status=".join(["new"] * 6)), ("/paged", "page=2&size=5"), ("/paged", "page=x"),
]


async def _answers() -> list[tuple[int, Any]]:
    app = _app()
    out = []
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        for path, query in QUERIES * 2:  # twice: the second round answers from the caches
            r = await client.get(f"{path}?{query}", headers={"x-tenant": "acme"})
            out.append((r.status_code, r.json()))
    return out


async def test_answers_are_the_same_with_and_without_the_caches(monkeypatch) -> None:
    for name in fastapi_memo.PATCHED:  # the originals come back after the test
        monkeypatch.setattr(deps, name, fastapi_memo.ORIGINALS.get(name, getattr(deps, name)))
    monkeypatch.setattr(deps, fastapi_memo._MARK, False, raising=False)
    before = await _answers()
    assert fastapi_memo.install()
    assert all(getattr(deps, n).__module__ == fastapi_memo.__name__ for n in fastapi_memo.PATCHED)
    after = await _answers()
    assert after == before
    assert before[1][0] == 200 and before[1][1]["status"] == ["new", "open"] and before[1][1]["q"] == "退款"
    assert before[2][0] == 422 and before[5][1]["nums"] == [1, 2]
    assert fastapi_memo.install()  # once per process: a second call changes nothing


def test_the_patched_names_exist_in_this_fastapi() -> None:
    assert all(callable(getattr(deps, name, None)) for name in fastapi_memo.PATCHED)
