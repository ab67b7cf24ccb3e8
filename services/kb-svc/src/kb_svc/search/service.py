"""Search: from a query string to a ranked, visibility-checked page of snippets.

The query is parsed into terms (:mod:`.text`), English words the index has never seen are
corrected from the vocabulary, each term becomes a tsquery of its alternatives, and the
repository ranks the documents the caller may see. Only the page's rows get snippets.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson

from helpdesk_common.problems import Problem

from . import repository
from .text import (EN_STOPWORDS, QueryTerm, choose_corrections, needs_correction, parse_query, snippet, tsquery_text,
                   with_corrections)

def invalid(field: str, message: str, code: str = "invalid") -> Problem:
    return Problem(422, "validation-error", "Invalid search request", message,
                   errors=[{"field": field, "message": message, "code": code}])


def encode_cursor(score: Decimal, article_id: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([str(score), str(article_id)])).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[Decimal, uuid.UUID]:
    """A ``next_cursor`` back into the last row's (score, article id); a 400 ``invalid-cursor``
    problem (as every service answers a cursor it did not issue) for anything else."""
    try:
        score, article_id = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        parsed = Decimal(score), uuid.UUID(article_id)
        if not parsed[0].is_finite():
            raise ValueError("not a finite score")
        return parsed
    except (ValueError, TypeError, AttributeError, binascii.Error, InvalidOperation, orjson.JSONDecodeError):
        raise Problem(400, "invalid-cursor", "Invalid cursor",
                      "The cursor is not one this service issued.") from None


def article_url(*, article_id: uuid.UUID, locale: str, visibility: str) -> str:
    """Where a reader opens the hit: the public read for public and customer articles (a
    customer token opens the latter), the staff read for agents-only ones."""
    if visibility == "agents":
        return f"/v1/kb/articles/{article_id}?locale={locale}"
    return f"/v1/kb/public/articles/{article_id}?locale={locale}"


async def prepared_terms(conn: Any, terms: Sequence[QueryTerm]) -> list[tuple[str, str, str]]:
    """Each term's ``(configuration, tsquery text, the same restricted to the title)``: English words missing from the vocabulary
    widened with their nearest vocabulary words; Chinese words missing from it widened with their
    bigrams. One vocabulary look-up per language, trigram look-ups only for unknown English."""
    english = [t.source for t in terms if needs_correction(t)]
    chinese = [alt for t in terms if t.language == "zh" for alt in t.alternatives if len(alt) >= 3]
    known_en = await repository.known_words(conn, language="en", words=english)
    known_zh = await repository.known_words(conn, language="zh", words=chinese)
    unknown_zh = set(chinese) - known_zh
    out: list[tuple[str, str, str]] = []
    threshold_set = False
    for term in terms:
        if term.language == "en":
            if needs_correction(term) and term.source not in known_en:
                if not threshold_set:
                    await repository.set_similarity_threshold(conn)
                    threshold_set = True
                similar = await repository.similar_words(conn, word=term.source)
                term = with_corrections(term, choose_corrections(term.source, similar))
            out.append(("english", tsquery_text(term), tsquery_text(term, weight="A")))
        else:
            out.append(("simple", tsquery_text(term, unknown_zh), tsquery_text(term, unknown_zh, weight="A")))
    return out


def highlight_words(terms: Sequence[QueryTerm]) -> list[str]:
    """The words a snippet marks: every alternative's words (inflections are matched by the
    snippet itself)."""
    words: list[str] = []
    for term in terms:
        for alternative in term.alternatives:
            if term.language == "en":
                words.extend(w for w in alternative.split() if w not in EN_STOPWORDS)
            else:
                words.append(alternative)
    return list(dict.fromkeys(words))


@dataclass(frozen=True)
class SearchRequest:
    q: str
    visibilities: tuple[str, ...]
    locale: str | None = None
    fallback: bool = False
    category_id: uuid.UUID | None = None
    section_id: uuid.UUID | None = None
    label: str | None = None
    visibility: str | None = None
    limit: int = 10
    cursor: str | None = None
    #: the part of ``q`` that matters most (a suggestion's subject): its terms weigh double and
    #: alone decide the title boosts (repository.ranked's ``core``)
    core: str | None = None


async def search(conn: Any, request: SearchRequest) -> dict[str, Any]:
    """One page of ``{"items": [...], "next_cursor"}`` for ``request``."""
    after = decode_cursor(request.cursor) if request.cursor else None
    terms = parse_query(request.q)
    if not terms or (request.visibility is not None and request.visibility not in request.visibilities):
        return {"items": [], "next_cursor": None}
    core = None
    if request.core is not None:
        wanted = {(t.language, t.source) for t in parse_query(request.core)}
        core = [(t.language, t.source) in wanted for t in terms]
    term_queries = await prepared_terms(conn, terms)
    locale_mode = "any" if request.locale is None else "prefer" if request.fallback else "only"
    rows = await repository.ranked(
        conn, term_queries=term_queries, visibilities=request.visibilities, locale=request.locale,
        locale_mode=locale_mode, category_id=request.category_id, section_id=request.section_id,
        label=request.label, visibility=request.visibility, after=after, limit=request.limit + 1, core=core)
    more = len(rows) > request.limit
    rows = rows[:request.limit]
    words = highlight_words(terms)
    items = [{
        "id": row.article_id, "title": row.title, "snippet": snippet(row.body_text, words),
        "score": float(row.score), "locale": row.locale, "section_id": row.section_id,
        "category_id": row.category_id, "labels": list(row.labels), "visibility": row.visibility,
        "url": article_url(article_id=row.article_id, locale=row.locale, visibility=row.visibility),
    } for row in rows]
    return {"items": items, "next_cursor": encode_cursor(rows[-1].score, rows[-1].article_id) if more else None}
