"""SQL of deflection. The API's statements take a SQLAlchemy ``AsyncConnection``; the
consumer's and the sweep's (outcomes) a bare asyncpg connection, as the service's consumer is a
raw one."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection


async def insert_suggestion(conn: AsyncConnection, *, suggestion_id: uuid.UUID, channel: str, language: str | None,
                            query_hash: str, article_ids: list[uuid.UUID], viewer_kind: str,
                            customer_id: uuid.UUID | None, user_id: str | None,
                            context_ticket_id: uuid.UUID | None) -> datetime:
    return (await conn.execute(text(
        "INSERT INTO kb_suggestions (id, channel, language, query_hash, article_ids, viewer_kind, customer_id, "
        "user_id, context_ticket_id) VALUES (:id, :channel, :language, :hash, CAST(:articles AS uuid[]), :kind, "
        ":customer, :user, :ticket) RETURNING created_at"),
        {"id": suggestion_id, "channel": channel, "language": language, "hash": query_hash,
         "articles": article_ids, "kind": viewer_kind, "customer": customer_id, "user": user_id,
         "ticket": context_ticket_id})).scalar_one()


async def suggested_articles(conn: AsyncConnection, suggestion_id: uuid.UUID) -> list[uuid.UUID] | None:
    """The articles a suggestion showed; None for an unknown suggestion."""
    row = (await conn.execute(text("SELECT article_ids FROM kb_suggestions WHERE id = :id"),
                              {"id": suggestion_id})).first()
    return None if row is None else list(row.article_ids)


async def record_view(conn: AsyncConnection, *, suggestion_id: uuid.UUID, article_id: uuid.UUID) -> bool:
    """Record that a suggested article was opened (once per suggestion and article); False when
    the article was not among the suggestion's (or the suggestion does not exist)."""
    row = (await conn.execute(text(
        "WITH s AS (SELECT id FROM kb_suggestions WHERE id = :s AND :a = ANY(article_ids)) "
        "INSERT INTO kb_suggestion_views (suggestion_id, article_id) SELECT s.id, :a FROM s "
        "ON CONFLICT DO NOTHING RETURNING 1"), {"s": suggestion_id, "a": article_id})).first()
    if row is not None:
        return True
    return (await conn.execute(text(
        "SELECT 1 FROM kb_suggestions WHERE id = :s AND :a = ANY(article_ids)"),
        {"s": suggestion_id, "a": article_id})).first() is not None


async def report(conn: AsyncConnection, *, start: datetime | None, end: datetime | None,
                 channel: str | None) -> Any:
    """Counts over the suggestions created in [start, end)."""
    where = ["TRUE"]
    params: dict[str, Any] = {}
    if start is not None:
        where.append("s.created_at >= :start")
        params["start"] = start
    if end is not None:
        where.append("s.created_at < :end")
        params["end"] = end
    if channel is not None:
        where.append("s.channel = :channel")
        params["channel"] = channel
    return (await conn.execute(text(
        "SELECT count(*) AS suggestions, "
        "count(*) FILTER (WHERE EXISTS (SELECT 1 FROM kb_suggestion_views v WHERE v.suggestion_id = s.id)) AS viewed, "
        "count(*) FILTER (WHERE s.outcome = 'deflected') AS deflected, "
        "count(*) FILTER (WHERE s.outcome = 'abandoned') AS abandoned, "
        "count(*) FILTER (WHERE s.outcome = 'ticket_followed') AS tickets_followed "
        f"FROM kb_suggestions s WHERE {' AND '.join(where)}"), params)).one()


# --- links of articles to tickets ------------------------------------------------------------

async def article_exists(conn: AsyncConnection, article_id: uuid.UUID) -> bool:
    return (await conn.execute(text("SELECT 1 FROM kb_articles WHERE id = :a"), {"a": article_id})).first() is not None


async def link(conn: AsyncConnection, *, ticket_id: uuid.UUID, article_id: uuid.UUID, by: str) -> tuple[Any, bool]:
    """The link (created or already there) and whether it was created."""
    row = (await conn.execute(text(
        "INSERT INTO kb_ticket_links (ticket_id, article_id, linked_by) VALUES (:t, :a, :by) "
        "ON CONFLICT DO NOTHING RETURNING ticket_id, article_id, linked_by, linked_at"),
        {"t": ticket_id, "a": article_id, "by": by})).first()
    if row is not None:
        return row, True
    return (await conn.execute(text(
        "SELECT ticket_id, article_id, linked_by, linked_at FROM kb_ticket_links WHERE ticket_id = :t "
        "AND article_id = :a"), {"t": ticket_id, "a": article_id})).one(), False


