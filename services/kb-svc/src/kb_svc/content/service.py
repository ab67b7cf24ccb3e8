"""Content rules: categories, sections, articles, drafts, publishing, history, attachments.
Flushes, never commits (the endpoints own the transaction)."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from helpdesk_common import attachments as attachment_rules
from helpdesk_common import concurrency
from helpdesk_common import events as ev
from helpdesk_common.outbox import enqueue
from helpdesk_common.problems import Problem

from ..db import outbox
from ..search import indexer
from . import repository, rules
from .schemas import ArticleIn, ArticlePatch, CategoryIn, CategoryPatch, SectionIn, SectionPatch, TranslationIn

SOURCE = "kb-svc"

# --- problems ------------------------------------------------------------------------------------------


def not_found(what: str) -> Problem:
    return Problem(404, "not-found", "Not found", f"No such {what}.")


def _invalid(field: str, message: str, code: str = "invalid") -> Problem:
    return Problem(422, "validation-error", "Validation failed", "One or more fields are invalid.",
                   errors=[{"field": field, "message": message, "code": code}])


def _conflict(detail: str) -> Problem:
    return Problem(409, "conflict", "Conflict", detail)


def require_if_match(if_match: str | None, current: int) -> None:
    """Article content edits need ``If-Match``: 428 without it, 412 when it names another version."""
    if if_match is None:
        raise Problem(428, "precondition-required", "Precondition required",
                      "Send If-Match with the article's ETag (from GET); editing without it could overwrite "
                      "someone else's change.", current_version=current)
    concurrency.check_version(current, if_match, what="article")


# --- categories and sections ------------------------------------------------------------------------------


def _place_read(row: Any) -> dict[str, Any]:
    return dict(row._mapping)


async def create_category(conn: AsyncConnection, *, body: CategoryIn) -> dict[str, Any]:
    position = body.position if body.position is not None else await repository.next_category_position(conn)
    row = await repository.insert_category(conn, category_id=uuid.uuid4(), name=body.name, locale=body.locale,
                                           description=body.description, position=position)
    return _place_read(row)


async def get_category(conn: AsyncConnection, category_id: uuid.UUID) -> dict[str, Any]:
    row = await repository.get_category(conn, category_id)
    if row is None:
        raise not_found("category")
    return _place_read(row)


async def patch_category(conn: AsyncConnection, *, category_id: uuid.UUID, body: CategoryPatch,
                         if_match: str | None) -> dict[str, Any]:
    current = await repository.get_category(conn, category_id, lock=True)
    if current is None:
        raise not_found("category")
    concurrency.check_version(current.version, if_match, what="category")
    changes = body.model_dump(exclude_unset=True, exclude_none=True)
    if not changes:
        return _place_read(current)
    return _place_read(await repository.update_category(conn, category_id, changes))


async def delete_category(conn: AsyncConnection, *, category_id: uuid.UUID, if_match: str | None) -> None:
    current = await repository.get_category(conn, category_id, lock=True)
    if current is None:
        raise not_found("category")
    concurrency.check_version(current.version, if_match, what="category")
    if await repository.category_has_sections(conn, category_id):
        raise _conflict("The category still has sections: move or delete them first.")
    await repository.delete_category(conn, category_id)


async def create_section(conn: AsyncConnection, *, body: SectionIn) -> dict[str, Any]:
    if await repository.get_category(conn, body.category_id, lock=True) is None:
        raise _invalid("body.category_id", "no such category", "not_found")
    position = body.position if body.position is not None else await repository.next_section_position(
        conn, body.category_id)
    row = await repository.insert_section(conn, section_id=uuid.uuid4(), category_id=body.category_id,
                                          name=body.name, locale=body.locale, description=body.description,
                                          position=position)
    return _place_read(row)


async def get_section(conn: AsyncConnection, section_id: uuid.UUID) -> dict[str, Any]:
    row = await repository.get_section(conn, section_id)
    if row is None:
        raise not_found("section")
    return _place_read(row)


async def patch_section(conn: AsyncConnection, *, section_id: uuid.UUID, body: SectionPatch,
                        if_match: str | None) -> dict[str, Any]:
    current = await repository.get_section(conn, section_id, lock=True)
    if current is None:
        raise not_found("section")
    concurrency.check_version(current.version, if_match, what="section")
    changes = body.model_dump(exclude_unset=True, exclude_none=True)
    if not changes:
        return _place_read(current)
    moved = "category_id" in changes and changes["category_id"] != current.category_id
    if moved and await repository.get_category(conn, changes["category_id"], lock=True) is None:
        raise _invalid("body.category_id", "no such category", "not_found")
    row = await repository.update_section(conn, section_id, changes)
    if moved:  # the search documents carry the category of each published article here
        for article in await repository.page_articles(conn, filters={"section_id": section_id}, after=None,
                                                      limit=100_000):
            await _reindex_published(conn, article.id)
    return _place_read(row)


async def delete_section(conn: AsyncConnection, *, section_id: uuid.UUID, if_match: str | None) -> None:
    current = await repository.get_section(conn, section_id, lock=True)
    if current is None:
        raise not_found("section")
    concurrency.check_version(current.version, if_match, what="section")
    if await repository.section_has_articles(conn, section_id):
        raise _conflict("The section still has articles (archived ones too): move them first.")
    await repository.delete_section(conn, section_id)


# --- articles ---------------------------------------------------------------------------------------------


def _review_due(review_at: datetime | None, now: datetime) -> bool:
    return review_at is not None and review_at <= now


def _translation_read(row: Any) -> dict[str, Any]:
    t = row._mapping
    unpublished_changes = (t["status"] != "published" or t["draft_title"] != t["published_title"]
                           or t["draft_body_html"] != t["published_body_html"])
    return {**t, "has_unpublished_changes": unpublished_changes}


def _article_fields(row: Any, now: datetime) -> dict[str, Any]:
    a = dict(row._mapping)
    a["labels"] = list(a["labels"] or [])
    a["review_due"] = _review_due(a["review_at"], now)
    return a


async def article_read(conn: AsyncConnection, article_id: uuid.UUID) -> dict[str, Any]:
    row = await repository.get_article(conn, article_id)
    if row is None:
        raise not_found("article")
    read = _article_fields(row, datetime.now(UTC))
    read["translations"] = [_translation_read(t) for t in await repository.translations(conn, article_id)]
    return read


async def _locked_article(conn: AsyncConnection, article_id: uuid.UUID) -> Any:
    row = await repository.get_article(conn, article_id, lock=True)
    if row is None:
        raise not_found("article")
    return row


async def create_article(conn: AsyncConnection, *, body: ArticleIn, actor: str) -> dict[str, Any]:
    if await repository.get_section(conn, body.section_id) is None:
        raise _invalid("body.section_id", "no such section", "not_found")
    article_id = uuid.uuid4()
    html = rules.sanitize_article_html(body.body_html)
    await repository.insert_article(conn, article_id=article_id, section_id=body.section_id,
                                    owner_id=body.owner_id or actor, visibility=body.visibility,
                                    labels=rules.normalise_labels(body.labels), review_at=body.review_at,
                                    created_by=actor)
    await repository.upsert_draft(conn, article_id=article_id, locale=body.locale, title=body.title, body_html=html,
                                  by=actor)
    await repository.add_version(conn, article_id=article_id, locale=body.locale, action="draft", title=body.title,
                                 body_html=html, actor=actor)
    return await article_read(conn, article_id)


async def patch_article(conn: AsyncConnection, *, article_id: uuid.UUID, body: ArticlePatch, if_match: str | None,
                        actor: str) -> dict[str, Any]:
    current = await _locked_article(conn, article_id)
    require_if_match(if_match, current.version)
    changes = body.model_dump(exclude_unset=True)
    for key in ("section_id", "labels", "visibility", "owner_id"):
        if key in changes and changes[key] is None:
            del changes[key]
    if "labels" in changes:
        changes["labels"] = rules.normalise_labels(changes["labels"])
    if "section_id" in changes and await repository.get_section(conn, changes["section_id"]) is None:
        raise _invalid("body.section_id", "no such section", "not_found")
    await repository.update_article(conn, article_id, changes)
    if {"section_id", "labels", "visibility"} & changes.keys():
        await _reindex_published(conn, article_id)
    return await article_read(conn, article_id)


async def _reindex_published(conn: AsyncConnection, article_id: uuid.UUID) -> None:
    for t in await repository.translations(conn, article_id):
        if t.status == "published":
            await indexer.index_translation(conn, article_id=article_id, locale=t.locale)


async def save_translation(conn: AsyncConnection, *, article_id: uuid.UUID, locale: str, body: TranslationIn,
                           if_match: str | None, actor: str) -> tuple[dict[str, Any], bool]:
    """Create or edit the draft of one translation (readers keep seeing the published copy);
    True when the translation is new."""
    current = await _locked_article(conn, article_id)
    require_if_match(if_match, current.version)
    html = rules.sanitize_article_html(body.body_html)
    existing = await repository.get_translation(conn, article_id, locale)
    if existing is not None and (existing.draft_title, existing.draft_body_html) == (body.title, html):
        return await article_read(conn, article_id), False  # a repeated save: no new history entry
    created = await repository.upsert_draft(conn, article_id=article_id, locale=locale, title=body.title,
                                            body_html=html, by=actor)
    await repository.add_version(conn, article_id=article_id, locale=locale, action="draft", title=body.title,
                                 body_html=html, actor=actor)
    await repository.update_article(conn, article_id, {})
    return await article_read(conn, article_id), created


async def delete_translation(conn: AsyncConnection, *, article_id: uuid.UUID, locale: str, if_match: str | None,
                             actor: str) -> dict[str, Any]:
    """Drop a translation that readers do not see (unpublish it first); an article keeps at least
    one. Its history stays (``/versions``)."""
    current = await _locked_article(conn, article_id)
    require_if_match(if_match, current.version)
    translations = await repository.translations(conn, article_id)
    translation = next((t for t in translations if t.locale == locale), None)
    if translation is None:
        raise not_found("translation")
    if translation.status == "published":
        raise _conflict(f"The {locale} translation is published: unpublish it first.")
    if len(translations) == 1:
        raise _conflict("An article keeps at least one translation: archive the article instead.")
    await repository.delete_translation(conn, article_id=article_id, locale=locale)
    await repository.update_article(conn, article_id, {})
    return await article_read(conn, article_id)


async def revert_draft(conn: AsyncConnection, *, article_id: uuid.UUID, number: int, if_match: str | None,
                       actor: str) -> dict[str, Any]:
    """Copy history entry ``number`` (its title and body) into its translation's draft, as a new
    draft entry; readers see it only once published."""
    current = await _locked_article(conn, article_id)
    require_if_match(if_match, current.version)
    entry = await repository.get_version(conn, article_id=article_id, number=number)
    if entry is None:
        raise not_found("version")
    html = entry.body_html  # stored sanitised (see ``publish``)
    await repository.upsert_draft(conn, article_id=article_id, locale=entry.locale, title=entry.title,
                                  body_html=html, by=actor)
    await repository.add_version(conn, article_id=article_id, locale=entry.locale, action="draft", title=entry.title,
                                 body_html=html, actor=actor)
    await repository.update_article(conn, article_id, {})
    return await article_read(conn, article_id)


async def publish(conn: AsyncConnection, *, article_id: uuid.UUID, locale: str, if_match: str | None,
                  actor: str) -> dict[str, Any]:
    """The draft becomes what readers see, with its text for search, a new published version, a
    history row, the search document and ``kb.article_published``, all in the caller's
    transaction. The draft was sanitised when it was saved (the allow-list is idempotent, and
    cleaning again could cut a body that escaping grew past the input bound)."""
    article = await _locked_article(conn, article_id)
    concurrency.check_version(article.version, if_match, what="article")
    if article.state != "active":
        raise _conflict("The article is archived: restore it before publishing.")
    translation = await repository.get_translation(conn, article_id, locale)
    if translation is None:
        raise not_found("translation")
    html = translation.draft_body_html
    if translation.status == "published" and (translation.published_title, translation.published_body_html) == (
            translation.draft_title, html):
        return await article_read(conn, article_id)  # already live as drafted: a retry publishes nothing new
    published = await repository.publish(conn, article_id=article_id, locale=locale, body_html=html,
                                         body_text=rules.body_text(html), by=actor)
    await repository.add_version(conn, article_id=article_id, locale=locale, action="published",
                                 title=published.published_title, body_html=html, actor=actor)
    await repository.update_article(conn, article_id, {})
    await indexer.index_translation(conn, article_id=article_id, locale=locale)
    await enqueue(conn, outbox, _published_event(article, locale=locale, title=published.published_title,
                                                 version=published.published_version, by=actor))
    return await article_read(conn, article_id)


def _published_event(article: Any, *, locale: str, title: str, version: int, by: str) -> ev.KbArticlePublished:
    return ev.KbArticlePublished(source=SOURCE, subject=str(article.id), data=ev.KbArticlePublishedData(
        article_id=article.id, locale=locale, version=version, title=title, visibility=article.visibility,
        labels=list(article.labels or []), section_id=article.section_id, category_id=article.category_id,
        published_by=by, at=datetime.now(UTC)))


def _unpublished_event(article_id: uuid.UUID, *, locale: str, by: str) -> ev.KbArticleUnpublished:
    return ev.KbArticleUnpublished(source=SOURCE, subject=str(article_id), data=ev.KbArticleUnpublishedData(
        article_id=article_id, locale=locale, at=datetime.now(UTC), by=by))


async def unpublish(conn: AsyncConnection, *, article_id: uuid.UUID, locale: str, if_match: str | None,
                    actor: str) -> dict[str, Any]:
    article = await _locked_article(conn, article_id)
    concurrency.check_version(article.version, if_match, what="article")
    translation = await repository.get_translation(conn, article_id, locale)
    if translation is None:
        raise not_found("translation")
    if translation.status != "published":
        raise _conflict(f"The {locale} translation is not published.")
    await repository.unpublish(conn, article_id=article_id, locale=locale)
    await repository.add_version(conn, article_id=article_id, locale=locale, action="unpublished",
                                 title=translation.published_title, body_html=translation.published_body_html,
                                 actor=actor)
    await repository.update_article(conn, article_id, {})
    await indexer.index_translation(conn, article_id=article_id, locale=locale)
    if article.state == "active":  # an archived article's translations were already gone for readers
        await enqueue(conn, outbox, _unpublished_event(article_id, locale=locale, by=actor))
    return await article_read(conn, article_id)


async def archive(conn: AsyncConnection, *, article_id: uuid.UUID, if_match: str | None,
                  actor: str) -> dict[str, Any]:
    """Readers and search lose every translation; the published copies are kept, so a restore
    brings back exactly what was live."""
    article = await _locked_article(conn, article_id)
    concurrency.check_version(article.version, if_match, what="article")
    if article.state == "archived":
        raise _conflict("The article is already archived.")
    await repository.update_article(conn, article_id, {"state": "archived"})
    live: list[ev.KbArticleUnpublished] = []
    for t in await repository.translations(conn, article_id):
        published = t.status == "published"
        await repository.add_version(conn, article_id=article_id, locale=t.locale, action="archived",
                                     title=t.published_title if published else t.draft_title,
                                     body_html=t.published_body_html if published else t.draft_body_html,
                                     actor=actor)
        await indexer.index_translation(conn, article_id=article_id, locale=t.locale)
        if published:
            live.append(_unpublished_event(article_id, locale=t.locale, by=actor))
    if live:
        await enqueue(conn, outbox, *live)
    return await article_read(conn, article_id)


async def restore(conn: AsyncConnection, *, article_id: uuid.UUID, if_match: str | None,
                  actor: str) -> dict[str, Any]:
    """Back to active: the translations published at archiving are live again, each at a new
    published version (a new ``kb.article_published``)."""
    article = await _locked_article(conn, article_id)
    concurrency.check_version(article.version, if_match, what="article")
    if article.state != "archived":
        raise _conflict("The article is not archived.")
    await repository.update_article(conn, article_id, {"state": "active"})
    article = await repository.get_article(conn, article_id)
    live: list[ev.KbArticlePublished] = []
    for t in await repository.translations(conn, article_id):
        published = t.status == "published"
        await repository.add_version(conn, article_id=article_id, locale=t.locale, action="restored",
                                     title=t.published_title if published else t.draft_title,
                                     body_html=t.published_body_html if published else t.draft_body_html,
                                     actor=actor)
        if published:
            version = await repository.bump_published_version(conn, article_id=article_id, locale=t.locale)
            live.append(_published_event(article, locale=t.locale, title=t.published_title, version=version,
                                         by=actor))
        await indexer.index_translation(conn, article_id=article_id, locale=t.locale)
    if live:
        await enqueue(conn, outbox, *live)
    return await article_read(conn, article_id)


async def list_articles(conn: AsyncConnection, *, filters: dict[str, Any], after: tuple[datetime, uuid.UUID] | None,
                        limit: int) -> tuple[list[dict[str, Any]], Any]:
    rows = await repository.page_articles(conn, filters=filters, after=after, limit=limit)
    more = len(rows) > limit
    rows = rows[:limit]
    now = datetime.now(UTC)
    by_article: dict[uuid.UUID, list[dict[str, Any]]] = {}
    for t in await repository.translations_of(conn, [r.id for r in rows]):
        by_article.setdefault(t.article_id, []).append({"locale": t.locale, "title": t.draft_title,
                                                        "status": t.status})
    items = []
    for r in rows:
        item = _article_fields(r, now)
        item.pop("created_by", None)
        item["translations"] = by_article.get(r.id, [])
        items.append(item)
    return items, (rows[-1] if more and rows else None)


async def versions(conn: AsyncConnection, *, article_id: uuid.UUID, locale: str | None, before: int | None,
                   limit: int) -> tuple[list[dict[str, Any]], int | None]:
    if await repository.get_article(conn, article_id) is None:
        raise not_found("article")
    rows = await repository.page_versions(conn, article_id=article_id, locale=locale, before=before, limit=limit)
    more = len(rows) > limit
    rows = rows[:limit]
    return [dict(r._mapping) for r in rows], (rows[-1].number if more and rows else None)


async def version(conn: AsyncConnection, *, article_id: uuid.UUID, number: int) -> dict[str, Any]:
    row = await repository.get_version(conn, article_id=article_id, number=number)
    if row is None:
        raise not_found("version")
    return dict(row._mapping)


# --- public reads --------------------------------------------------------------------------------------------


async def public_article(conn: AsyncConnection, *, article_id: uuid.UUID, locale: str | None,
                         accept_language: str | None, visible_to: tuple[str, ...]) -> dict[str, Any]:
    """The published translation a reader may see; anything else (a draft, an archived or
    hidden article, an unknown id) is the same 404: existence is private."""
    available = await repository.readable_locales(conn, article_id=article_id, visible_to=visible_to)
    if not available:
        raise not_found("article")
    chosen = locale if locale is not None else rules.preferred_locale(available, accept_language)
    row = None if chosen is None else await repository.public_article(conn, article_id=article_id, locale=chosen,
                                                                      visible_to=visible_to)
    if row is None:
        raise not_found("article")
    read = dict(row._mapping)
    read["labels"] = list(read["labels"] or [])
    read["available_locales"] = available
    return read


# --- attachments ----------------------------------------------------------------------------------------------


def attachment_url(article_id: uuid.UUID, attachment_id: uuid.UUID) -> str:
    return f"/v1/kb/public/articles/{article_id}/attachments/{attachment_id}"


def attachment_read(row: Any) -> dict[str, Any]:
    read = {k: v for k, v in row._mapping.items() if k != "content"}
    read["url"] = attachment_url(row.article_id, row.id)
    return read


async def add_attachment(conn: AsyncConnection, *, article_id: uuid.UUID, filename: str,
                         declared_type: str | None, content: bytes, actor: str) -> dict[str, Any]:
    """Store one file under the ticket attachment rules (size, count, total, no executables).
    The stored type is what the bytes are when they are a raster image, so a browser shows it
    inline; anything else is stored with a safe declared type and always served as a download."""
    await _locked_article(conn, article_id)
    name = attachment_rules.safe_filename(filename)
    if not content:
        raise _invalid("body", "the file is empty", "empty")
    reason = attachment_rules.refused_reason(name, declared_type, len(content))
    if reason:
        raise _invalid("body", reason, "refused")
    count, total = await repository.attachment_totals(conn, article_id)
    if count >= attachment_rules.MAX_ATTACHMENTS:
        raise _conflict(f"An article has at most {attachment_rules.MAX_ATTACHMENTS} attachments.")
    if total + len(content) > attachment_rules.MAX_MESSAGE_ATTACHMENT_BYTES:
        raise _conflict(f"An article's attachments hold at most {attachment_rules.MAX_MESSAGE_ATTACHMENT_BYTES} bytes.")
    content_type = attachment_rules.sniff_image_type(content) or _download_type(declared_type, name)
    row = await repository.insert_attachment(conn, attachment_id=uuid.uuid4(), article_id=article_id, filename=name,
                                             content_type=content_type, size=len(content),
                                             sha256=hashlib.sha256(content).hexdigest(), content=content,
                                             created_by=actor)
    return attachment_read(row)


def _download_type(declared: str | None, filename: str) -> str:
    content_type = attachment_rules.safe_content_type(declared, filename)
    # a file that claims to be an image but is not one (or is SVG) is never shown inline
    return "application/octet-stream" if content_type.startswith("image/") else content_type


def download_headers(row: Any, *, cache_control: str) -> tuple[str, dict[str, str]]:
    """The media type and headers a stored file is served with: raster images (sniffed at
    upload) inline with their type; everything else as an ``application/octet-stream``
    download; never sniffed by the browser, never run as a page (CSP sandbox)."""
    inline = attachment_rules.sniff_image_type(bytes(row.content[:16])) is not None
    media_type = row.content_type if inline else "application/octet-stream"
    headers = {
        "Content-Disposition": attachment_rules.content_disposition(row.filename, inline=inline),
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": attachment_rules.DOWNLOAD_CSP,
        "Cache-Control": cache_control,
        "ETag": f'"{row.sha256}"',
    }
    if not inline:
        headers["X-Attachment-Content-Type"] = attachment_rules.safe_content_type(row.content_type, row.filename)
    if cache_control.startswith("public"):
        # a public article's images are embedded by help-center pages on other sites (every other
        # answer is same-origin: helpdesk_common/edge.py)
        headers["Cross-Origin-Resource-Policy"] = "cross-origin"
    return media_type, headers
