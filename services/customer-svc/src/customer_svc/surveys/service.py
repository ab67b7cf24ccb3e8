"""Survey rules with I/O: settings, scheduling on a ticket's resolution, sending due surveys,
recording an answer once, lists.

Functions run on the caller's connection and never commit: the consumer (events), the worker
or the endpoint (requests) owns the transaction.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from helpdesk_common import concurrency, events
from helpdesk_common.identity import Principal
from helpdesk_common.outbox import enqueue_raw
from helpdesk_common.pagination import decode_cursor, page
from helpdesk_common.problems import Problem

from ..db import outbox
from ..scoring.repository import mark_dirty
from ..ticket_facts.service import TASK_TYPES
from ..timeline import repository as timeline
from . import repository, rules, tokens
from .schemas import CsatAnswer, NpsAnswer, SurveySettingsIn

log = logging.getLogger(__name__)

SOURCE = "customer-svc"
#: who reads settings and every survey; admins alone change the settings
READ_ROLES = ("admin", "supervisor")
#: who reads a customer's surveys (the agents who talk to them)
CUSTOMER_READ_ROLES = ("admin", "supervisor", "agent")


def _forbidden(detail: str) -> Problem:
    return Problem(403, "forbidden", "Forbidden", detail)


# --- settings -----------------------------------------------------------------------------------


def settings_read(row: Any) -> dict[str, Any]:
    return {name: row[name] for name in ("csat_enabled", "csat_delay_minutes", "nps_enabled", "nps_interval_days",
                                         "version", "updated_at")}


async def get_settings(conn: Any, *, principal: Principal) -> dict[str, Any]:
    if not principal.has_role(*READ_ROLES):
        raise _forbidden("Supervisors and admins read the survey settings.")
    return settings_read(await repository.settings(conn))


async def put_settings(conn: Any, *, principal: Principal, body: SurveySettingsIn,
                       if_match: str | None) -> dict[str, Any]:
    if not principal.has_role("admin"):
        raise _forbidden("Only admins change the survey settings.")
    current = await repository.settings(conn, lock=True)
    concurrency.check_version(current["version"], if_match, what="survey settings")
    return settings_read(await repository.update_settings(conn, body.model_dump()))


# --- scheduling (ticket events, in the consumer's transaction) -----------------------------------


async def schedule_for_ticket(conn: Any, *, ticket_id: uuid.UUID, team_id: uuid.UUID | None,
                              resolved_at: datetime) -> list[Any]:
    """A ticket was resolved for its customer: schedule its CSAT survey and, when the customer is
    due one, an NPS survey; the scheduled rows (none when both are off or were there already).

    The customer is the ticket's in customer-svc's ticket projection, which the same consumer
    fills from ``ticket.created`` (resolving the requester in that very transaction) and
    ``ticket.customer_linked``; a ticket's events share a partition, so its creation was applied
    before any status change of it. Without a projected customer there is nobody to ask (logged).
    One CSAT per ticket is the unique index's (a concurrent second insert waits, then inserts
    nothing); one NPS per interval is serialised per customer by a transaction lock."""
    settings = await repository.settings(conn)
    if not settings["csat_enabled"] and not settings["nps_enabled"]:
        return []
    facts = await repository.ticket_facts(conn, ticket_id)
    if facts is None or facts["customer_id"] is None:
        log.warning("resolved ticket without a known customer: no survey", extra={"ticket_id": str(ticket_id)})
        return []
    if facts["merged_into"] is not None:
        return []  # merged into another ticket: that one's resolution asks
    if facts["type"] in TASK_TYPES:
        return []  # a care or follow-up task is our work about the customer, not their request
    customer = await repository.live_customer(conn, facts["customer_id"])
    if customer is None:
        return []
    delivery = rules.delivery_for(await repository.identities(conn, customer["id"]), preferred=facts["channel"])
    values = {
        "customer_id": customer["id"], "ticket_id": ticket_id, "team_id": team_id or facts["team_id"],
        "channel": delivery.channel if delivery else None,
        "language": facts["language"] or customer["language"],
        "status": "scheduled" if delivery else "skipped",
    }
    scheduled = []
    if settings["csat_enabled"]:
        send_at = resolved_at + timedelta(minutes=settings["csat_delay_minutes"])
        row = await repository.insert_csat(conn, {**values, "id": uuid.uuid4(), "send_at": send_at})
        if row is not None:
            scheduled.append(row)
    if settings["nps_enabled"]:
        await repository.lock_customer_nps(conn, customer["id"])
        since = datetime.now(UTC) - timedelta(days=settings["nps_interval_days"])
        if not await repository.nps_since(conn, customer["id"], since):
            scheduled.append(await repository.insert_nps(conn, {**values, "id": uuid.uuid4(), "send_at": resolved_at}))
    return scheduled


async def forget_merged_ticket(conn: Any, *, ticket_id: uuid.UUID) -> None:
    """A ticket merged into another (or deleted) is closed by that, not resolved: its surveys
    that have not gone out yet are skipped (the surviving ticket's resolution asks)."""
    await repository.skip_scheduled_of_ticket(conn, ticket_id)


# --- sending (the worker's transaction) ------------------------------------------------------------


def link_of(base_url: str, token: str) -> str:
    return f"{base_url.rstrip('/')}/v1/surveys/{token}"


async def send_due(conn: Any, *, key: bytes, base_url: str, ttl_s: int, limit: int) -> int:
    """Send up to ``limit`` due surveys in this transaction: each is marked sent with its link's
    expiry, and its delivery order (``survey.delivery_requested``), ``survey.sent`` and a timeline
    entry are written with it, so a survey is sent once or not at all. A customer who lost every
    way to be reached since the survey was scheduled, or whose data is restricted (privacy/), is
    skipped. Returns how many were handled."""
    rows = await repository.claim_due(conn, limit=limit)
    emitted: list[Any] = []
    for row in rows:
        customer = await repository.live_customer(conn, row["customer_id"])
        # a restricted customer (an erasure asked or suspended, PIPL Art. 47) gets no survey
        delivery = None if customer is None or customer["restricted"] else rules.delivery_for(
            await repository.identities(conn, customer["id"]), preferred=row["channel"])
        if customer is None or delivery is None:
            await repository.mark_skipped(conn, row["id"])
            continue
        now = datetime.now(UTC)
        expires = int(now.timestamp()) + ttl_s
        expires_at = datetime.fromtimestamp(expires, UTC)
        token = tokens.mint(key, survey_id=row["id"], expires=expires)
        await repository.mark_sent(conn, row["id"], customer_id=customer["id"], channel=delivery.channel,
                                          sent_at=now, expires_at=expires_at)
        title = await repository.ticket_title(conn, row["ticket_id"]) if row["kind"] == "csat" else None
        csat_ticket = row["ticket_id"] if row["kind"] == "csat" else None
        emitted.append(events.SurveyDeliveryRequested(
            source=SOURCE, subject=str(row["id"]),
            data=events.SurveyDeliveryRequestedData(
                survey_id=row["id"], kind=row["kind"], customer_id=customer["id"], ticket_id=csat_ticket,
                number=title["number"] if title else None, subject=(title["subject"] or "")[:1000] or None if title else None,
                language=rules.page_language(row["language"]), channel=delivery.channel,
                recipient=events.Requester(**delivery.recipient), route=dict(delivery.route),
                link=link_of(base_url, token), expires_at=expires_at, at=now)))
        emitted.append(events.SurveySent(
            source=SOURCE, subject=str(row["id"]),
            data=events.SurveySentData(survey_id=row["id"], kind=row["kind"], customer_id=customer["id"],
                                       ticket_id=csat_ticket, channel=delivery.channel, at=now)))
        await timeline.record(conn, entry=timeline.entry_id(row["id"], "survey_sent"), customer_id=customer["id"],
                              at=now, kind="survey_sent", ref_id=row["id"],
                              summary={"kind": row["kind"], "ticket_id": str(row["ticket_id"]) if row["ticket_id"] else None,
                                       "channel": delivery.channel, "expires_at": expires_at.isoformat()})
    if emitted:
        await enqueue_raw(conn, outbox, *emitted)
    return len(rows)


# --- answering (public: the token is the only credential) ------------------------------------------


class SurveyClosed(Exception):
    """The token is not (or no longer) good for an answer; ``reason`` names why
    (``invalid``, ``expired``, ``answered``), ``language`` the page's language when known."""

    def __init__(self, reason: str, language: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.language = language


PROBLEMS = {
    "invalid": (404, "not-found", "Survey not found", "This survey link is not valid."),
    "expired": (410, "survey-expired", "Survey expired", "This survey link has expired."),
    "answered": (409, "survey-answered", "Survey already answered", "This survey has already been answered."),
}


def problem_of(closed: SurveyClosed) -> Problem:
    status, kind, title, detail = PROBLEMS[closed.reason]
    return Problem(status, kind, title, detail)


async def open_survey(conn: Any, *, key: bytes | None, token: str) -> tuple[Any, Any]:
    """The survey a token answers and its ticket's number and subject (CSAT), if it still takes
    an answer; ``SurveyClosed`` otherwise. Reads only."""
    if key is None:
        raise SurveyClosed("invalid")
    try:
        grant = tokens.verify(key, token, now=datetime.now(UTC).timestamp())
    except tokens.ExpiredToken as exc:
        row = await repository.get(conn, exc.grant.survey_id)
        language = row["language"] if row is not None else None
        raise SurveyClosed("answered" if row is not None and row["status"] == "answered" else "expired",
                           language) from None
    except tokens.InvalidToken:
        raise SurveyClosed("invalid") from None
    row = await repository.get(conn, grant.survey_id)
    if row is None or row["status"] in ("scheduled", "skipped"):
        raise SurveyClosed("invalid")
    if row["status"] == "answered":
        raise SurveyClosed("answered", row["language"])
    if row["status"] == "expired" or row["expires_at"] is None or row["expires_at"] <= datetime.now(UTC):
        raise SurveyClosed("expired", row["language"])
    title = await repository.ticket_title(conn, row["ticket_id"]) if row["kind"] == "csat" else None
    return row, title


def parse_answer(kind: str, body: Any) -> CsatAnswer | NpsAnswer:
    """The answer as its survey's kind takes it (CSAT ``rating``, NPS ``score``); a 422 naming
    the field otherwise, like any body."""
    model = CsatAnswer if kind == "csat" else NpsAnswer
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]) from None


