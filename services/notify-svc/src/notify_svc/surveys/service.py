"""From ``survey.delivery_requested`` to a delivery (in the consumer's transaction).

The event's ``link`` is a bearer capability (whoever holds it answers the survey), so it goes
into the delivery's payload, which the API never shows, and into no log line, reason or metric.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from helpdesk_common import events

from ..deliveries import handoff as deliveries
from ..deliveries.service import destination_of
from ..notifications import repository as notifications
from . import texts

KIND = "survey"


@dataclass(frozen=True, slots=True)
class Plan:
    """Where an invitation goes: a channel and its route, or why it cannot go anywhere."""

    channel: str
    route: dict[str, Any]
    undeliverable: str | None = None


def _address(recipient: events.Requester, route: Mapping[str, Any]) -> str | None:
    to = route.get("to")
    if isinstance(to, list):
        to = next((t for t in to if isinstance(t, str) and "@" in t), None)
    if isinstance(to, str) and "@" in to:
        return to.strip()
    if recipient.email and "@" in recipient.email:
        return recipient.email.strip()
    return None


def plan(channel: str, *, recipient: events.Requester, route: Mapping[str, Any]) -> Plan:
    """E-mail whenever the customer has an address (a survey is a message they read at leisure,
    and SMTP has no 48-hour window); else a WeChat or WeCom text on that channel when the route
    (or the recipient) names the user there; else undeliverable, saying what was missing."""
    address = _address(recipient, route)
    if address is not None:
        email_route: dict[str, Any] = {"to": [address]}
        if channel == "email" and route.get("from"):
            email_route["from"] = route["from"]  # the support address they wrote to, when it is ours
        return Plan("email", email_route)
    if channel == "wechat":
        openid = route.get("openid") or recipient.wechat_openid
        if isinstance(openid, str) and openid:
            return Plan("wechat", {k: v for k, v in {"openid": openid, "app_id": route.get("app_id")}.items() if v})
    if channel == "wecom":
        external = route.get("external_userid")
        if isinstance(external, str) and external:
            return Plan("wecom", {k: v for k, v in {"external_userid": external,
                                                    "open_kfid": route.get("open_kfid")}.items() if v})
    return Plan(channel, {}, undeliverable=f"no e-mail address for the customer and no way to reach them on "
                                           f"the {channel!r} channel (WeChat needs an openid, WeCom an "
                                           f"external_userid)")


def link_problem(link: str, *, expires_at: datetime, now: datetime, what: str = "survey link") -> str | None:
    """Why the link cannot be sent (never quoting it), or None. ``what`` names it in the reason
    (confirmation requests carry such links too)."""
    if not link.startswith(("https://", "http://")):
        return f"the {what} is not a full http(s) URL (is PUBLIC_BASE_URL set?)"
    if expires_at <= now:
        return f"the {what} expired before it could be sent"
    return None


def dedupe_key(survey_id: uuid.UUID, channel: str) -> str:
    """One delivery per (survey, channel): a redelivered or replayed request sends nothing twice."""
    return f"survey:{survey_id}:{channel}"


async def queue_invitation(conn: Any, *, event: events.SurveyDeliveryRequested, settings: Any,
                           now: datetime | None = None) -> uuid.UUID | None:
    """The queued (or, when it cannot be sent, ``undeliverable``) delivery of one invitation; None
    when this survey already has its delivery on that channel. Returns the id only when queued."""
    data = event.data
    now = now or datetime.now(UTC)
    target = plan(data.channel, recipient=data.recipient, route=data.route)
    reason = target.undeliverable or link_problem(data.link, expires_at=data.expires_at, now=now)
    if reason is None and await notifications.is_opted_out(
            conn, customer_id=data.customer_id, email=target.route["to"][0] if target.channel == "email" else None):
        reason = "the customer opted out of notifications"
    invitation = texts.invitation(kind=data.kind, language=data.language, link=data.link, expires_at=data.expires_at,
                                  name=data.recipient.name, number=data.number, subject=data.subject)
    payload = {
        "survey_id": str(data.survey_id), "survey_kind": data.kind, "ticket_id": str(data.ticket_id) if data.ticket_id else None,
        "number": data.number, "channel": target.channel, "route": target.route, "subject": invitation.subject,
        "body_text": invitation.body_text, "body_html": invitation.body_html,
        "language": texts.language_of(data.language),
        "recipient": {"name": data.recipient.name, "email": target.route.get("to", [None])[0]}, "automatic": True,
    }
    return await record(conn, kind=KIND, target=target, dedupe_key=dedupe_key(data.survey_id, target.channel),
                        payload=payload, reason=reason, settings=settings, ticket_id=data.ticket_id,
                        event_id=event.id)


async def record(conn: Any, *, kind: str, target: Plan, dedupe_key: str, payload: dict[str, Any],
                 reason: str | None, settings: Any, ticket_id: uuid.UUID | None,
                 event_id: uuid.UUID) -> uuid.UUID | None:
    """The delivery of a message that carries a bearer link (a survey invitation, a confirmation
    request): ``queued``, or ``undeliverable`` with ``reason`` and without the texts, so that a
    message never sent keeps no copy of the link. The id only when queued; None also when
    ``dedupe_key`` has its delivery already."""
    if reason is not None:
        payload = {**payload, "body_text": "", "body_html": ""}
    delivery_id = await deliveries.queue(
        conn, delivery_id=uuid.uuid4(), kind=kind, channel=target.channel,
        destination=destination_of(target.channel, target.route, settings=settings), dedupe_key=dedupe_key,
        payload=payload, max_attempts=settings.reply_max_attempts, ticket_id=ticket_id, event_id=event_id,
        status="queued" if reason is None else "undeliverable", reason=reason)
    return delivery_id if reason is None else None
