"""Public reads of the knowledge base: published translations of active articles, 'public' to
anyone, 'customers' to a caller with a customer token, 'agents' to staff (access.py). Anything a
caller may not read is the same 404 as what does not exist. Articles answer with an ETag and
304 to ``If-None-Match``; public ones may be cached by shared caches for a few minutes."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response

from helpdesk_common.app import runtime_of
from helpdesk_common.pagination import DEFAULT_LIMIT, decode_cursor, encode_cursor
from helpdesk_common.responses import JSONBytesResponse

from ..access import PUBLIC_ROUTE, CurrentViewer
from ..feedback import service as feedback_service
from . import repository, rules, service
from .endpoints import (Cursor, Limit, LocaleQuery, decode_position_cursor, encode_position_cursor,
                        locale_param)
from .schemas import CategoryList, PublicArticle, PublicArticleList, SectionList

router = APIRouter(prefix="/v1/kb/public", tags=["knowledge base (public)"])

#: a response that differs by the caller's credential and language is never shared across them
_VARY = "Authorization, Accept-Language"


def _public(responses: dict | None = None) -> dict:
    """The public route options (access.PUBLIC_ROUTE) with this route's own responses."""
    return {**PUBLIC_ROUTE, "responses": {**PUBLIC_ROUTE["responses"], **(responses or {})}}


_NOT_MODIFIED = {304: {"description": "If-None-Match names the current ETag"}}


def article_etag(article: dict) -> str:
    """Opaque; changes with the published version and with any change of the article around it
    (labels, section, visibility), and differs between translations."""
    return f'W/"{article["locale"]}.{article["version"]}.{article["article_version"]}"'


def not_modified(if_none_match: str | None, current: str) -> bool:
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    weak = current.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == weak for tag in if_none_match.split(","))


@router.get("/articles/{article_id}", response_model=PublicArticle, summary="A published article",
            **_public(_NOT_MODIFIED))
async def read_article(request: Request, article_id: uuid.UUID, viewer: CurrentViewer, locale: LocaleQuery = None,
                       accept_language: Annotated[str | None, Header(max_length=500)] = None,
                       if_none_match: Annotated[str | None, Header(max_length=500)] = None,
                       suggestion_id: Annotated[uuid.UUID | None, Query(
                           description="The suggestion the reader came from (counts as its view)")] = None,
                       ) -> Response:
    runtime = runtime_of(request)
    async with runtime.engine.connect() as conn:
        article = await service.public_article(conn, article_id=article_id, locale=locale_param(locale, "query.locale"),
                                               accept_language=accept_language, visible_to=viewer.visibilities)
    # a read (a revalidation too) counts as a view of the translation (feedback/), and as the
    # suggestion's view when the reader came from one (deflection/)
    async with runtime.engine.begin() as conn:
        await feedback_service.record_read(conn, article_id=article_id, locale=article["locale"],
                                           suggestion_id=suggestion_id)
    tag = article_etag(article)
    headers = {"ETag": tag, "Cache-Control": rules.cache_control(article["visibility"]), "Vary": _VARY,
               "Content-Language": article["locale"]}
    if not_modified(if_none_match, tag):
        return Response(status_code=304, headers=headers)
    article.pop("article_version")
    return JSONBytesResponse(article, headers=headers)


@router.get("/categories", response_model=CategoryList,
            summary="Categories holding at least one article the caller may read", **_public())
async def list_categories(request: Request, viewer: CurrentViewer, locale: LocaleQuery = None,
                          limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None) -> JSONBytesResponse:
    after = decode_position_cursor(cursor) if cursor else None
    async with runtime_of(request).engine.connect() as conn:
        rows = await repository.page_categories(conn, locale=locale_param(locale, "query.locale"), after=after,
                                                limit=limit, visible_to=viewer.visibilities)
    more = len(rows) > limit
    rows = rows[:limit]
    return JSONBytesResponse({"items": [dict(r._mapping) for r in rows],
                              "next_cursor": encode_position_cursor(rows[-1].position, rows[-1].id) if more else None},
                             headers={"Cache-Control": "private, no-cache", "Vary": _VARY})


@router.get("/categories/{category_id}/sections", response_model=SectionList,
            summary="A category's sections holding at least one article the caller may read", **_public())
async def list_sections(request: Request, category_id: uuid.UUID, viewer: CurrentViewer, locale: LocaleQuery = None,
                        limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None) -> JSONBytesResponse:
    after = decode_position_cursor(cursor) if cursor else None
    async with runtime_of(request).engine.connect() as conn:
        rows = await repository.page_sections(conn, category_id=category_id,
                                              locale=locale_param(locale, "query.locale"), after=after, limit=limit,
                                              visible_to=viewer.visibilities)
    more = len(rows) > limit
    rows = rows[:limit]
    if not rows and after is None:  # an unknown, empty or hidden category alike
        raise service.not_found("category")
    return JSONBytesResponse({"items": [dict(r._mapping) for r in rows],
                              "next_cursor": encode_position_cursor(rows[-1].position, rows[-1].id) if more else None},
                             headers={"Cache-Control": "private, no-cache", "Vary": _VARY})


@router.get("/sections/{section_id}/articles", response_model=PublicArticleList,
            summary="The articles of a section the caller may read, newest publish first (one translation "
                    "each without `locale`: the Accept-Language one when there is one)", **_public())
async def list_articles(request: Request, section_id: uuid.UUID, viewer: CurrentViewer, locale: LocaleQuery = None,
                        limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None,
                        accept_language: Annotated[str | None, Header(max_length=500)] = None) -> JSONBytesResponse:
    after = decode_cursor(cursor) if cursor else None
    async with runtime_of(request).engine.connect() as conn:
        rows = await repository.page_public_articles(conn, section_id=section_id,
                                                     locale=locale_param(locale, "query.locale"),
                                                     visible_to=viewer.visibilities, after=after, limit=limit,
                                                     preferred=rules.first_accepted(accept_language))
    more = len(rows) > limit
    rows = rows[:limit]
    items = [{**r._mapping, "labels": list(r.labels or [])} for r in rows]
    return JSONBytesResponse({"items": items, "next_cursor": encode_cursor(rows[-1].published_at, rows[-1].id)
                              if more and rows else None},
                             headers={"Cache-Control": "private, no-cache", "Vary": _VARY})


@router.get("/articles/{article_id}/attachments/{attachment_id}", response_class=Response,
            summary="A file of an article the caller may read (images shown in its body)",
            **_public({200: {"content": {"*/*": {"schema": {"type": "string", "format": "binary"}}}},
                       **_NOT_MODIFIED}))
async def download_attachment(request: Request, article_id: uuid.UUID, attachment_id: uuid.UUID,
                              viewer: CurrentViewer,
                              if_none_match: Annotated[str | None, Header(max_length=500)] = None) -> Response:
    async with runtime_of(request).engine.connect() as conn:
        readable = await repository.readable_article(conn, article_id=article_id, visible_to=viewer.visibilities)
        row = None if readable is None else await repository.attachment_with_content(
            conn, article_id=article_id, attachment_id=attachment_id)
    if row is None:
        raise service.not_found("attachment")
    media_type, headers = service.download_headers(row, cache_control=rules.cache_control(readable.visibility))
    headers["Vary"] = _VARY
    if not_modified(if_none_match, headers["ETag"]):
        return Response(status_code=304, headers=headers)
    return Response(bytes(row.content), media_type=media_type, headers=headers)
