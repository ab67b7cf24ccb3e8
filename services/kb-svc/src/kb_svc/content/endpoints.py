"""Content API for staff: editors and admins write; supervisors and agents read everything
(drafts and agents-only articles too); anyone else is refused (access.py: 401 unsigned, 403 a
customer or a reader writing). One request, one transaction.
The public reads are in ``public_endpoints.py``."""

from __future__ import annotations

import base64
import hashlib
import uuid

from typing import Annotated, Literal

import orjson
from fastapi import APIRouter, Header, Path, Query, Request, Response

from helpdesk_common import attachments as attachment_rules
from helpdesk_common.app import runtime_of
from helpdesk_common.concurrency import IfMatch, etag
from helpdesk_common.openapi import problem_responses
from helpdesk_common.pagination import DEFAULT_LIMIT, MAX_LIMIT, decode_cursor, encode_cursor
from helpdesk_common.problems import Problem
from helpdesk_common.responses import JSONBytesResponse
from helpdesk_common.validation import SafeStr

from ..access import EditorViewer, StaffViewer
from ..idempotency import service as idempotency
from ..idempotency.service import IdempotencyKey
from . import rules, service
from .schemas import (ArticleIn, ArticleList, ArticlePatch, ArticleRead, AttachmentList, AttachmentRead,
                      CategoryIn, CategoryList, CategoryPatch, CategoryRead, LocaleIn, SectionIn, SectionList,
                      SectionPatch, SectionRead, TranslationIn, VersionDetail, VersionList)

router = APIRouter(prefix="/v1/kb", tags=["knowledge base"])

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
Cursor = Annotated[str | None, Query(max_length=512, description="next_cursor of the previous page")]
# (the pattern admits no NUL; a plain str keeps it in the API document, which an after-validator hides)
LocaleQuery = Annotated[str | None, Query(max_length=rules.LOCALE_MAX_CHARS, pattern=rules.LOCALE_PATTERN,
                                              description="A BCP 47 tag, e.g. zh-CN or en")]
LocalePath = Annotated[str, Path(max_length=rules.LOCALE_MAX_CHARS, pattern=rules.LOCALE_PATTERN,
                                 description="A BCP 47 tag, e.g. zh-CN or en")]


def _invalid_cursor() -> Problem:
    return Problem(400, "invalid-cursor", "Invalid cursor", "The cursor is malformed.")


def encode_position_cursor(position: int, item_id: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([position, str(item_id)])).decode().rstrip("=")


def decode_position_cursor(cursor: str) -> tuple[int, uuid.UUID]:
    try:
        position, item_id = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if type(position) is not int or not 0 <= position < 2**31:
            raise ValueError(position)
        return position, uuid.UUID(item_id)
    except Exception as exc:
        raise _invalid_cursor() from exc


def encode_number_cursor(number: int) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([number])).decode().rstrip("=")


def decode_number_cursor(cursor: str) -> int:
    try:
        (number,) = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if type(number) is not int or not 0 < number < 2**31:
            raise ValueError(number)
        return number
    except Exception as exc:
        raise _invalid_cursor() from exc


def locale_param(value: str | None, field: str) -> str | None:
    """A locale from the URL in canonical case; 422 naming the parameter when it is no BCP 47 tag."""
    if value is None:
        return None
    canonical = rules.canonical_locale(value)
    if canonical is None:
        raise Problem(422, "validation-error", "Validation failed", "One or more fields are invalid.",
                      errors=[{"field": field, "message": "must be a BCP 47 language tag, e.g. zh-CN or en",
                               "code": "invalid"}])
    return canonical


def _article_response(article: dict, status_code: int = 200) -> JSONBytesResponse:
    return JSONBytesResponse(article, status_code=status_code, headers={"ETag": etag(article["version"])})


def _created(item: dict, location: str, *, replayed: bool = False, versioned: bool = True) -> JSONBytesResponse:
    headers = {"Location": location}
    if versioned:
        headers["ETag"] = etag(item["version"])
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return JSONBytesResponse(item, status_code=201, headers=headers)


# --- categories ------------------------------------------------------------------------------------------------

