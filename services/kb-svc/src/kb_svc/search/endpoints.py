"""``GET /v1/kb/search``: public (anonymous callers find public articles, a customer token adds
the customers' ones, staff find all). Read-only: one connection, no transaction to commit."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request

from helpdesk_common.app import runtime_of
from helpdesk_common.responses import JSONBytesResponse
from helpdesk_common.validation import WHITESPACE

from ..access import PUBLIC_ROUTE, CurrentViewer
from . import service
from .schemas import SearchPage
from .text import MAX_QUERY_CHARS

router = APIRouter(prefix="/v1/kb", tags=["knowledge base search"])

MAX_LIMIT = 50
#: control characters other than tab and line ends: refused in a query or a label. Stated as the
#: parameters' patterns (one pattern is both the check and what the API document says)
_CONTROL = r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f"
#: not blank once stripped, and no control character
_QUERY_PATTERN = f"^[^{_CONTROL}]*[^{_CONTROL}{WHITESPACE}][^{_CONTROL}]*$"

Q = Annotated[str, Query(min_length=1, max_length=MAX_QUERY_CHARS, pattern=_QUERY_PATTERN,
                         description="Words in Chinese and/or English (at most 12 terms are used)")]
Locale = Annotated[str | None, Query(pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8}){0,2}$",
                                     description="Search this translation (e.g. zh-CN, en)")]
Label = Annotated[str | None, Query(min_length=1, max_length=64, pattern=f"^[^{_CONTROL}]*$")]


@router.get("/search", response_model=SearchPage, summary="Search published articles (relevance ranked)",
            **PUBLIC_ROUTE)
async def search(
    request: Request,
    who: CurrentViewer,
    q: Q,
    locale: Locale = None,
    fallback: Annotated[bool, Query(description="With locale: other translations where it has none")] = False,
    category_id: uuid.UUID | None = None,
    section_id: uuid.UUID | None = None,
    label: Label = None,
    visibility: Literal["public", "customers", "agents"] | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 10,
    cursor: Annotated[str | None, Query(max_length=256)] = None,
) -> JSONBytesResponse:
    search_request = service.SearchRequest(
        q=q, visibilities=who.visibilities, locale=locale, fallback=fallback,
        category_id=category_id, section_id=section_id, label=label, visibility=visibility, limit=limit,
        cursor=cursor)
    async with runtime_of(request).engine.connect() as conn:
        page = await service.search(conn, search_request)
    # anonymous answers are the same for everyone: a shared cache may keep them briefly
    cache = "public, max-age=30" if who.kind == "public" else "private, no-store"
    return JSONBytesResponse(page, headers={"Cache-Control": cache, "Vary": "Authorization"})
