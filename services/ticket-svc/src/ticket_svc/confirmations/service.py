"""The customer's side of a customer-confirmation step, around ``processes.runtime``.

- **Asking** (``ask_customer``, run by the runtime when a confirmation step starts): a signed
  link that expires with the step's deadline, sent by notify-svc (``ticket.confirmation_requested``)
  on the channel and route a reply would take (``conversation.outbound.plan``), e-mail threaded
  on the ticket's conversation so that the customer's answer comes back to it.
- **The link** (``open_link``, ``answer_by_link``): the page's data, and an answer taken once
  through ``runtime.decide``; the same answer again is the same result, another one after the
  step ended a 409.
- **A reply** (``holds_status``, ``answer_by_message``): what the customer writes while the step
  waits is read (``replies.read``): a plain confirmation confirms and does not reopen the ticket
  on its way (no solved → open → closed), anything else is the step's ``reply`` and reopens it.

The link is a bearer capability: it is never logged, and only the event to notify-svc carries it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from helpdesk_common import events
from helpdesk_common.outbox import enqueue_raw
from helpdesk_common.problems import Problem

from ..conversation import service as conversation
from ..customers.texts import language_of
from ..db import outbox
from ..pii.codec import requester_of
from ..processes import runs_repository, runtime
from ..tickets import changes, hooks
from ..tickets import repository as tickets_repository
from . import replies, tokens

log = logging.getLogger(__name__)

KIND = "customer_confirmation"
#: the answers the link takes, as the step machine's decisions
LINK_DECISIONS = {"confirm": "confirm", "reject": "reject"}


class _Config:
    """What the hooks need from the settings: they run inside other code's transactions (intake,
    a timer, a consumer) with no request to read them from, so ``main`` hands them over once."""

    key: bytes | None = None
    base_url: str = "http://127.0.0.1:8080"
    settings: Any = None


CONFIG = _Config()


def configure(settings: Any) -> None:
    secret = getattr(settings, "confirmation_token_key", None)
    CONFIG.key = secret.get_secret_value().encode() if secret is not None else None
    CONFIG.base_url = str(getattr(settings, "public_base_url", CONFIG.base_url)).rstrip("/")
    CONFIG.settings = settings
    if CONFIG.key is None:
        log.warning("TICKET_CONFIRMATION_TOKEN_KEY is not set: customers are not asked to confirm resolutions "
                    "(they can still answer by replying, and the steps still time out)")


def link_of(token: str, *, base_url: str) -> str:
    return f"{base_url}/v1/confirmations/{token}"


def customer_actor(ticket: Mapping[str, Any]) -> str:
    """Who answers for the ticket's customer in the audit and the step's record: the customer's
    id once known, else the requester (no address or phone number in the record, which an
    erasure could not reach)."""
    return f"customer:{ticket['customer_id']}" if ticket["customer_id"] else "customer:requester"


def route_of(plan: Any) -> dict[str, Any]:
    """The route notify-svc sends the request on: a reply's, plus for e-mail the thread
    (``in_reply_to``, ``references``) so that the customer's answer threads onto the ticket."""
    route = dict(plan.route)
    if plan.channel == "email":
        if plan.in_reply_to:
            route["in_reply_to"] = plan.in_reply_to
        if plan.references:
            route["references"] = list(plan.references)
    return route


# --- asking ------------------------------------------------------------------------------------