@router.post("/categories", response_model=CategoryRead, status_code=201, summary="Create a category")
async def create_category(request: Request, body: CategoryIn, viewer: EditorViewer,
                          idempotency_key: IdempotencyKey = None) -> JSONBytesResponse:
    async with runtime_of(request).transaction() as conn:
        category = await idempotency.replay_or_claim(conn, caller=viewer.ref, key=idempotency_key,
                                                     scope="kb.category.create", body=body)
        replayed = category is not None
        if not replayed:
            category = await service.create_category(conn, body=body)
            await idempotency.remember(conn, caller=viewer.ref, key=idempotency_key, response=category)
    return _created(category, f"/v1/kb/categories/{category['id']}", replayed=replayed)


@router.get("/categories", response_model=CategoryList, summary="Categories in display order")
async def list_categories(request: Request, viewer: StaffViewer, locale: LocaleQuery = None,
                          limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None) -> JSONBytesResponse:
    after = decode_position_cursor(cursor) if cursor else None
    async with runtime_of(request).engine.connect() as conn:
        rows = await service.repository.page_categories(conn, locale=locale_param(locale, "query.locale"),
                                                        after=after, limit=limit)
    more = len(rows) > limit
    rows = rows[:limit]
    return JSONBytesResponse({"items": [dict(r._mapping) for r in rows],
                              "next_cursor": encode_position_cursor(rows[-1].position, rows[-1].id) if more else None})


@router.get("/categories/{category_id}", response_model=CategoryRead, summary="One category")
async def get_category(request: Request, category_id: uuid.UUID, viewer: StaffViewer) -> JSONBytesResponse:
    async with runtime_of(request).engine.connect() as conn:
        category = await service.get_category(conn, category_id)
    return JSONBytesResponse(category, headers={"ETag": etag(category["version"])})


@router.patch("/categories/{category_id}", response_model=CategoryRead, summary="Change a category")
async def patch_category(request: Request, category_id: uuid.UUID, body: CategoryPatch, viewer: EditorViewer,
                         if_match: IfMatch = None) -> JSONBytesResponse:
    async with runtime_of(request).transaction() as conn:
        category = await service.patch_category(conn, category_id=category_id, body=body, if_match=if_match)
    return JSONBytesResponse(category, headers={"ETag": etag(category["version"])})


@router.delete("/categories/{category_id}", status_code=204, summary="Delete an empty category (409 otherwise)")
async def delete_category(request: Request, category_id: uuid.UUID, viewer: EditorViewer,
                          if_match: IfMatch = None) -> Response:
    async with runtime_of(request).transaction() as conn:
        await service.delete_category(conn, category_id=category_id, if_match=if_match)
    return Response(status_code=204)


# --- sections ------------------------------------------------------------------------------------------------

@router.post("/sections", response_model=SectionRead, status_code=201, summary="Create a section in a category")
async def create_section(request: Request, body: SectionIn, viewer: EditorViewer,
                         idempotency_key: IdempotencyKey = None) -> JSONBytesResponse:
    async with runtime_of(request).transaction() as conn:
        section = await idempotency.replay_or_claim(conn, caller=viewer.ref, key=idempotency_key,
                                                    scope="kb.section.create", body=body)
        replayed = section is not None
        if not replayed:
            section = await service.create_section(conn, body=body)
            await idempotency.remember(conn, caller=viewer.ref, key=idempotency_key, response=section)
    return _created(section, f"/v1/kb/sections/{section['id']}", replayed=replayed)


@router.get("/sections", response_model=SectionList, summary="Sections in display order")
async def list_sections(request: Request, viewer: StaffViewer, category_id: uuid.UUID | None = None,
                        locale: LocaleQuery = None, limit: Limit = DEFAULT_LIMIT,
                        cursor: Cursor = None) -> JSONBytesResponse:
    after = decode_position_cursor(cursor) if cursor else None
    async with runtime_of(request).engine.connect() as conn:
        rows = await service.repository.page_sections(conn, category_id=category_id,
                                                      locale=locale_param(locale, "query.locale"), after=after,
                                                      limit=limit)
    more = len(rows) > limit
    rows = rows[:limit]
    return JSONBytesResponse({"items": [dict(r._mapping) for r in rows],
                              "next_cursor": encode_position_cursor(rows[-1].position, rows[-1].id) if more else None})


@router.get("/sections/{section_id}", response_model=SectionRead, summary="One section")
async def get_section(request: Request, section_id: uuid.UUID, viewer: StaffViewer) -> JSONBytesResponse:
    async with runtime_of(request).engine.connect() as conn:
        section = await service.get_section(conn, section_id)
    return JSONBytesResponse(section, headers={"ETag": etag(section["version"])})


