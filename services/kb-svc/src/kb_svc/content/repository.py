"""The only place with SQL for content (categories, sections, articles, translations, versions,
attachments). Plain statements on the request's AsyncConnection."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

# --- categories and sections -------------------------------------------------------------------

_CATEGORY = "id, name, locale, description, position, version, created_at, updated_at"
_SECTION = "id, category_id, name, locale, description, position, version, created_at, updated_at"


async def next_category_position(conn: AsyncConnection) -> int:
    return int(await conn.scalar(text("SELECT coalesce(max(position), -10) + 10 FROM kb_categories")))


async def next_section_position(conn: AsyncConnection, category_id: uuid.UUID) -> int:
    return int(await conn.scalar(text(
        "SELECT coalesce(max(position), -10) + 10 FROM kb_sections WHERE category_id = :c"), {"c": category_id}))


async def insert_category(conn: AsyncConnection, *, category_id: uuid.UUID, name: str, locale: str,
                          description: str, position: int) -> Any:
    return (await conn.execute(text(
        f"INSERT INTO kb_categories (id, name, locale, description, position) VALUES (:id, :n, :l, :d, :p) "
        f"RETURNING {_CATEGORY}"), {"id": category_id, "n": name, "l": locale, "d": description, "p": position})).one()


async def insert_section(conn: AsyncConnection, *, section_id: uuid.UUID, category_id: uuid.UUID, name: str,
                         locale: str, description: str, position: int) -> Any:
    return (await conn.execute(text(
        f"INSERT INTO kb_sections (id, category_id, name, locale, description, position) "
        f"VALUES (:id, :c, :n, :l, :d, :p) RETURNING {_SECTION}"),
        {"id": section_id, "c": category_id, "n": name, "l": locale, "d": description, "p": position})).one()


async def get_category(conn: AsyncConnection, category_id: uuid.UUID, *, lock: bool = False) -> Any:
    return (await conn.execute(text(f"SELECT {_CATEGORY} FROM kb_categories WHERE id = :id"
                                    + (" FOR UPDATE" if lock else "")), {"id": category_id})).first()


async def get_section(conn: AsyncConnection, section_id: uuid.UUID, *, lock: bool = False) -> Any:
    return (await conn.execute(text(f"SELECT {_SECTION} FROM kb_sections WHERE id = :id"
                                    + (" FOR UPDATE" if lock else "")), {"id": section_id})).first()


async def update_category(conn: AsyncConnection, category_id: uuid.UUID, changes: dict[str, Any]) -> Any:
    sets = ", ".join(f"{column} = :{column}" for column in changes)
    return (await conn.execute(text(
        f"UPDATE kb_categories SET {sets}, version = version + 1, updated_at = now() WHERE id = :id "
        f"RETURNING {_CATEGORY}"), {**changes, "id": category_id})).one()


async def update_section(conn: AsyncConnection, section_id: uuid.UUID, changes: dict[str, Any]) -> Any:
    sets = ", ".join(f"{column} = :{column}" for column in changes)
    return (await conn.execute(text(
        f"UPDATE kb_sections SET {sets}, version = version + 1, updated_at = now() WHERE id = :id "
        f"RETURNING {_SECTION}"), {**changes, "id": section_id})).one()


async def category_has_sections(conn: AsyncConnection, category_id: uuid.UUID) -> bool:
    return bool(await conn.scalar(text("SELECT 1 FROM kb_sections WHERE category_id = :c LIMIT 1"),
                                  {"c": category_id}))


async def section_has_articles(conn: AsyncConnection, section_id: uuid.UUID) -> bool:
    return bool(await conn.scalar(text("SELECT 1 FROM kb_articles WHERE section_id = :s LIMIT 1"), {"s": section_id}))


async def delete_category(conn: AsyncConnection, category_id: uuid.UUID) -> None:
    await conn.execute(text("DELETE FROM kb_categories WHERE id = :id"), {"id": category_id})


async def delete_section(conn: AsyncConnection, section_id: uuid.UUID) -> None:
    await conn.execute(text("DELETE FROM kb_sections WHERE id = :id"), {"id": section_id})


async def page_categories(conn: AsyncConnection, *, locale: str | None, after: tuple[int, uuid.UUID] | None,
                          limit: int, visible_to: tuple[str, ...] | None = None) -> list[Any]:
    """Categories by (position, id); ``visible_to``: only those holding a published article of
    those visibilities (public listings never name an empty or staff-only category)."""
    where, params = _filters(locale=locale, after=after, limit=limit)
    if visible_to is not None:
        where.append("EXISTS (SELECT 1 FROM kb_sections s JOIN kb_articles a ON a.section_id = s.id "
                     "JOIN kb_article_translations t ON t.article_id = a.id WHERE s.category_id = kb_categories.id "
                     "AND a.state = 'active' AND t.status = 'published' AND a.visibility = ANY(:vis))")
        params["vis"] = list(visible_to)
    sql = f"SELECT {_CATEGORY} FROM kb_categories {_where(where)} ORDER BY position, id LIMIT :n"
    return list((await conn.execute(text(sql), params)).all())


async def page_sections(conn: AsyncConnection, *, category_id: uuid.UUID | None, locale: str | None,
                        after: tuple[int, uuid.UUID] | None, limit: int,
                        visible_to: tuple[str, ...] | None = None) -> list[Any]:
    where, params = _filters(locale=locale, after=after, limit=limit)
    if category_id is not None:
        where.append("category_id = :c")
        params["c"] = category_id
    if visible_to is not None:
        where.append("EXISTS (SELECT 1 FROM kb_articles a JOIN kb_article_translations t ON t.article_id = a.id "
                     "WHERE a.section_id = kb_sections.id AND a.state = 'active' AND t.status = 'published' "
                     "AND a.visibility = ANY(:vis))")
        params["vis"] = list(visible_to)
    sql = f"SELECT {_SECTION} FROM kb_sections {_where(where)} ORDER BY position, id LIMIT :n"
    return list((await conn.execute(text(sql), params)).all())


def _filters(*, locale: str | None, after: tuple[int, uuid.UUID] | None, limit: int) -> tuple[list[str], dict]:
    where: list[str] = []
    params: dict[str, Any] = {"n": limit + 1}
    if locale is not None:
        where.append("locale = :l")
        params["l"] = locale
    if after is not None:
        where.append("(position, id) > (:p, :i)")
        params.update(p=after[0], i=after[1])
    return where, params


def _where(clauses: list[str]) -> str:
    return ("WHERE " + " AND ".join(clauses)) if clauses else ""


# --- articles ------------------------------------------------------------------------------------

_ARTICLE = ("a.id, a.section_id, s.category_id, a.owner_id, a.visibility, a.labels, a.review_at, a.state, "
            "a.version, a.created_by, a.created_at, a.updated_at")
_TRANSLATION = ("locale, status, draft_title, draft_body_html, draft_updated_by, draft_updated_at, published_title, "
                "published_body_html, published_version, published_at, published_by")


async def insert_article(conn: AsyncConnection, *, article_id: uuid.UUID, section_id: uuid.UUID, owner_id: str,
                         visibility: str, labels: list[str], review_at: datetime | None, created_by: str) -> None:
    await conn.execute(text(
        "INSERT INTO kb_articles (id, section_id, owner_id, visibility, labels, review_at, created_by) "
        "VALUES (:id, :s, :o, :v, :labels, :r, :by)"),
        {"id": article_id, "s": section_id, "o": owner_id, "v": visibility, "labels": labels, "r": review_at,
         "by": created_by})


async def get_article(conn: AsyncConnection, article_id: uuid.UUID, *, lock: bool = False) -> Any:
    """The article with its category; ``lock``: FOR UPDATE of the article row, which every write
    of the article or its translations takes first (versions and version numbers stay in order)."""
    return (await conn.execute(text(
        f"SELECT {_ARTICLE} FROM kb_articles a JOIN kb_sections s ON s.id = a.section_id WHERE a.id = :id"
        + (" FOR UPDATE OF a" if lock else "")), {"id": article_id})).first()


async def update_article(conn: AsyncConnection, article_id: uuid.UUID, changes: dict[str, Any]) -> None:
    """Apply ``changes`` (possibly none) and bump the version: every write of an article or its
    translations changes its ETag."""
    sets = "".join(f"{column} = :{column}, " for column in changes)
    await conn.execute(text(f"UPDATE kb_articles SET {sets}version = version + 1, updated_at = now() WHERE id = :id"),
                       {**changes, "id": article_id})


async def translations(conn: AsyncConnection, article_id: uuid.UUID) -> list[Any]:
    return list((await conn.execute(text(
        f"SELECT {_TRANSLATION} FROM kb_article_translations WHERE article_id = :a ORDER BY locale"),
        {"a": article_id})).all())


async def translations_of(conn: AsyncConnection, article_ids: list[uuid.UUID]) -> list[Any]:
    return list((await conn.execute(text(
        "SELECT article_id, locale, draft_title, status FROM kb_article_translations "
        "WHERE article_id = ANY(:ids) ORDER BY article_id, locale"), {"ids": article_ids})).all())


async def get_translation(conn: AsyncConnection, article_id: uuid.UUID, locale: str) -> Any:
    return (await conn.execute(text(
        f"SELECT {_TRANSLATION} FROM kb_article_translations WHERE article_id = :a AND locale = :l"),
        {"a": article_id, "l": locale})).first()


async def upsert_draft(conn: AsyncConnection, *, article_id: uuid.UUID, locale: str, title: str, body_html: str,
                       by: str) -> bool:
    """Write the draft of one translation; True when the translation is new."""
    return bool(await conn.scalar(text(
        "INSERT INTO kb_article_translations (article_id, locale, draft_title, draft_body_html, draft_updated_by) "
        "VALUES (:a, :l, :t, :b, :by) ON CONFLICT (article_id, locale) DO UPDATE SET "
        "draft_title = excluded.draft_title, draft_body_html = excluded.draft_body_html, "
        "draft_updated_by = excluded.draft_updated_by, draft_updated_at = now() RETURNING xmax = 0"),
        {"a": article_id, "l": locale, "t": title, "b": body_html, "by": by}))


async def publish(conn: AsyncConnection, *, article_id: uuid.UUID, locale: str, body_html: str, body_text: str,
                  by: str) -> Any:
    """Copy the draft to the published columns (the given sanitised HTML and its text)."""
    return (await conn.execute(text(
        "UPDATE kb_article_translations SET published_title = draft_title, published_body_html = :h, "
        "published_body_text = :txt, published_version = coalesce(published_version, 0) + 1, "
        "published_at = now(), published_by = :by, status = 'published' "
        "WHERE article_id = :a AND locale = :l RETURNING published_title, published_version, published_at"),
        {"a": article_id, "l": locale, "h": body_html, "txt": body_text, "by": by})).one()


async def unpublish(conn: AsyncConnection, *, article_id: uuid.UUID, locale: str) -> None:
    """Readers lose the translation: its published copy is cleared (the history keeps it), its
    published version number stays so a later publish counts on from it."""
    await conn.execute(text(
        "UPDATE kb_article_translations SET status = 'unpublished', published_title = NULL, "
        "published_body_html = NULL, published_body_text = NULL WHERE article_id = :a AND locale = :l"),
        {"a": article_id, "l": locale})


async def delete_translation(conn: AsyncConnection, *, article_id: uuid.UUID, locale: str) -> None:
    await conn.execute(text("DELETE FROM kb_article_translations WHERE article_id = :a AND locale = :l"),
                       {"a": article_id, "l": locale})


async def bump_published_version(conn: AsyncConnection, *, article_id: uuid.UUID, locale: str) -> int:
    return int(await conn.scalar(text(
        "UPDATE kb_article_translations SET published_version = published_version + 1, published_at = now() "
        "WHERE article_id = :a AND locale = :l RETURNING published_version"), {"a": article_id, "l": locale}))


async def add_version(conn: AsyncConnection, *, article_id: uuid.UUID, locale: str, action: str, title: str,
                      body_html: str, actor: str) -> int:
    """Append one history row; numbers count per article (1, 2, ...) across its locales, so
    ``/versions/{n}`` names one entry. The caller holds the article's row lock."""
    return int(await conn.scalar(text(
        "INSERT INTO kb_article_versions (article_id, locale, number, action, title, body_html, actor) "
        "SELECT :a, :l, coalesce(max(number), 0) + 1, :act, :t, :b, :actor FROM kb_article_versions "
        "WHERE article_id = :a RETURNING number"),
        {"a": article_id, "l": locale, "act": action, "t": title, "b": body_html, "actor": actor}))


