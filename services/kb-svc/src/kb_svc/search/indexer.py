"""Keeping the search documents in step with the published content.

The content package calls :func:`index_translation` in the transaction that publishes,
unpublishes, archives or restores a translation, or changes a published article's visibility,
labels or place, so search never shows what customers may no longer see.
"""

from __future__ import annotations

import uuid
from typing import Any

from . import repository
from .text import analyze

#: the part of a body that is indexed: PostgreSQL caps a tsvector at 1 MB, which a very long
#: Chinese body (its words plus a bigram per character) passes near 100,000 characters. An
#: article that long is a manual, not an answer; its opening is what search and snippets use.
INDEXED_BODY_CHARS = 40_000


def document_params(*, article_id: uuid.UUID, locale: str, title: str, body_text: str, labels: list[str],
                    visibility: str, section_id: uuid.UUID, category_id: uuid.UUID,
                    published_at: Any = None) -> dict[str, Any]:
    """The parameters of :data:`repository.UPSERT_DOCUMENT` for one translation (pure: the
    bench bulk-loads with it)."""
    body_text = body_text[:INDEXED_BODY_CHARS]
    title_terms = analyze(title)
    label_terms = analyze(" ".join(labels))
    body_terms = analyze(body_text)
    return {
        "article_id": article_id, "locale": locale, "visibility": visibility, "labels": list(labels),
        "section_id": section_id, "category_id": category_id, "title": title, "body_text": body_text,
        "published_at": published_at,
        "title_latin": title_terms.latin, "title_zh": title_terms.chinese_text,
        "labels_latin": label_terms.latin, "labels_zh": label_terms.chinese_text,
        "body_latin": body_terms.latin, "body_zh": body_terms.chinese_text,
        "bigrams": " ".join(title_terms.bigrams + body_terms.bigrams),
        "words_en": sorted(title_terms.en_words | label_terms.en_words | body_terms.en_words),
        "words_zh": sorted(title_terms.zh_words | label_terms.zh_words | body_terms.zh_words),
    }


def is_searchable(row: Any) -> bool:
    """Only a published translation of an active article is found."""
    return (row is not None and row.status == "published" and row.state == "active"
            and row.published_title is not None)


async def index_translation(session: Any, *, article_id: uuid.UUID, locale: str) -> None:
    """Write or delete the search document of one translation from its published columns, and
    move the vocabulary's counts along (in the caller's transaction)."""
    row = await repository.source(session, article_id=article_id, locale=locale)
    old = await repository.lock_document_words(session, article_id=article_id, locale=locale)
    old_en = set(old.words_en) if old else set()
    old_zh = set(old.words_zh) if old else set()
    if not is_searchable(row):
        if old is not None:
            await repository.delete_document(session, article_id=article_id, locale=locale)
            await repository.adjust_vocabulary(session, language="en", added=(), removed=old_en)
            await repository.adjust_vocabulary(session, language="zh", added=(), removed=old_zh)
        return
    params = document_params(article_id=article_id, locale=locale, title=row.published_title,
                             body_text=row.published_body_text or "", labels=list(row.labels or []),
                             visibility=row.visibility, section_id=row.section_id, category_id=row.category_id,
                             published_at=row.published_at)
    await repository.upsert_document(session, params)
    new_en, new_zh = set(params["words_en"]), set(params["words_zh"])
    await repository.adjust_vocabulary(session, language="en", added=new_en - old_en, removed=old_en - new_en)
    await repository.adjust_vocabulary(session, language="zh", added=new_zh - old_zh, removed=old_zh - new_zh)