@router.patch("/sections/{section_id}", response_model=SectionRead, summary="Change or move a section")
async def patch_section(request: Request, section_id: uuid.UUID, body: SectionPatch, viewer: EditorViewer,
                        if_match: IfMatch = None) -> JSONBytesResponse:
    async with runtime_of(request).transaction() as conn:
        section = await service.patch_section(conn, section_id=section_id, body=body, if_match=if_match)
    return JSONBytesResponse(section, headers={"ETag": etag(section["version"])})


@router.delete("/sections/{section_id}", status_code=204, summary="Delete an empty section (409 otherwise)")
async def delete_section(request: Request, section_id: uuid.UUID, viewer: EditorViewer,
                         if_match: IfMatch = None) -> Response:
    async with runtime_of(request).transaction() as conn:
        await service.delete_section(conn, section_id=section_id, if_match=if_match)
    return Response(status_code=204)


# --- articles ------------------------------------------------------------------------------------------------

@router.post("/articles", response_model=ArticleRead, status_code=201,
             summary="Create an article with its first translation, as a draft")
async def create_article(request: Request, body: ArticleIn, viewer: EditorViewer,
                         idempotency_key: IdempotencyKey = None) -> JSONBytesResponse:
    async with runtime_of(request).transaction() as conn:
        article = await idempotency.replay_or_claim(conn, caller=viewer.ref, key=idempotency_key,
                                                    scope="kb.article.create", body=body)
        replayed = article is not None
        if not replayed:
            article = await service.create_article(conn, body=body, actor=viewer.user_id)
            await idempotency.remember(conn, caller=viewer.ref, key=idempotency_key, response=article)
    return _created(article, f"/v1/kb/articles/{article['id']}", replayed=replayed)


@router.get("/articles", response_model=ArticleList, summary="Articles, newest first, with filters")
async def list_articles(
    request: Request, viewer: StaffViewer,
    section_id: uuid.UUID | None = None, category_id: uuid.UUID | None = None,
    label: Annotated[SafeStr | None, Query(max_length=100)] = None,
    state: Literal["active", "archived"] | None = None,
    locale: LocaleQuery = None,
    status: Annotated[Literal["draft", "published", "unpublished"] | None,
                      Query(description="has a translation in this status (in `locale` when given)")] = None,
    owner_id: Annotated[SafeStr | None, Query(max_length=200)] = None,
    visibility: Literal["public", "customers", "agents"] | None = None,
    review_due: Annotated[bool | None, Query(description="true: the review date has passed")] = None,
    limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None,
) -> JSONBytesResponse:
    after = decode_cursor(cursor) if cursor else None
    filters = {"section_id": section_id, "category_id": category_id, "label": label, "state": state,
               "locale": locale_param(locale, "query.locale"), "status": status, "owner_id": owner_id,
               "visibility": visibility, "review_due": review_due}
    async with runtime_of(request).engine.connect() as conn:
        items, last = await service.list_articles(conn, filters=filters, after=after, limit=limit)
    return JSONBytesResponse({"items": items,
                              "next_cursor": encode_cursor(last.created_at, last.id) if last is not None else None})


@router.get("/articles/{article_id}", response_model=ArticleRead,
            summary="An article with every translation's draft and published copy")
async def get_article(request: Request, article_id: uuid.UUID, viewer: StaffViewer) -> JSONBytesResponse:
    async with runtime_of(request).engine.connect() as conn:
        article = await service.article_read(conn, article_id)
    return _article_response(article)


@router.patch("/articles/{article_id}", response_model=ArticleRead,
              summary="Change an article's place, labels, visibility, owner or review date (If-Match required)",
              responses=problem_responses(428, _428="If-Match is missing"))
async def patch_article(request: Request, article_id: uuid.UUID, body: ArticlePatch, viewer: EditorViewer,
                        if_match: IfMatch = None) -> JSONBytesResponse:
    async with runtime_of(request).transaction() as conn:
        article = await service.patch_article(conn, article_id=article_id, body=body, if_match=if_match,
                                              actor=viewer.user_id)
    return _article_response(article)


@router.put("/articles/{article_id}/translations/{locale}", response_model=ArticleRead,
            summary="Create or edit a translation's draft (If-Match required); readers keep the published copy",
            responses={201: {"description": "A new translation"},
                       **problem_responses(428, _428="If-Match is missing")})