async def unlink(conn: AsyncConnection, *, ticket_id: uuid.UUID, article_id: uuid.UUID) -> None:
    await conn.execute(text("DELETE FROM kb_ticket_links WHERE ticket_id = :t AND article_id = :a"),
                       {"t": ticket_id, "a": article_id})


async def links_of_ticket(conn: AsyncConnection, ticket_id: uuid.UUID, *, limit: int) -> list[Any]:
    """A ticket's linked articles, first linked first, each with its titles by locale (the
    published one where there is one, else the draft's) and state."""
    return list(await conn.execute(text(
        "SELECT l.article_id, l.linked_by, l.linked_at, a.visibility, a.state, "
        "COALESCE((SELECT jsonb_object_agg(t.locale, COALESCE(t.published_title, t.draft_title)) "
        "          FROM kb_article_translations t WHERE t.article_id = a.id), '{}'::jsonb) AS titles "
        "FROM kb_ticket_links l JOIN kb_articles a ON a.id = l.article_id WHERE l.ticket_id = :t "
        "ORDER BY l.linked_at, l.article_id LIMIT :n"), {"t": ticket_id, "n": limit}))


async def published_translation(conn: AsyncConnection, *, article_id: uuid.UUID, locale: str | None) -> Any:
    """A published translation of an active article: ``locale``'s, or without it the first
    published one by locale."""
    return (await conn.execute(text(
        "SELECT a.id, a.visibility, t.locale, t.published_title, t.published_body_text "
        "FROM kb_articles a JOIN kb_article_translations t ON t.article_id = a.id "
        "WHERE a.id = :a AND a.state = 'active' AND t.status = 'published' "
        "AND (CAST(:l AS text) IS NULL OR t.locale = :l) ORDER BY t.locale LIMIT 1"),
        {"a": article_id, "l": locale})).first()


# --- outcomes (asyncpg) ----------------------------------------------------------------------

_OUTCOME_COLUMNS = ("id, channel, article_ids, outcome, followed_ticket_id, created_at, "
                    "ARRAY(SELECT v.article_id FROM kb_suggestion_views v WHERE v.suggestion_id = kb_suggestions.id "
                    "ORDER BY v.first_viewed_at, v.article_id) AS viewed_ids")


async def lock_suggestion(conn: Any, suggestion_id: uuid.UUID) -> Any:
    return await conn.fetchrow(f"SELECT {_OUTCOME_COLUMNS} FROM kb_suggestions WHERE id = $1 FOR UPDATE",
                               suggestion_id)


async def mark_followed(conn: Any, *, suggestion_id: uuid.UUID, ticket_id: uuid.UUID, at: datetime,
                        decide: bool) -> None:
    """A ticket followed the suggestion: record it, and with ``decide`` make it the outcome."""
    if decide:
        await conn.execute(
            "UPDATE kb_suggestions SET followed_ticket_id = $2, followed_at = $3, outcome = 'ticket_followed', "
            "decided_at = now() WHERE id = $1", suggestion_id, ticket_id, at)
    else:
        await conn.execute("UPDATE kb_suggestions SET followed_ticket_id = $2, followed_at = $3 WHERE id = $1",
                           suggestion_id, ticket_id, at)


async def take_due(conn: Any, *, before: datetime, limit: int) -> list[Any]:
    """Undecided suggestions created before ``before``, oldest first, locked (SKIP LOCKED: another
    replica's sweep takes others)."""
    return list(await conn.fetch(
        f"SELECT {_OUTCOME_COLUMNS} FROM kb_suggestions WHERE outcome IS NULL AND created_at <= $1 "
        "ORDER BY created_at LIMIT $2 FOR UPDATE SKIP LOCKED", before, limit))


async def decide(conn: Any, *, ids: list[uuid.UUID], outcomes: list[str]) -> None:
    await conn.execute(
        "UPDATE kb_suggestions s SET outcome = u.outcome, decided_at = now() "
        "FROM unnest($1::uuid[], $2::text[]) AS u(id, outcome) WHERE s.id = u.id", ids, outcomes)


async def purge_decided(conn: Any, *, before: datetime, limit: int) -> int:
    """Delete at most ``limit`` decided suggestions created before ``before`` (their views go
    with them); how many."""
    status = await conn.execute(
        "DELETE FROM kb_suggestions WHERE id IN (SELECT id FROM kb_suggestions WHERE created_at < $1 "
        "AND outcome IS NOT NULL ORDER BY created_at LIMIT $2 FOR UPDATE SKIP LOCKED)", before, limit)
    return int(status.split()[-1])
