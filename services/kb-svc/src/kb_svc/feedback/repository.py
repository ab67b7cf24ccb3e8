"""SQL of feedback: votes, view counts, the review queue."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection


async def count_view(conn: AsyncConnection, *, article_id: uuid.UUID, locale: str) -> None:
    """One more read of a translation: one UPSERT (a row per article and locale)."""
    await conn.execute(text(
        "INSERT INTO kb_article_view_counts (article_id, locale, views) VALUES (:a, :l, 1) "
        "ON CONFLICT (article_id, locale) DO UPDATE SET views = kb_article_view_counts.views + 1, "
        "last_viewed_at = now()"), {"a": article_id, "l": locale})


async def readable_translation(conn: AsyncConnection, *, article_id: uuid.UUID, locale: str | None,
                               visible_to: tuple[str, ...]) -> Any:
    """A published translation of an active article the viewer may read: ``locale``'s, or the
    first published one by locale."""
    return (await conn.execute(text(
        "SELECT a.id, t.locale FROM kb_articles a JOIN kb_article_translations t ON t.article_id = a.id "
        "WHERE a.id = :a AND a.state = 'active' AND a.visibility = ANY(:vis) AND t.status = 'published' "
        "AND (CAST(:l AS text) IS NULL OR t.locale = :l) ORDER BY t.locale LIMIT 1"),
        {"a": article_id, "l": locale, "vis": list(visible_to)})).first()


async def lock_vote(conn: AsyncConnection, *, article_id: uuid.UUID, voter: str) -> Any:
    return (await conn.execute(text(
        "SELECT locale, helpful, comment FROM kb_article_votes WHERE article_id = :a AND voter = :v FOR UPDATE"),
        {"a": article_id, "v": voter})).first()


async def upsert_vote(conn: AsyncConnection, *, article_id: uuid.UUID, voter: str, locale: str, helpful: bool,
                      comment: str | None, viewer_kind: str) -> bool:
    """The viewer's vote (a second one replaces the first); True when it was the first."""
    return (await conn.execute(text(
        "INSERT INTO kb_article_votes (article_id, voter, locale, helpful, comment, viewer_kind) "
        "VALUES (:a, :v, :l, :h, :c, :k) ON CONFLICT (article_id, voter) DO UPDATE SET locale = EXCLUDED.locale, "
        "helpful = EXCLUDED.helpful, comment = EXCLUDED.comment, viewer_kind = EXCLUDED.viewer_kind, "
        "updated_at = now() RETURNING (xmax = 0) AS inserted"),
        {"a": article_id, "v": voter, "l": locale, "h": helpful, "c": comment, "k": viewer_kind})).scalar_one()


async def tallies(conn: AsyncConnection, article_id: uuid.UUID) -> Any:
    return (await conn.execute(text(
        "SELECT count(*) FILTER (WHERE helpful) AS helpful, count(*) FILTER (WHERE NOT helpful) AS not_helpful "
        "FROM kb_article_votes WHERE article_id = :a"), {"a": article_id})).one()


async def summary(conn: AsyncConnection, article_id: uuid.UUID, *, comments: int) -> dict[str, Any] | None:
    """An article's votes and views per locale and its latest comments; None for no article."""
    if (await conn.execute(text("SELECT 1 FROM kb_articles WHERE id = :a"), {"a": article_id})).first() is None:
        return None
    per_locale = (await conn.execute(text(
        "SELECT l.locale, COALESCE(v.views, 0) AS views, "
        "(SELECT count(*) FROM kb_article_votes x WHERE x.article_id = :a AND x.locale = l.locale AND x.helpful) "
        "  AS helpful, "
        "(SELECT count(*) FROM kb_article_votes x WHERE x.article_id = :a AND x.locale = l.locale AND NOT x.helpful) "
        "  AS not_helpful "
        "FROM (SELECT locale FROM kb_article_translations WHERE article_id = :a "
        "      UNION SELECT locale FROM kb_article_view_counts WHERE article_id = :a "
        "      UNION SELECT locale FROM kb_article_votes WHERE article_id = :a) l "
        "LEFT JOIN kb_article_view_counts v ON v.article_id = :a AND v.locale = l.locale ORDER BY l.locale"),
        {"a": article_id})).mappings().all()
    latest = (await conn.execute(text(
        "SELECT locale, helpful, comment, viewer_kind, updated_at AS at FROM kb_article_votes "
        "WHERE article_id = :a AND comment IS NOT NULL ORDER BY updated_at DESC, voter LIMIT :n"),
        {"a": article_id, "n": comments})).mappings().all()
    return {"locales": [dict(r) for r in per_locale], "comments": [dict(r) for r in latest]}


async def review_queue(conn: AsyncConnection, *, now: datetime, share: float, min_votes: int,
                       limit: int) -> list[Any]:
    """Active articles whose negative share passed ``share`` over at least ``min_votes`` votes,
    or whose review date has come; due dates first (oldest first), then the worst share."""
    return list(await conn.execute(text(
        "WITH v AS (SELECT article_id, count(*) AS votes, count(*) FILTER (WHERE NOT helpful) AS not_helpful "
        "           FROM kb_article_votes GROUP BY article_id) "
        "SELECT a.id AS article_id, a.owner_id, a.review_at, a.visibility, "
        "COALESCE(v.votes, 0) AS votes, COALESCE(v.not_helpful, 0) AS not_helpful, "
        "(SELECT COALESCE(sum(c.views), 0) FROM kb_article_view_counts c WHERE c.article_id = a.id) AS views, "
        "COALESCE((SELECT jsonb_object_agg(t.locale, COALESCE(t.published_title, t.draft_title)) "
        "          FROM kb_article_translations t WHERE t.article_id = a.id), '{}'::jsonb) AS titles, "
        "(a.review_at IS NOT NULL AND a.review_at <= :now) AS review_due, "
        "(COALESCE(v.votes, 0) >= :min AND v.not_helpful > CAST(:share AS float8) * v.votes) AS negative_feedback "
        "FROM kb_articles a LEFT JOIN v ON v.article_id = a.id "
        "WHERE a.state = 'active' AND ((a.review_at IS NOT NULL AND a.review_at <= :now) "
        "      OR (COALESCE(v.votes, 0) >= :min AND v.not_helpful > CAST(:share AS float8) * v.votes)) "
        "ORDER BY (a.review_at IS NOT NULL AND a.review_at <= :now) DESC, a.review_at NULLS LAST, "
        "COALESCE(v.not_helpful, 0)::float8 / GREATEST(COALESCE(v.votes, 0), 1) DESC, a.id LIMIT :n"),
        {"now": now, "share": share, "min": min_votes, "n": limit}))
