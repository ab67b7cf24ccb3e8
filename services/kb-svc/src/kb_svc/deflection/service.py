"""Deflection's business rules: suggest, record views, decide outcomes, report; link articles to
tickets. Flushes nothing itself beyond its statements; the caller's transaction commits."""

from __future__ import annotations

import html
import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from helpdesk_common import events as ev
from helpdesk_common.outbox import enqueue_raw
from helpdesk_common.problems import Problem

from ..access import Viewer
from ..db import outbox
from ..search import service as search_service
from . import repository, rules

log = logging.getLogger(__name__)
SOURCE = "kb-svc"
#: suggestions decided per sweep transaction
SWEEP_BATCH = 500


def not_found(what: str) -> Problem:
    return Problem(404, "not-found", "Not found", f"No such {what}.")


def invalid(field: str, message: str, code: str = "invalid") -> Problem:
    return Problem(422, "validation-error", "Validation failed", message,
                   errors=[{"field": field, "message": message, "code": code}])


def _with_suggestion(url: str, suggestion_id: uuid.UUID) -> str:
    return f"{url}{'&' if '?' in url else '?'}suggestion_id={suggestion_id}"


async def suggest(conn: Any, *, viewer: Viewer, subject: str, description: str, language: str | None,
                  channel: str | None, ticket_id: uuid.UUID | None) -> dict[str, Any]:
    """One search with the subject's words and the description's salient ones, the subject's
    weighing double and alone deciding the title boosts; keep at most 5, and record what was
    shown."""
    if ticket_id is not None and not viewer.is_user:
        raise invalid("body.ticket_id", "Only the help desk's users suggest for a ticket.", "users_only")
    query = rules.build_query(subject, description)
    items: list[dict] = []
    if query.full:
        page = await search_service.search(conn, search_service.SearchRequest(
            q=query.full, core=query.subject or None, visibilities=viewer.visibilities, locale=language,
            fallback=language is not None, limit=rules.MAX_SUGGESTIONS))
        items = page["items"]
    suggestion_id = uuid.uuid4()
    await repository.insert_suggestion(
        conn, suggestion_id=suggestion_id, channel=channel or ("agent" if viewer.is_user else "web"),
        language=language, query_hash=rules.query_hash(subject, description, language),
        article_ids=[item["id"] for item in items], viewer_kind=viewer.kind, customer_id=viewer.customer_id,
        user_id=viewer.user_id, context_ticket_id=ticket_id)
    return {"suggestion_id": suggestion_id, "items": [{
        "id": item["id"], "title": item["title"], "snippet": item["snippet"], "score": item["score"],
        "locale": item["locale"], "visibility": item["visibility"],
        "url": item["url"] if item["visibility"] == "agents" else _with_suggestion(item["url"], suggestion_id),
    } for item in items]}


async def record_view(conn: Any, *, suggestion_id: uuid.UUID, article_id: uuid.UUID) -> None:
    if await repository.record_view(conn, suggestion_id=suggestion_id, article_id=article_id):
        return
    if await repository.suggested_articles(conn, suggestion_id) is None:
        raise not_found("suggestion")
    raise invalid("body.article_id", "This article was not among the suggestion's.", "not_suggested")


async def record_read(conn: Any, *, suggestion_id: uuid.UUID, article_id: uuid.UUID) -> None:
    """A public read carrying ``?suggestion_id=``: a view when the article was suggested, nothing
    otherwise (a stale or foreign id never fails a read)."""
    await repository.record_view(conn, suggestion_id=suggestion_id, article_id=article_id)


async def deflection_report(conn: Any, *, start: datetime | None, end: datetime | None, channel: str | None,
                            window_minutes: float) -> dict[str, Any]:
    row = await repository.report(conn, start=start, end=end, channel=channel)
    return {**rules.report(suggestions=row.suggestions, viewed=row.viewed, deflected=row.deflected,
                           tickets_followed=row.tickets_followed, abandoned=row.abandoned),
            "window_minutes": window_minutes}


# --- outcomes (the consumer's and the sweep's transactions, asyncpg) -------------------------

