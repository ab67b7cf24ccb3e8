"""From ``ticket.confirmation_requested`` to a delivery (in the consumer's transaction): the
customer is asked to confirm that their request is resolved.

The event's ``link`` is a bearer capability (whoever holds it confirms or rejects for the
customer) until the step ends or expires, so it goes into the delivery's payload, which the API
never shows, and into no log line, reason or metric; an undeliverable request keeps no copy.
Where it goes follows survey invitations (e-mail whenever there is an address), extended to the
chat channels a confirmation may come back on: the customer answers on the ticket's own thread.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from helpdesk_common import events

from ..notifications import repository as notifications
from ..surveys import service as surveys
from . import texts

KIND = "confirmation"
#: e-mail ids carried to thread the request under the customer's last message (as replies do)
REFERENCES_MAX = 20
#: the route members a DingTalk robot reply needs: never ``userid`` (that would address a member
#: of the company by work notification, not the customer)
_DINGTALK_ROUTE = ("session_webhook", "session_webhook_expires_at", "sender_staff_id", "robot_code",
                   "conversation_id")


def plan(channel: str, *, recipient: events.Requester, route: Mapping[str, Any]) -> surveys.Plan:
    """E-mail whenever the customer has an address, else WeChat or WeCom as for surveys, else
    the DingTalk robot conversation or the chat widget's conversation the route names; else
    undeliverable, saying what was missing (the step then runs to its timeout)."""
    target = surveys.plan(channel, recipient=recipient, route=route)
    if target.undeliverable is None:
        return target
    if channel == "dingtalk" and (route.get("session_webhook") or route.get("sender_staff_id")):
        return surveys.Plan("dingtalk", {k: route[k] for k in _DINGTALK_ROUTE if route.get(k)})
    if channel == "chat" and isinstance(route.get("conversation_key"), str) and route["conversation_key"]:
        return surveys.Plan("chat", {"conversation_key": route["conversation_key"]})
    return surveys.Plan(channel, {}, undeliverable=(
        f"no e-mail address for the customer and no way to reach them on the {channel!r} channel "
        f"(WeChat needs an openid, WeCom an external_userid, DingTalk a session webhook or staff id, "
        f"chat a conversation key)"))


def threading(channel: str, route: Mapping[str, Any]) -> dict[str, Any]:
    """``in_reply_to`` and ``references`` for an e-mail (ticket-svc passes the ids of the
    customer's messages in the route, as it does for replies), so the request shows in the
    customer's thread; the subject's ``[#number]`` threads the answer whatever the client does."""
    if channel != "email":
        return {}
    in_reply_to = route.get("in_reply_to")
    references = route.get("references")
    refs = [r for r in references if isinstance(r, str) and r][-REFERENCES_MAX:] if isinstance(references, list) else []
    return {"in_reply_to": in_reply_to if isinstance(in_reply_to, str) and in_reply_to else None,
            "references": refs}


async def _opted_out(conn: Any, data: events.TicketConfirmationRequestedData, target: surveys.Plan) -> bool:
    """A customer who opted out of notifications is not asked (as for surveys): by the address
    or by the customer the ticket is linked to (the projection; the event names none)."""
    ticket = await notifications.ticket(conn, data.ticket_id)
    customer_id = ticket["customer_id"] if ticket is not None else None
    email = target.route["to"][0] if target.channel == "email" else (data.recipient.email or None)
    return await notifications.is_opted_out(conn, customer_id=customer_id, email=email) is not None


def dedupe_key(step_id: uuid.UUID, channel: str) -> str:
    """One delivery per (step, channel): a redelivered or replayed request sends nothing twice."""
    return f"confirmation:{step_id}:{channel}"


async def queue_request(conn: Any, *, event: events.TicketConfirmationRequested, settings: Any,
                        now: datetime | None = None) -> uuid.UUID | None:
    """The queued (or, when it cannot be sent, ``undeliverable``) delivery of one request; None
    when the step already has its delivery on that channel. Returns the id only when queued."""
    data = event.data
    now = now or datetime.now(UTC)
    target = plan(data.channel, recipient=data.recipient, route=data.route)
    reason = target.undeliverable or surveys.link_problem(data.link, expires_at=data.expires_at, now=now,
                                                          what="confirmation link")
    if reason is None and await _opted_out(conn, data, target):
        reason = "the customer opted out of notifications"
    words = texts.request(language=data.language, link=data.link, expires_at=data.expires_at,
                          name=data.recipient.name, number=data.number, subject=data.subject)
    payload = {
        "ticket_id": str(data.ticket_id), "step_id": str(data.step_id), "step": data.step, "number": data.number,
        "channel": target.channel, "route": target.route, "subject": words.subject, "body_text": words.body_text,
        "body_html": words.body_html, "language": texts.language_of(data.language),
        "recipient": {"name": data.recipient.name, "email": (target.route.get("to") or [None])[0]},
        "automatic": True, **threading(target.channel, data.route),
    }
    return await surveys.record(conn, kind=KIND, target=target, dedupe_key=dedupe_key(data.step_id, target.channel),
                                payload=payload, reason=reason, settings=settings, ticket_id=data.ticket_id,
                                event_id=event.id)