async def page_versions(conn: AsyncConnection, *, article_id: uuid.UUID, locale: str | None, before: int | None,
                        limit: int) -> list[Any]:
    where = ["article_id = :a"]
    params: dict[str, Any] = {"a": article_id, "n": limit + 1}
    if locale is not None:
        where.append("locale = :l")
        params["l"] = locale
    if before is not None:
        where.append("number < :before")
        params["before"] = before
    return list((await conn.execute(text(
        f"SELECT number, locale, action, title, actor, at FROM kb_article_versions {_where(where)} "
        f"ORDER BY number DESC LIMIT :n"), params)).all())


async def get_version(conn: AsyncConnection, *, article_id: uuid.UUID, number: int) -> Any:
    return (await conn.execute(text(
        "SELECT number, locale, action, title, body_html, actor, at FROM kb_article_versions "
        "WHERE article_id = :a AND number = :n"), {"a": article_id, "n": number})).first()


async def page_articles(conn: AsyncConnection, *, filters: dict[str, Any], after: tuple[datetime, uuid.UUID] | None,
                        limit: int) -> list[Any]:
    """Articles newest first, by (created_at, id) descending, with the staff list's filters."""
    where: list[str] = []
    params: dict[str, Any] = {"n": limit + 1}
    simple = {"section_id": "a.section_id", "category_id": "s.category_id", "state": "a.state",
              "owner_id": "a.owner_id", "visibility": "a.visibility"}
    for key, column in simple.items():
        if filters.get(key) is not None:
            where.append(f"{column} = :{key}")
            params[key] = filters[key]
    if filters.get("label") is not None:
        where.append("a.labels @> ARRAY[CAST(:label AS text)]")
        params["label"] = filters["label"]
    if filters.get("locale") is not None or filters.get("status") is not None:
        clause = "EXISTS (SELECT 1 FROM kb_article_translations t WHERE t.article_id = a.id"
        if filters.get("locale") is not None:
            clause += " AND t.locale = :locale"
            params["locale"] = filters["locale"]
        if filters.get("status") is not None:
            clause += " AND t.status = :status"
            params["status"] = filters["status"]
        where.append(clause + ")")
    if filters.get("review_due") is True:
        where.append("a.review_at IS NOT NULL AND a.review_at <= now()")
    elif filters.get("review_due") is False:
        where.append("(a.review_at IS NULL OR a.review_at > now())")
    if after is not None:
        where.append("(a.created_at, a.id) < (:at, :aid)")
        params.update(at=after[0], aid=after[1])
    return list((await conn.execute(text(
        f"SELECT {_ARTICLE} FROM kb_articles a JOIN kb_sections s ON s.id = a.section_id {_where(where)} "
        f"ORDER BY a.created_at DESC, a.id DESC LIMIT :n"), params)).all())