def outcome_event(row: Any, *, outcome: str, ticket_id: uuid.UUID | None, at: datetime) -> ev.KbSuggestionOutcome:
    return ev.KbSuggestionOutcome(source=SOURCE, subject=str(row["id"]), data=ev.KbSuggestionOutcomeData(
        suggestion_id=row["id"], deflected=outcome == "deflected", article_ids=list(row["article_ids"]),
        viewed_article_ids=list(row["viewed_ids"]), ticket_id=ticket_id, channel=row["channel"], at=at))


async def ticket_followed(conn: Any, *, suggestion_id: uuid.UUID, ticket_id: uuid.UUID, created_at: datetime,
                          window: timedelta) -> None:
    """A ticket was created with this suggestion id. Created within the window, it decides the
    outcome (``ticket_followed``, one ``kb.suggestion_outcome``), also when the sweep had already
    decided because this consumer lagged behind (a correcting second event for the suggestion,
    which consumers keep as the last); created after the window, it is recorded and the outcome
    stays the sweep's."""
    row = await repository.lock_suggestion(conn, suggestion_id)
    if row is None:
        log.info("ticket.created names an unknown suggestion", extra={"suggestion_id": str(suggestion_id)})
        return
    if row["followed_ticket_id"] is not None or row["outcome"] == "ticket_followed":
        return  # the first ticket counts; the inbox already drops redeliveries
    decide = rules.within_window(row["created_at"], created_at, window)
    await repository.mark_followed(conn, suggestion_id=suggestion_id, ticket_id=ticket_id, at=created_at,
                                   decide=decide)
    if decide:
        await enqueue_raw(conn, outbox, outcome_event(row, outcome="ticket_followed", ticket_id=ticket_id,
                                                      at=datetime.now(UTC)))


async def sweep(conn: Any, *, window: timedelta, now: datetime | None = None, limit: int = SWEEP_BATCH) -> int:
    """Decide the suggestions whose window closed with no ticket: deflected when a suggested
    article was opened, abandoned otherwise; one ``kb.suggestion_outcome`` each. Returns how many."""
    now = now or datetime.now(UTC)
    rows = await repository.take_due(conn, before=now - window, limit=limit)
    if not rows:
        return 0
    outcomes = [rules.outcome_after_window(viewed=bool(row["viewed_ids"])) for row in rows]
    await repository.decide(conn, ids=[row["id"] for row in rows], outcomes=outcomes)
    await enqueue_raw(conn, outbox, *(outcome_event(row, outcome=o, ticket_id=None, at=now)
                                      for row, o in zip(rows, outcomes, strict=True)))
    return len(rows)


async def purge(conn: Any, *, retention: timedelta, now: datetime | None = None, limit: int = SWEEP_BATCH) -> int:
    """Delete one batch of decided suggestions older than the retention; how many."""
    return await repository.purge_decided(conn, before=(now or datetime.now(UTC)) - retention, limit=limit)


# --- links and reply snippets ----------------------------------------------------------------

async def link(conn: Any, *, article_id: uuid.UUID, ticket_id: uuid.UUID, by: str) -> tuple[dict, bool]:
    if not await repository.article_exists(conn, article_id):
        raise not_found("article")
    row, created = await repository.link(conn, ticket_id=ticket_id, article_id=article_id, by=by)
    return dict(row._mapping), created


def reply_snippet(row: Any, *, public_base: str = "") -> dict[str, Any]:
    """The text and HTML an agent inserts: the title linked to the public read for articles
    customers may open, the title alone (and no URL) for agents-only ones."""
    url = None if row.visibility == "agents" else \
        f"{public_base}/v1/kb/public/articles/{row.id}?locale={row.locale}"
    title = row.published_title
    if url is None:
        return {"article_id": row.id, "locale": row.locale, "title": title, "url": None, "text": title,
                "html": html.escape(title)}
    return {"article_id": row.id, "locale": row.locale, "title": title, "url": url, "text": f"{title}: {url}",
            "html": f'<a href="{html.escape(url)}">{html.escape(title)}</a>'}