async def put_translation(request: Request, article_id: uuid.UUID, locale: LocalePath, body: TranslationIn,
                          viewer: EditorViewer, if_match: IfMatch = None) -> JSONBytesResponse:
    canonical = locale_param(locale, "path.locale")
    async with runtime_of(request).transaction() as conn:
        article, created = await service.save_translation(conn, article_id=article_id, locale=canonical,
                                                          body=body, if_match=if_match, actor=viewer.user_id)
    return _article_response(article, 201 if created else 200)


@router.delete("/articles/{article_id}/translations/{locale}", response_model=ArticleRead,
               summary="Delete a translation readers do not see (If-Match required; its history stays)",
               responses=problem_responses(428, _428="If-Match is missing"))
async def delete_translation(request: Request, article_id: uuid.UUID, locale: LocalePath, viewer: EditorViewer,
                             if_match: IfMatch = None) -> JSONBytesResponse:
    canonical = locale_param(locale, "path.locale")
    async with runtime_of(request).transaction() as conn:
        article = await service.delete_translation(conn, article_id=article_id, locale=canonical,
                                                   if_match=if_match, actor=viewer.user_id)
    return _article_response(article)


@router.post("/articles/{article_id}/publish", response_model=ArticleRead,
             summary="Publish a translation's draft (If-Match optional)")
async def publish(request: Request, article_id: uuid.UUID, body: LocaleIn, viewer: EditorViewer,
                  if_match: IfMatch = None) -> JSONBytesResponse:
    async with runtime_of(request).transaction() as conn:
        article = await service.publish(conn, article_id=article_id, locale=body.locale, if_match=if_match,
                                        actor=viewer.user_id)
    return _article_response(article)


@router.post("/articles/{article_id}/unpublish", response_model=ArticleRead,
             summary="Take a translation away from readers (its draft stays)")
async def unpublish(request: Request, article_id: uuid.UUID, body: LocaleIn, viewer: EditorViewer,
                    if_match: IfMatch = None) -> JSONBytesResponse:
    async with runtime_of(request).transaction() as conn:
        article = await service.unpublish(conn, article_id=article_id, locale=body.locale, if_match=if_match,
                                          actor=viewer.user_id)
    return _article_response(article)


@router.post("/articles/{article_id}/archive", response_model=ArticleRead,
             summary="Archive an article: readers and search lose every translation")
async def archive(request: Request, article_id: uuid.UUID, viewer: EditorViewer,
                  if_match: IfMatch = None) -> JSONBytesResponse:
    async with runtime_of(request).transaction() as conn:
        article = await service.archive(conn, article_id=article_id, if_match=if_match, actor=viewer.user_id)
    return _article_response(article)


@router.post("/articles/{article_id}/restore", response_model=ArticleRead,
             summary="Restore an archived article: what was published is live again")
async def restore(request: Request, article_id: uuid.UUID, viewer: EditorViewer,
                  if_match: IfMatch = None) -> JSONBytesResponse:
    async with runtime_of(request).transaction() as conn:
        article = await service.restore(conn, article_id=article_id, if_match=if_match, actor=viewer.user_id)
    return _article_response(article)


@router.get("/articles/{article_id}/versions", response_model=VersionList,
            summary="The article's history, newest first: who did what, when, with which title")
async def list_versions(request: Request, article_id: uuid.UUID, viewer: StaffViewer,
                        locale: LocaleQuery = None, limit: Limit = DEFAULT_LIMIT,
                        cursor: Cursor = None) -> JSONBytesResponse:
    before = decode_number_cursor(cursor) if cursor else None
    async with runtime_of(request).engine.connect() as conn:
        items, last = await service.versions(conn, article_id=article_id, locale=locale_param(locale, "query.locale"),
                                             before=before, limit=limit)
    return JSONBytesResponse({"items": items, "next_cursor": encode_number_cursor(last) if last else None})


@router.get("/articles/{article_id}/versions/{number}", response_model=VersionDetail,
            summary="One history entry with its body")
async def get_version(request: Request, article_id: uuid.UUID, number: Annotated[int, Path(ge=1, lt=2**31)],
                      viewer: StaffViewer) -> JSONBytesResponse:
    async with runtime_of(request).engine.connect() as conn:
        return JSONBytesResponse(await service.version(conn, article_id=article_id, number=number))