# --- public reads ----------------------------------------------------------------------------------

#: the start of a published text a list shows under each title
EXCERPT_CHARS = 200


async def readable_locales(conn: AsyncConnection, *, article_id: uuid.UUID, visible_to: tuple[str, ...]) -> list[str]:
    """The published translations of an active article a reader of ``visible_to`` may read
    (none: the article is not theirs to see, or does not exist)."""
    return list((await conn.scalars(text(
        "SELECT t.locale FROM kb_articles a JOIN kb_article_translations t ON t.article_id = a.id "
        "WHERE a.id = :a AND a.state = 'active' AND a.visibility = ANY(:vis) AND t.status = 'published' "
        "ORDER BY t.locale"), {"a": article_id, "vis": list(visible_to)})).all())


async def public_article(conn: AsyncConnection, *, article_id: uuid.UUID, locale: str,
                         visible_to: tuple[str, ...]) -> Any:
    return (await conn.execute(text(
        "SELECT a.id, t.locale, t.published_title AS title, t.published_body_html AS body_html, a.section_id, "
        "s.name AS section_name, s.category_id, c.name AS category_name, a.labels, a.visibility, "
        "t.published_version AS version, t.published_at, a.version AS article_version "
        "FROM kb_articles a JOIN kb_sections s ON s.id = a.section_id JOIN kb_categories c ON c.id = s.category_id "
        "JOIN kb_article_translations t ON t.article_id = a.id AND t.locale = :l "
        "WHERE a.id = :a AND a.state = 'active' AND t.status = 'published' AND a.visibility = ANY(:vis)"),
        {"a": article_id, "l": locale, "vis": list(visible_to)})).first()