async def record_answer(conn: Any, *, survey: Any, answer: CsatAnswer | NpsAnswer) -> Any:
    """Store the answer once, with ``survey.answered`` (ticket-svc shows a CSAT on the ticket and
    follows up a bad one), a timeline entry and the customer marked for rescoring, in this
    transaction. The write itself decides a race: of two answers at once, one finds the survey
    no longer sent and is told it was answered."""
    rating = answer.rating if isinstance(answer, CsatAnswer) else None
    score = answer.score if isinstance(answer, NpsAnswer) else None
    comment = answer.comment.strip() or None if answer.comment is not None else None
    row = await repository.answer(conn, survey["id"], rating=rating, score=score, comment=comment)
    if row is None:
        current = await repository.get(conn, survey["id"])
        raise SurveyClosed("answered" if current is not None and current["status"] == "answered" else "expired",
                           survey["language"])
    await enqueue_raw(conn, outbox, events.SurveyAnswered(
        source=SOURCE, subject=str(row["id"]),
        data=events.SurveyAnsweredData(survey_id=row["id"], kind=row["kind"], customer_id=row["customer_id"],
                                       ticket_id=row["ticket_id"], rating=rating, score=score, comment=comment,
                                       at=row["answered_at"])))
    await timeline.record(conn, entry=timeline.entry_id(row["id"], "survey_answered"), customer_id=row["customer_id"],
                          at=row["answered_at"], kind="survey_answered", ref_id=row["id"],
                          summary={"kind": row["kind"], "rating": rating, "score": score,
                                   "ticket_id": str(row["ticket_id"]) if row["ticket_id"] else None})
    await mark_dirty(conn, row["customer_id"])
    return row