@router.post("/articles/{article_id}/versions/{number}/revert", response_model=ArticleRead,
             summary="Copy a history entry's title and body into its translation's draft (If-Match required)",
             responses=problem_responses(428, _428="If-Match is missing"))
async def revert_to_version(request: Request, article_id: uuid.UUID, number: Annotated[int, Path(ge=1, lt=2**31)],
                            viewer: EditorViewer, if_match: IfMatch = None) -> JSONBytesResponse:
    async with runtime_of(request).transaction() as conn:
        article = await service.revert_draft(conn, article_id=article_id, number=number, if_match=if_match,
                                             actor=viewer.user_id)
    return _article_response(article)


# --- attachments -----------------------------------------------------------------------------------------------

async def _read_body(request: Request) -> bytes:
    """The upload, at most one byte over the limit (413 beyond, before it is all in memory)."""
    limit = attachment_rules.MAX_ATTACHMENT_BYTES
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise Problem(413, "payload-too-large", "Payload too large", f"A file is at most {limit} bytes.")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Problem(413, "payload-too-large", "Payload too large", f"A file is at most {limit} bytes.")
        chunks.append(chunk)
    return b"".join(chunks)


@router.post("/articles/{article_id}/attachments", response_model=AttachmentRead, status_code=201,
             summary="Upload a file or image (the request body is the file; its name in ?filename=)",
             responses=problem_responses(413, _413="The file is larger than 25 MiB"),
             openapi_extra={"requestBody": {"required": True, "content": {
                 "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
                 "image/*": {"schema": {"type": "string", "format": "binary"}}}}})
async def upload_attachment(request: Request, article_id: uuid.UUID, viewer: EditorViewer,
                            filename: Annotated[SafeStr, Query(min_length=1, max_length=255)],
                            content_type: Annotated[str | None, Header(max_length=255)] = None,
                            idempotency_key: IdempotencyKey = None) -> JSONBytesResponse:
    content = await _read_body(request)
    fingerprint = orjson.dumps([str(article_id), filename, content_type, hashlib.sha256(content).hexdigest()])
    async with runtime_of(request).transaction() as conn:
        attachment = await idempotency.replay_or_claim(conn, caller=viewer.ref, key=idempotency_key,
                                                       scope="kb.attachment.create", body=fingerprint)
        replayed = attachment is not None
        if not replayed:
            attachment = await service.add_attachment(conn, article_id=article_id, filename=filename,
                                                      declared_type=content_type, content=content,
                                                      actor=viewer.user_id)
            await idempotency.remember(conn, caller=viewer.ref, key=idempotency_key, response=attachment)
    return _created(attachment, f"/v1/kb/articles/{article_id}/attachments/{attachment['id']}",
                    replayed=replayed, versioned=False)


@router.get("/articles/{article_id}/attachments", response_model=AttachmentList, summary="An article's files")
async def list_attachments(request: Request, article_id: uuid.UUID, viewer: StaffViewer) -> JSONBytesResponse:
    async with runtime_of(request).engine.connect() as conn:
        if await service.repository.get_article(conn, article_id) is None:
            raise service.not_found("article")
        rows = await service.repository.attachments(conn, article_id)
    return JSONBytesResponse({"items": [service.attachment_read(r) for r in rows]})


@router.get("/articles/{article_id}/attachments/{attachment_id}", response_class=Response,
            summary="Download a file (staff: any article)",
            responses={200: {"content": {"*/*": {"schema": {"type": "string", "format": "binary"}}}}})
async def download_attachment(request: Request, article_id: uuid.UUID, attachment_id: uuid.UUID,
                              viewer: StaffViewer) -> Response:
    async with runtime_of(request).engine.connect() as conn:
        row = await service.repository.attachment_with_content(conn, article_id=article_id,
                                                               attachment_id=attachment_id)
    if row is None:
        raise service.not_found("attachment")
    media_type, headers = service.download_headers(row, cache_control="private, no-cache")
    return Response(bytes(row.content), media_type=media_type, headers=headers)


@router.delete("/articles/{article_id}/attachments/{attachment_id}", status_code=204, summary="Delete a file")
async def delete_attachment(request: Request, article_id: uuid.UUID, attachment_id: uuid.UUID,
                            viewer: EditorViewer) -> Response:
    async with runtime_of(request).transaction() as conn:
        if not await service.repository.delete_attachment(conn, article_id=article_id, attachment_id=attachment_id):
            raise service.not_found("attachment")
    return Response(status_code=204)



