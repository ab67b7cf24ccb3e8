"""Feedback's business rules: one vote per viewer and article, view counts, the review queue."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from helpdesk_common import events as ev
from helpdesk_common.outbox import enqueue
from helpdesk_common.problems import Problem

from ..access import Viewer
from ..db import outbox
from ..deflection import service as deflection_service
from . import repository, rules

SOURCE = "kb-svc"
RECENT_COMMENTS = 20


def _invalid(field: str, message: str, code: str) -> Problem:
    return Problem(422, "validation-error", "Validation failed", message,
                   errors=[{"field": field, "message": message, "code": code}])


async def vote(conn: Any, *, viewer: Viewer, article_id: uuid.UUID, helpful: bool, comment: str | None,
               locale: str | None, anonymous_voter: str | None) -> tuple[dict[str, Any], bool]:
    """Record the viewer's vote on an article they may read (the same 404 as a missing one
    otherwise); a second vote replaces the first. A new or changed vote emits
    ``kb.article_feedback``; repeating the same vote changes nothing. Returns the result and
    whether the vote was the viewer's first."""
    voter = rules.voter_key(kind=viewer.kind, user_id=viewer.user_id, customer_id=viewer.customer_id,
                            anonymous=anonymous_voter)
    if voter is None:
        raise _invalid("header.x-kb-voter", "Anonymous readers identify their vote with an X-KB-Voter id "
                       "(16-128 characters A-Z a-z 0-9 _ -).", "voter_required")
    translation = await repository.readable_translation(conn, article_id=article_id, locale=locale,
                                                        visible_to=viewer.visibilities)
    if translation is None:
        raise Problem(404, "not-found", "Not found", "No such article." if locale is None
                      else f"No such article in {locale}.")
    comment = rules.clean_comment(comment)
    before = await repository.lock_vote(conn, article_id=article_id, voter=voter)
    first = await repository.upsert_vote(conn, article_id=article_id, voter=voter, locale=translation.locale,
                                         helpful=helpful, comment=comment, viewer_kind=viewer.kind)
    changed = before is None or (before.helpful, before.comment, before.locale) != (helpful, comment,
                                                                                      translation.locale)
    if changed:
        await enqueue(conn, outbox, ev.KbArticleFeedback(source=SOURCE, subject=str(article_id),
                                                         data=ev.KbArticleFeedbackData(
            article_id=article_id, locale=translation.locale, helpful=helpful, has_comment=comment is not None,
            viewer_kind=viewer.kind, at=datetime.now(UTC))))
    counts = await repository.tallies(conn, article_id)
    return {"article_id": article_id, "locale": translation.locale, "helpful": helpful,
            "has_comment": comment is not None, "helpful_votes": counts.helpful,
            "not_helpful_votes": counts.not_helpful}, first


async def record_read(conn: Any, *, article_id: uuid.UUID, locale: str, suggestion_id: uuid.UUID | None) -> None:
    """A public read of a published translation: its view count, and a suggestion's view when
    the reader came from one."""
    await repository.count_view(conn, article_id=article_id, locale=locale)
    if suggestion_id is not None:
        await deflection_service.record_read(conn, suggestion_id=suggestion_id, article_id=article_id)


async def article_feedback(conn: Any, *, article_id: uuid.UUID, share: float, min_votes: int) -> dict[str, Any]:
    found = await repository.summary(conn, article_id, comments=RECENT_COMMENTS)
    if found is None:
        raise Problem(404, "not-found", "Not found", "No such article.")
    helpful = sum(r["helpful"] for r in found["locales"])
    not_helpful = sum(r["not_helpful"] for r in found["locales"])
    return {"article_id": article_id, "views": sum(r["views"] for r in found["locales"]), "helpful": helpful,
            "not_helpful": not_helpful, "locales": found["locales"], "comments": found["comments"],
            "needs_review": rules.needs_review(votes=helpful + not_helpful, not_helpful=not_helpful, share=share,
                                               min_votes=min_votes)}


async def review_queue(conn: Any, *, share: float, min_votes: int, limit: int) -> dict[str, Any]:
    rows = await repository.review_queue(conn, now=datetime.now(UTC), share=share, min_votes=min_votes, limit=limit)
    items = [{
        "article_id": r.article_id, "titles": r.titles, "owner_id": r.owner_id, "visibility": r.visibility,
        "review_at": r.review_at, "votes": r.votes, "not_helpful": r.not_helpful,
        "negative_share": round(r.not_helpful / r.votes, 4) if r.votes else None, "views": r.views,
        "reasons": [name for name, flag in (("review_due", r.review_due), ("negative_feedback", r.negative_feedback))
                    if flag],
    } for r in rows]
    return {"items": items, "next_cursor": None}