def answer_read(row: Any) -> dict[str, Any]:
    return {"id": row["id"], "kind": row["kind"], "status": row["status"], "rating": row["rating"],
            "score": row["score"], "comment": row["comment"], "answered_at": row["answered_at"]}


# --- lists ---------------------------------------------------------------------------------------


def survey_read(row: Any, *, now: datetime) -> dict[str, Any]:
    """A survey as the API shows it: one sent whose link ran out reads ``expired`` (nothing
    rewrites rows when links expire)."""
    out = dict(row)
    if out["status"] == "sent" and out["expires_at"] is not None and out["expires_at"] <= now:
        out["status"] = "expired"
    return out


async def list_surveys(conn: Any, *, principal: Principal, customer_id: uuid.UUID | None = None,
                       kind: str | None = None, status: str | None = None, ticket_id: uuid.UUID | None = None,
                       limit: int, cursor: str | None) -> dict[str, Any]:
    if customer_id is None and not principal.has_role(*READ_ROLES):
        raise _forbidden("Supervisors and admins list surveys.")
    if customer_id is not None:
        if not principal.has_role(*CUSTOMER_READ_ROLES):
            raise _forbidden("Users read a customer's surveys.")
        if not await repository.customer_exists(conn, customer_id):
            raise Problem(404, "not-found", "Customer not found", f"No customer {customer_id}.")
    after = decode_cursor(cursor) if cursor else None
    rows = await repository.page(conn, customer_id=customer_id, kind=kind, status=status, ticket_id=ticket_id,
                                 limit=limit + 1, after=after)
    items, next_cursor = page(rows, limit)
    now = datetime.now(UTC)
    return {"items": [survey_read(r, now=now) for r in items], "next_cursor": next_cursor}