@runtime.on_step_started(KIND)
async def ask_customer(conn: Any, ticket: Mapping[str, Any], step: Mapping[str, Any]) -> None:
    """Mint the link and order its delivery. Without a key, or with no way to reach the customer,
    the step still runs (a reply still answers it, the timeout still ends it); the audit says why
    nobody was asked."""
    deadline: datetime | None = step["deadline"]
    reason = None
    if CONFIG.key is None:
        reason = "no confirmation link key is configured (TICKET_CONFIRMATION_TOKEN_KEY)"
    elif deadline is None:  # pragma: no cover - a confirmation's timeout is required
        reason = "the step has no deadline"
    plan = None
    if reason is None:
        plan = await conversation.plan_reply(conn, ticket, settings=CONFIG.settings)
        if not plan.deliverable:
            reason = plan.reason
    if reason is not None or plan is None or deadline is None or CONFIG.key is None:
        await tickets_repository.insert_audit(conn, ticket_id=ticket["id"], actor=runtime.CLOCK_ACTOR,
                                              action="confirmation_not_requested",
                                              changes={"step": step["key"], "step_id": str(step["id"]),
                                                       "reason": reason})
        return
    token = tokens.mint(CONFIG.key, ticket_id=ticket["id"], step_id=step["id"], expires=int(deadline.timestamp()))
    requester = {k: v for k, v in requester_of(ticket).items() if v is not None}
    now = datetime.now(UTC)
    await enqueue_raw(conn, outbox, events.TicketConfirmationRequested(
        source=changes.SOURCE, subject=str(ticket["id"]), time=now,
        data=events.TicketConfirmationRequestedData(
            ticket_id=ticket["id"], number=ticket["number"], step_id=step["id"], step=step["key"],
            subject=ticket["subject"], language=ticket["language"], channel=plan.channel,
            recipient=events.Requester(**requester), route=route_of(plan),
            link=link_of(token, base_url=CONFIG.base_url), expires_at=deadline, at=now)))
    await tickets_repository.insert_audit(conn, ticket_id=ticket["id"], actor=runtime.CLOCK_ACTOR,
                                          action="confirmation_requested",
                                          changes={"step": step["key"], "step_id": str(step["id"]),
                                                   "channel": plan.channel, "expires_at": deadline.isoformat()})


# --- the link ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LinkClosed(Exception):
    """The link cannot be answered: ``invalid`` (404), ``expired`` (410) or ``answered`` (409, the
    step ended another way); ``ticket`` when it is known, for the page's language and title."""

    reason: str
    ticket: Mapping[str, Any] | None = None
    step: Mapping[str, Any] | None = None


PROBLEMS = {
    "invalid": (404, "not-found", "Not found", "This confirmation link is not valid."),
    "expired": (410, "confirmation-expired", "Confirmation expired", "This confirmation link has expired."),
    "answered": (409, "step-finished", "Already answered",
                 "This confirmation has already been answered (or has ended); the answer stands."),
}


def problem_of(closed: LinkClosed) -> Problem:
    status, kind, title, detail = PROBLEMS[closed.reason]
    extra: dict[str, Any] = {"code": "step_finished"} if closed.reason == "answered" else {}
    return Problem(status, kind, title, detail, **extra)


def grant_of(token: str, *, now: float | None = None) -> tuple[tokens.ConfirmationGrant, bool]:
    """(grant, expired) of a genuine token; ``LinkClosed("invalid")`` for anything else (also when
    no key is configured: no link can be genuine then)."""
    if CONFIG.key is None:
        raise LinkClosed("invalid")
    try:
        return tokens.verify(CONFIG.key, token, now=time.time() if now is None else now), False
    except tokens.ExpiredToken as exc:
        return exc.grant, True
    except tokens.InvalidToken:
        raise LinkClosed("invalid") from None


async def _load(conn: Any, grant: tokens.ConfirmationGrant, *, lock: bool) -> tuple[Any, Any]:
    ticket = await (tickets_repository.lock_ticket if lock else tickets_repository.get_ticket_raw)(conn, grant.ticket_id)
    step = await runs_repository.get_step(conn, grant.step_id)
    if ticket is None or ticket["deleted_at"] is not None:
        raise LinkClosed("invalid")  # a soft-deleted ticket: not even its number and subject
    if step is None or step["ticket_id"] != ticket["id"] or step["kind"] != KIND:
        raise LinkClosed("invalid")  # pragma: no cover - a genuine token names a confirmation of its ticket
    return ticket, step


def last_decision(step: Mapping[str, Any]) -> Mapping[str, Any] | None:
    decisions = (step["state"] or {}).get("decisions") or ()
    return decisions[-1] if decisions else None