async def readable_article(conn: AsyncConnection, *, article_id: uuid.UUID, visible_to: tuple[str, ...]) -> Any:
    """The article when a reader of ``visible_to`` may read at least one of its translations."""
    return (await conn.execute(text(
        "SELECT a.id, a.visibility FROM kb_articles a WHERE a.id = :a AND a.state = 'active' "
        "AND a.visibility = ANY(:vis) AND EXISTS (SELECT 1 FROM kb_article_translations t "
        "WHERE t.article_id = a.id AND t.status = 'published')"),
        {"a": article_id, "vis": list(visible_to)})).first()


async def page_public_articles(conn: AsyncConnection, *, section_id: uuid.UUID, locale: str | None,
                               visible_to: tuple[str, ...], after: tuple[datetime, uuid.UUID] | None,
                               limit: int, preferred: str | None = None) -> list[Any]:
    """Published translations in a section, newest publish first; without ``locale``, one row
    per article: the ``preferred`` locale, else one of the same language, else English, else
    the first in locale order."""
    params: dict[str, Any] = {"s": section_id, "vis": list(visible_to), "n": limit + 1,
                              "pref": preferred or "", "lang": (preferred or "").split("-")[0]}
    where = ["a.section_id = :s", "a.state = 'active'", "t.status = 'published'", "a.visibility = ANY(:vis)"]
    if locale is not None:
        where.append("t.locale = :l")
        params["l"] = locale
    inner = (f"SELECT DISTINCT ON (a.id) a.id, t.locale, t.published_title AS title, "
             f"left(t.published_body_text, {EXCERPT_CHARS}) AS excerpt, a.labels, t.published_at "
             f"FROM kb_articles a JOIN kb_article_translations t ON t.article_id = a.id {_where(where)} "
             f"ORDER BY a.id, t.locale = :pref DESC, split_part(t.locale, '-', 1) = :lang DESC, "
             f"t.locale = 'en' DESC, t.locale")
    outer_where = ""
    if after is not None:
        outer_where = "WHERE (published_at, id) < (:at, :aid)"
        params.update(at=after[0], aid=after[1])
    return list((await conn.execute(text(
        f"SELECT * FROM ({inner}) x {outer_where} ORDER BY published_at DESC, id DESC LIMIT :n"), params)).all())


