"""What ticket-svc does with customer-svc's events about a customer's life (issue 11;
docs/customers.md, "What ticket-svc does with customer events").

- ``customer.merged``: the merged customer's tickets and identity keys become the survivor's;
  each moved ticket is audited and announced as ``ticket.customer_linked``, the event analytics
  and notify-svc already project a ticket's customer from. Open tickets take the survivor's tier.
- ``customer.identity_removed``: the key leaves the identity lookup, so intake stops linking it.
- ``survey.answered`` (CSAT of a ticket): the answer shows on the ticket; a rating of 1-2 opens
  one follow-up ticket (type ``follow_up``) in the ticket's team. An NPS detractor (0-6) opens
  one too: on the team of the ticket that triggered the survey when it names one, else routed.
- ``insight.churn_risk_changed``: an episode that starts opens one care ticket (type ``care``)
  for the account owner, never a second while one is open; one that ends notes it on that ticket.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from helpdesk_common import events
from helpdesk_common.outbox import enqueue_raw

from ..conversation import service as conversation
from ..db import outbox
from ..pii.codec import codec, sealed_identities
from ..routing import repository as routing_repository
from ..routing import service as routing
from ..tickets import changes
from ..tickets import repository as tickets
from ..tickets import service as ticket_service
from . import repository, texts

log = logging.getLogger(__name__)

CUSTOMER_ACTOR = ticket_service.CUSTOMER_ACTOR
SURVEY_ACTOR = "system:surveys"
INSIGHTS_ACTOR = "system:insights"
CARE_TYPE = "care"
FOLLOW_UP_TYPE = "follow_up"
#: CSAT ratings that open a follow-up (1-5 scale)
BAD_CSAT_AT_MOST = 2
#: NPS scores that open a follow-up (0-10 scale): the detractors of the NPS definition
DETRACTOR_AT_MOST = 6


def bad_csat(kind: str, rating: int | None, ticket_id: uuid.UUID | None) -> bool:
    """Does this answer ask for a follow-up on its ticket? A CSAT about a ticket rated 1-2.
    (An NPS detractor has no ticket: customer-svc's side, not a ticket of ours.)"""
    return kind == "csat" and ticket_id is not None and rating is not None and rating <= BAD_CSAT_AT_MOST


def detractor(kind: str, score: int | None) -> bool:
    """Does this NPS answer ask for a follow-up? A detractor (0-6) is a customer telling us they
    would warn others off: worth a call, with or without a ticket to hang it on."""
    return kind == "nps" and score is not None and score <= DETRACTOR_AT_MOST


async def on_customer_merged(conn: Any, *, merged_id: uuid.UUID, survivor_id: uuid.UUID,
                             identities: list[tuple[str, str]], actor: str | None) -> int:
    """Re-point tickets and identity keys from ``merged_id`` to ``survivor_id``; idempotent.
    Returns how many tickets moved."""
    if merged_id == survivor_id:
        return 0
    who = actor or CUSTOMER_ACTOR
    await repository.repoint_identities(conn, merged_id=merged_id, survivor_id=survivor_id)
    await tickets.upsert_identities(conn, customer_id=survivor_id, identities=sealed_identities(identities))
    moved = await repository.repoint_tickets(conn, merged_id=merged_id, survivor_id=survivor_id, actor=who)
    if moved:
        await enqueue_raw(conn, outbox, *(events.TicketCustomerLinked(
            source=changes.SOURCE, subject=str(row["id"]),
            data=events.TicketCustomerLinkedData(ticket_id=row["id"], customer_id=survivor_id),
        ) for row in moved))
    known, tier = await repository.customer_tier(conn, survivor_id)
    if known:  # the survivor's tier now applies to the moved open tickets (SLA re-targets on it)
        for row in await tickets.lock_tickets_with_stale_tier(conn, customer_id=survivor_id, tier=tier):
            await changes.apply(conn, row, {"customer_tier": tier}, actor=CUSTOMER_ACTOR,
                                action="customer_tier_changed")
    return len(moved)


async def on_identity_removed(conn: Any, *, customer_id: uuid.UUID, kind: str, value: str) -> bool:
    return await repository.drop_identity(conn, customer_id=customer_id, kind=kind, value=value,
                                          value_bidx=codec().identity_index(value))


async def on_survey_answered(conn: Any, data: events.SurveyAnsweredData) -> uuid.UUID | None:
    """Store a CSAT answer on its ticket and open the follow-up of a bad one, or of an NPS
    detractor; returns the follow-up's id when one was opened."""
    if data.kind == "nps":
        return await _on_nps_answered(conn, data)
    if data.kind != "csat" or data.ticket_id is None or data.rating is None:
        return None
    ticket = await repository.store_csat(conn, ticket_id=data.ticket_id, survey_id=data.survey_id,
                                         rating=data.rating, comment=codec().seal_comment(data.comment),
                                         answered_at=data.at)
    if ticket is not None:
        await tickets.insert_audit(conn, ticket_id=data.ticket_id, actor=SURVEY_ACTOR, action="csat_answered",
                                   changes={"csat": {"rating": data.rating, "survey_id": str(data.survey_id)}})
    if not bad_csat(data.kind, data.rating, data.ticket_id):
        return None
    original = ticket if ticket is not None else await tickets.get_ticket_raw(conn, data.ticket_id)
    if original is None:
        log.warning("CSAT answer for an unknown ticket", extra={"ticket_id": str(data.ticket_id)})
        return None
    follow_up_id = uuid.uuid4()
    if not await repository.claim_task_origin(conn, origin=f"survey:{data.survey_id}", ticket_id=follow_up_id):
        return None
    language = texts.language_of(original["language"])
    subject, description = texts.follow_up_ticket(rating=data.rating, comment=data.comment,
                                                  number=original["number"], subject=original["subject"],
                                                  language=language)
    team_id = original["team_id"]
    if team_id is not None and await routing_repository.get_team(conn, team_id) is None:
        team_id = None  # the team was deleted since: routing decides
    await _open_task(conn, ticket_id=follow_up_id, actor=SURVEY_ACTOR, subject=subject, description=description,
                     type_=FOLLOW_UP_TYPE, customer_id=original["customer_id"] or data.customer_id, channel="system",
                     language=original["language"], team_id=team_id,
                     priority="high", follow_up_of=original["id"])
    await tickets.insert_link(conn, ticket_id=follow_up_id, other_id=original["id"], kind="follow_up_of",
                              actor=SURVEY_ACTOR)
    return follow_up_id


async def _on_nps_answered(conn: Any, data: events.SurveyAnsweredData) -> uuid.UUID | None:
    """A detractor's follow-up: on the team of the ticket that triggered the survey (linked to it)
    when the answer names one we know, else routed like any ticket. One per survey, claimed as the
    CSAT follow-up is, so the same answer delivered again as another event opens nothing."""
    if not detractor(data.kind, data.score):
        return None
    original = await tickets.get_ticket_raw(conn, data.ticket_id) if data.ticket_id is not None else None
    follow_up_id = uuid.uuid4()
    if not await repository.claim_task_origin(conn, origin=f"survey:{data.survey_id}", ticket_id=follow_up_id):
        return None
    tag = original["language"] if original is not None else await repository.recent_language(conn, data.customer_id)
    language = texts.language_of(tag)
    subject, description = texts.nps_follow_up_ticket(
        score=data.score, comment=data.comment, number=original["number"] if original is not None else None,
        subject=original["subject"] if original is not None else None, language=language)
    team_id = original["team_id"] if original is not None else None
    if team_id is not None and await routing_repository.get_team(conn, team_id) is None:
        team_id = None  # the team was deleted since: routing decides
    await _open_task(conn, ticket_id=follow_up_id, actor=SURVEY_ACTOR, subject=subject, description=description,
                     type_=FOLLOW_UP_TYPE, customer_id=data.customer_id, channel="system", language=tag or language,
                     team_id=team_id, priority="normal",
                     follow_up_of=original["id"] if original is not None else None)
    if original is not None:
        await tickets.insert_link(conn, ticket_id=follow_up_id, other_id=original["id"], kind="follow_up_of",
                                  actor=SURVEY_ACTOR)
    return follow_up_id


async def on_churn_risk_changed(conn: Any, data: events.ChurnRiskChangedData) -> uuid.UUID | None:
    """``started``: open the customer's care ticket unless one is open (its id, or None).
    ``ended``: an internal note on the open one. ``ongoing``: nothing (the score is customer-svc's)."""
    if data.episode == "ongoing":
        return None
    open_care = await repository.open_care_ticket(conn, data.customer_id, lock=True)
    language = texts.language_of(data.language or await repository.recent_language(conn, data.customer_id))
    if data.episode == "ended":
        if open_care is not None:
            await conversation.add(conn, open_care, conversation.NewMessage(
                author_kind="system", author_id=None, public=False,
                body_text=texts.care_ended_note(score=data.score, language=language),
            ), actor=INSIGHTS_ACTOR)
        return None
    if open_care is not None:
        return None
    owner = str(data.account_owner_id) if data.account_owner_id is not None else None
    if owner is not None and not await routing.is_routable(conn, owner):
        owner = None  # not an agent here, or deactivated: routed like any ticket
    subject, description = texts.care_ticket(score=data.score, reasons=data.reasons, language=language)
    care_id = uuid.uuid4()
    await _open_task(conn, ticket_id=care_id, actor=INSIGHTS_ACTOR, subject=subject, description=description,
                     type_=CARE_TYPE, customer_id=data.customer_id, channel="system",
                     language=language, assignee_id=owner, priority="high" if data.band == "high" else "normal",
                     care_of=data.customer_id)
    return care_id


async def _open_task(conn: Any, *, ticket_id: uuid.UUID, actor: str, subject: str, description: str, type_: str,
                     customer_id: uuid.UUID, channel: str, language: str | None,
                     priority: str, team_id: uuid.UUID | None = None, assignee_id: str | None = None,
                     follow_up_of: uuid.UUID | None = None, care_of: uuid.UUID | None = None) -> Any:
    """Open a ticket for agents, routed like any other (an explicit team or assignee first).

    It is about the customer, not from or to them: its text is an internal note and it has no
    requester address, so notify-svc sends the customer no "we received your request" (its rule
    spares only tickets users open) nor a "solved" notice, and a care ticket's subject — a churn
    score — never reaches them. Agents answer the customer on the original ticket or through
    the identities customer-svc shows."""
    from ..intake import service as intake  # late: intake builds on tickets

    return await intake.open_ticket(
        conn, principal=None, ticket_id=ticket_id, subject=subject, description=description, requester={},
        priority=priority, type_=type_, tags=(), custom_fields={}, language=language, cc=(), channel=channel,
        assignee_id=assignee_id, team_id=team_id, follow_up_of=follow_up_of,
        first_message=conversation.NewMessage(author_kind="system", author_id=None, public=False,
                                              body_text=description, channel=channel, initial=True),
        for_customer=intake.SystemTask(actor=actor, customer_id=customer_id, care_of=care_of),
    )