async def open_link(conn: Any, token: str) -> tuple[Any, Any]:
    """(ticket, step) of a link whose step still waits for the answer; ``LinkClosed`` else."""
    grant, expired = grant_of(token)
    ticket, step = await _load(conn, grant, lock=False)
    if step["status"] not in ("active", "pending"):
        raise LinkClosed("answered", ticket, step)
    if expired:
        raise LinkClosed("expired", ticket, step)
    return ticket, step


async def answer_by_link(conn: Any, token: str, *, answer: str, comment: str | None) -> tuple[Any, Any, bool]:
    """Take the customer's answer from the link, once: (ticket, step, replayed). The same answer
    on a step this link already ended gives the same result (``replayed``); anything else on an
    ended step is ``LinkClosed("answered")``. The caller's transaction commits it."""
    grant, expired = grant_of(token)
    ticket, step = await _load(conn, grant, lock=True)
    decision = LINK_DECISIONS[answer]
    if step["status"] not in ("active", "pending"):
        last = last_decision(step)
        via = ((step["state"] or {}).get("via") or {}).get(last["actor"]) if last else None
        if last is not None and last["decision"] == decision and via == "link":
            return ticket, step, True
        raise LinkClosed("answered", ticket, step)
    if expired:
        raise LinkClosed("expired", ticket, step)
    await runtime.decide(conn, ticket, step_key=step["key"], actor=customer_actor(ticket), decision=decision,
                         comment=comment, via="link", customer_id=ticket["customer_id"])
    ticket = await tickets_repository.get_ticket_raw(conn, ticket["id"])
    return ticket, await runs_repository.get_step(conn, step["id"]), False


def link_view(ticket: Mapping[str, Any], step: Mapping[str, Any], *, answer: str | None = None,
              replayed: bool = False) -> dict[str, Any]:
    """What the JSON side of the link shows: the ticket's number and subject, the step and how it
    stands; after an answer, that answer and whether it was a replay."""
    view: dict[str, Any] = {
        "ticket_id": ticket["id"], "number": ticket["number"], "subject": ticket["subject"],
        "language": language_of(ticket["language"]), "step": step["key"], "name": step["name"],
        "status": step["status"], "outcome": step["outcome"], "expires_at": step["deadline"],
        "ticket_status": ticket["status"],
    }
    if answer is not None:
        view.update(answer=answer, replayed=replayed)
    return view


# --- a reply -----------------------------------------------------------------------------------


def _is_answer_candidate(ticket: Mapping[str, Any], author_kind: str, initial: bool) -> bool:
    """A confirmation step runs only while its ticket is solved (runtime: it starts when an agent
    solves), so any other status needs no lookup: free for nearly every message."""
    return author_kind == "customer" and not initial and ticket["status"] == "solved"


async def _waiting_step(conn: Any, ticket: Mapping[str, Any]) -> Mapping[str, Any] | None:
    if not await runtime.DEFINED.get(conn):
        return None
    step = await runtime.current_step(conn, ticket["id"])
    if step is None or step["kind"] != KIND or step["status"] != "active":
        return None
    return step


@hooks.holds_status
async def holds_status(conn: Any, ticket: Mapping[str, Any], message: Any) -> bool:
    """A plain confirmation written while the step waits leaves the ticket solved: the decision
    then closes it, rather than the message reopening it first."""
    if not _is_answer_candidate(ticket, message.author_kind, message.initial):
        return False
    return replies.read(message.body_text) == "confirm" and await _waiting_step(conn, ticket) is not None


@hooks.after_message
async def answer_by_message(conn: Any, before: Mapping[str, Any], message: Mapping[str, Any],
                            ticket: Mapping[str, Any], actor: str) -> None:
    """The customer wrote while the step waited: a confirmation, or the step's ``reply``."""
    if not _is_answer_candidate(before, message["author_kind"], False) or not message["public"]:
        return
    step = await _waiting_step(conn, before)
    if step is None:
        return
    decision = replies.read(message["body_text"])
    via = (message["channel"] or "message")[:32]
    await runtime.decide(conn, ticket, step_key=step["key"], actor=customer_actor(ticket), decision=decision,
                         via=via, customer_id=ticket["customer_id"])