# --- attachments -------------------------------------------------------------------------------------

_ATTACHMENT = "id, article_id, filename, content_type, size, sha256, created_by, created_at"


async def attachment_totals(conn: AsyncConnection, article_id: uuid.UUID) -> tuple[int, int]:
    row = (await conn.execute(text(
        "SELECT count(*), coalesce(sum(size), 0) FROM kb_article_attachments WHERE article_id = :a"),
        {"a": article_id})).one()
    return int(row[0]), int(row[1])


async def insert_attachment(conn: AsyncConnection, *, attachment_id: uuid.UUID, article_id: uuid.UUID,
                            filename: str, content_type: str, size: int, sha256: str, content: bytes,
                            created_by: str) -> Any:
    return (await conn.execute(text(
        f"INSERT INTO kb_article_attachments (id, article_id, filename, content_type, size, sha256, content, "
        f"created_by) VALUES (:id, :a, :f, :ct, :size, :sha, :content, :by) RETURNING {_ATTACHMENT}"),
        {"id": attachment_id, "a": article_id, "f": filename, "ct": content_type, "size": size, "sha": sha256,
         "content": content, "by": created_by})).one()


async def attachments(conn: AsyncConnection, article_id: uuid.UUID) -> list[Any]:
    return list((await conn.execute(text(
        f"SELECT {_ATTACHMENT} FROM kb_article_attachments WHERE article_id = :a ORDER BY created_at, id"),
        {"a": article_id})).all())


async def attachment_with_content(conn: AsyncConnection, *, article_id: uuid.UUID, attachment_id: uuid.UUID) -> Any:
    return (await conn.execute(text(
        f"SELECT {_ATTACHMENT}, content FROM kb_article_attachments WHERE article_id = :a AND id = :id"),
        {"a": article_id, "id": attachment_id})).first()


async def delete_attachment(conn: AsyncConnection, *, article_id: uuid.UUID, attachment_id: uuid.UUID) -> bool:
    return bool(await conn.scalar(text(
        "DELETE FROM kb_article_attachments WHERE article_id = :a AND id = :id RETURNING 1"),
        {"a": article_id, "id": attachment_id}))
