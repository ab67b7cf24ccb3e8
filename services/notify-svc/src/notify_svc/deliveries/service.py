"""Delivery rules: what a reply request becomes, what an attempt's outcome leads to, what the
API shows. Pure functions over plain data where possible; the SQL is in repository.py."""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from helpdesk_common import events
from helpdesk_common.problems import Problem

from ..webhooks import schedule as webhook_schedule
from ..webhooks import service as webhooks
from ..webhooks.schemas import NOT_FOR_WEBHOOKS
from . import handoff, repository

SOURCE = "notify-svc"
#: channels a reply can go out on; web-form and phone requesters are answered by e-mail
ADAPTER_CHANNELS = ("email", "wechat", "wecom", "dingtalk")
EMAIL_FALLBACK_CHANNELS = ("web", "phone", "api")
MAX_REASON = 500


def answer_channel(channel: str, *, recipient_email: str | None, route: Mapping[str, Any]) -> str:
    """The channel a reply goes out on: the customer's, except that web-form, phone and API
    requesters are answered by e-mail when they have an address (else the delivery stays on
    their channel and is recorded as undeliverable there)."""
    if channel in EMAIL_FALLBACK_CHANNELS and (recipient_email or route.get("to")):
        return "email"
    return channel


def destination_of(channel: str, route: Mapping[str, Any], *, settings: Any) -> str:
    """The key of per-destination limits: the SMTP server (one per deployment), the WeChat app,
    the WeCom corp, the DingTalk app, a webhook's host."""
    if channel == "email":
        return "smtp"
    if channel == "wechat":
        app_id = route.get("app_id")
        return f"wechat:{app_id if isinstance(app_id, str) and app_id else settings.wechat_app_id}"
    if channel == "wecom":
        return f"wecom:{settings.wecom_corp_id}"
    if channel == "dingtalk":
        return f"dingtalk:{settings.dingtalk_app_key}"
    return channel


def reply_dedupe_key(message_id: uuid.UUID, channel: str) -> str:
    """One delivery per (message, channel)."""
    return f"reply:{message_id}:{channel}"


def webhook_dedupe_key(event_id: uuid.UUID, subscription_id: uuid.UUID) -> str:
    """One delivery per (event, subscription)."""
    return f"webhook:{event_id}:{subscription_id}"


async def queue_reply(conn: Any, *, event: events.TicketReplyRequested, settings: Any) -> uuid.UUID | None:
    """A queued delivery for a reply request, in the caller's (the consumer's) transaction; None
    when the same message already has its delivery on that channel."""
    data = event.data
    channel = answer_channel(data.channel, recipient_email=data.recipient.email, route=data.route)
    return await handoff.queue(
        conn, delivery_id=uuid.uuid4(), kind="reply", channel=channel,
        destination=destination_of(channel, data.route, settings=settings),
        dedupe_key=reply_dedupe_key(data.message_id, channel), payload=data.model_dump(mode="json"),
        max_attempts=settings.reply_max_attempts, ticket_id=data.ticket_id, message_id=data.message_id,
        event_id=event.id)


#: events never offered to webhook receivers (bearer URLs inside; the subscription API refuses them too)
WEBHOOK_EXCLUDED_TYPES = NOT_FOR_WEBHOOKS


def offered_to_webhooks(event: Any) -> bool:
    """Whether receivers may get ``event``. Not a reply request (bearer URLs), and not the status
    of a webhook delivery: each such report would be a webhook delivery reporting its own status,
    without end."""
    if event.type in WEBHOOK_EXCLUDED_TYPES:
        return False
    return not (event.type.startswith("delivery.") and getattr(event.data, "kind", None) == "webhook")


def webhook_destination(url: str) -> str:
    """Per-destination limits for webhooks: one receiving host."""
    return f"webhook:{webhooks.url_host(url)}"


async def queue_webhooks(conn: Any, *, event: Any) -> int:
    """One queued delivery per enabled subscription of the event's type, in the consumer's
    transaction; the number queued (a redelivered event queues none: (event, subscription) is
    unique). The body is kept as the exact bytes to sign and post on every attempt."""
    if not offered_to_webhooks(event):
        return 0
    subscriptions = await repository.enabled_subscriptions(conn, event.type)
    if not subscriptions:
        return 0
    body = events.encode(event).decode()
    queued = 0
    for subscription in subscriptions:
        created = await handoff.queue(
            conn, delivery_id=uuid.uuid4(), kind="webhook", channel="webhook",
            destination=webhook_destination(subscription["url"]),
            dedupe_key=webhook_dedupe_key(event.id, subscription["id"]),
            payload={"event_type": event.type, "body": body}, max_attempts=webhook_schedule.MAX_ATTEMPTS,
            ticket_id=_ticket_id(event), subscription_id=subscription["id"], event_id=event.id)
        queued += created is not None
    return queued


REQUESTED_WEBHOOK_TYPE = "ticket.webhook_requested"
UNKNOWN_SUBSCRIPTION = "no webhook subscription with this id (deleted, or never created)"


def requested_webhook_body(event: events.TicketWebhookRequested) -> str:
    """The exact body a trigger's ``call_webhook`` posts: the event's own CloudEvent envelope
    (``type`` ``ticket.webhook_requested``, its ``id``, ``time``, ``subject``), whose ``data`` is
    the action's ``payload`` with the ticket's reference and the rule's name laid over it, so
    that a payload cannot pass itself off as another ticket."""
    envelope = event.model_dump(mode="json")
    data = envelope["data"]
    envelope["data"] = {**data.get("payload", {}), "ticket_id": data["ticket_id"], "number": data.get("number"),
                        "rule": data["rule"]}
    return orjson.dumps(envelope).decode()


async def queue_requested_webhook(conn: Any, *, event: events.TicketWebhookRequested) -> uuid.UUID | None:
    """One delivery of a trigger's ``call_webhook`` to the subscription it names, whatever event
    types that subscription selects, signed and retried like every webhook delivery. An unknown
    subscription is recorded ``failed`` and a disabled one ``undeliverable``, each with its reason
    and never attempted (no error loop in the consumer). The id when queued, else None; a
    redelivered event adds nothing ((event, subscription) is unique)."""
    data = event.data
    subscription = await repository.subscription_for_send(conn, data.webhook_id)
    status, reason, destination = "queued", None, "webhook:unknown"
    if subscription is None:
        status, reason = "failed", UNKNOWN_SUBSCRIPTION
    else:
        destination = webhook_destination(subscription["url"])
        if not subscription["enabled"]:
            status, reason = "undeliverable", webhooks.DISABLED_UNDELIVERABLE
    created = await handoff.queue(
        conn, delivery_id=uuid.uuid4(), kind="webhook", channel="webhook", destination=destination,
        dedupe_key=webhook_dedupe_key(event.id, data.webhook_id),
        payload={"event_type": REQUESTED_WEBHOOK_TYPE, "body": requested_webhook_body(event),
                 "rule": data.rule},
        max_attempts=webhook_schedule.MAX_ATTEMPTS, ticket_id=data.ticket_id, subscription_id=data.webhook_id,
        event_id=event.id, status=status, reason=reason)
    return created if status == "queued" else None


def _ticket_id(event: Any) -> uuid.UUID | None:
    value = getattr(getattr(event, "data", None), "ticket_id", None)
    return value if isinstance(value, uuid.UUID) else None


# ---- after an attempt -----------------------------------------------------------------------------


def backoff_s(attempt: int, *, base_s: float, cap_s: float, draw: Callable[[], float] = random.random) -> float:
    """Exponential backoff with full jitter: uniform in [0, min(cap, base * 4^(attempt-1))],
    at least a second. Full jitter spreads the retries of deliveries that failed together (one
    SMTP server down) over the whole window instead of bringing them back as one wave."""
    ceiling = min(cap_s, base_s * (4.0 ** max(0, attempt - 1)))
    return max(1.0, draw() * ceiling)


def attempt_budget(kind: str, *, settings: Any) -> int:
    """Attempts a delivery gets at first, and again after each manual retry or replay."""
    return webhook_schedule.MAX_ATTEMPTS if kind == "webhook" else settings.reply_max_attempts


def attempts_in_budget(attempt: int, *, max_attempts: int, budget: int) -> int:
    """Attempt number ``attempt`` counted from the start of its budget: a manual retry or a
    replay grants a fresh budget (``max_attempts`` = attempts so far + budget), and its retries
    start the schedule again instead of continuing at its longest step. When the budget setting
    changed since the row was queued the offset can be wrong; a count below 1 falls back to
    ``attempt`` (the row was never retried by hand)."""
    made = attempt - max(0, max_attempts - budget)
    return made if made >= 1 else attempt


def after_attempt(*, kind: str, outcome: str, attempt: int, max_attempts: int, retry_after: float | None,
                  now: datetime, settings: Any, draw: Callable[[], float] = random.random
                  ) -> tuple[str, datetime | None]:
    """(new status, next attempt time) after attempt number ``attempt``.

    sent → sent; permanent → failed at once; undeliverable → undeliverable; transient → queued
    again after the backoff (webhooks: the Standard Webhooks schedule), or failed when the
    attempts are used up. A provider's ``retry_after`` can only lengthen the wait, up to the cap."""
    if outcome == "sent":
        return "sent", None
    if outcome == "undeliverable":
        return "undeliverable", None
    if outcome != "transient" or attempt >= max_attempts:
        return "failed", None
    made = attempts_in_budget(attempt, max_attempts=max_attempts, budget=attempt_budget(kind, settings=settings))
    if kind == "webhook":
        delay = webhook_schedule.next_delay_s(min(made, webhook_schedule.MAX_ATTEMPTS - 1),
                                              retry_after_s=retry_after, jitter=min(draw(), 0.999))
        delay = float(delay or webhook_schedule.MAX_RETRY_AFTER_S)
    else:
        delay = backoff_s(made, base_s=settings.reply_backoff_base_s, cap_s=settings.reply_backoff_cap_s,
                          draw=draw)
        if retry_after is not None and retry_after > delay:
            delay = min(float(retry_after), settings.reply_backoff_cap_s)
    return "queued", now + timedelta(seconds=delay)


def reports_status(kind: str) -> bool:
    """Whether a delivery's outcomes are published (``delivery.*``). Only replies: ticket-svc shows
    each public agent message's ``delivery_status``, and nothing consumes the others. A
    notification's or a webhook's outcome is notify-svc's own record (the notification log, the
    webhook delivery log); publishing it cost a Kafka record and a ticket-svc inbox row per
    delivery for nothing, on every new ticket (its acknowledgement is a notification)."""
    return kind == "reply"


def status_event(row: Mapping[str, Any]) -> events.DeliverySucceeded | events.DeliveryDeferred | events.DeliveryFailed:
    """The event telling ticket-svc what became of a reply. Keyed by the ticket, so a message's
    status events stay in order with the ticket's other events."""
    status = row["status"]
    data = events.DeliveryStatusData(
        delivery_id=row["id"], kind=row["kind"], channel=row["channel"],
        status="queued" if status == "sending" else status, attempts=row["attempts"], ticket_id=row["ticket_id"],
        message_id=row["message_id"], reason=row["reason"],
        next_attempt_at=row["next_attempt_at"] if status == "queued" else None, at=datetime.now(UTC))
    subject = str(row["ticket_id"] or row["id"])
    if status == "sent":
        return events.DeliverySucceeded(source=SOURCE, subject=subject, data=data)
    if status in ("failed", "undeliverable"):
        return events.DeliveryFailed(source=SOURCE, subject=subject, data=data)
    return events.DeliveryDeferred(source=SOURCE, subject=subject, data=data)


# ---- a webhook attempt and its subscription ---------------------------------------------------------


def endpoint_verdict(*, kind: str, outcome: str, code: str | None) -> webhook_schedule.EndpointVerdict | None:
    """What a webhook attempt says about the receiving endpoint, for the auto-disable rule; None
    when it says nothing. Any answer outside 2xx (3xx included), a network error and a refusal by
    the egress policy are the endpoint's failures (the sender gives each a ``code``: the status,
    ``network``, ``refused``); an attempt that never tried the endpoint (the subscription is gone
    or disabled, no key to sign with, an internal error) has no code and counts for nothing."""
    if kind != "webhook":
        return None
    if outcome == "sent":
        return "success"
    if code is None:
        return None
    if outcome == "permanent" and code == "410":
        return "gone"
    return "failure"


async def note_endpoint_attempt(conn: Any, *, subscription_id: uuid.UUID, verdict: webhook_schedule.EndpointVerdict,
                                at: datetime, now: datetime, outbox: Any) -> bool | None:
    """Apply an attempt's verdict to its subscription, in the record's transaction: keep
    ``failing_since``, and disable the subscription when the rule says so — with
    ``webhook.disabled`` in the outbox and its queued deliveries ended. Locks the subscription
    before the delivery row is touched (the order every writer of both keeps). Answers whether
    the subscription is enabled now (None: it was deleted), which matters only to a delivery that
    would wait for another attempt: a success answers True unread.

    A success only ends a run of failures: one conditional UPDATE, which neither locks nor writes
    the row of a healthy endpoint, so successful deliveries to one receiver never queue on it."""
    from helpdesk_common.outbox import enqueue_raw

    if verdict == "success":
        await repository.clear_failing_since(conn, subscription_id)
        return True
    subscription = await repository.subscription_state(conn, subscription_id, lock="update")
    if subscription is None:
        return None
    if not subscription["enabled"]:
        return False
    failing_since, cause = webhook_schedule.endpoint_after_attempt(subscription["failing_since"], verdict=verdict,
                                                                   at=at, now=now)
    if cause is None:
        if failing_since != subscription["failing_since"]:
            await repository.set_failing_since(conn, subscription_id, failing_since)
        return True
    reason = webhook_schedule.disabled_reason(cause, failing_since=failing_since)
    await repository.disable_subscription(conn, subscription_id, reason=reason, failing_since=failing_since)
    await repository.end_queued_webhook_deliveries(conn, subscription_id, reason=webhooks.DISABLED_UNDELIVERABLE)
    await enqueue_raw(conn, outbox, webhooks.disabled_event(subscription_id=subscription_id, url=subscription["url"],
                                                            cause=cause, failing_since=failing_since, at=now))
    return False


def settle_for_subscription(status: str, next_at: datetime | None, reason: str | None, *,
                            subscription_enabled: bool | None) -> tuple[str, datetime | None, str | None]:
    """A webhook delivery that would wait for another attempt ends ``undeliverable`` when its
    subscription is disabled or deleted: no attempt will be made."""
    if status != "queued" or subscription_enabled is True:
        return status, next_at, reason
    gone = webhooks.DELETED_UNDELIVERABLE if subscription_enabled is None else webhooks.DISABLED_UNDELIVERABLE
    return "undeliverable", None, gone


# ---- the API --------------------------------------------------------------------------------------


def as_read(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"], "kind": row["kind"], "channel": row["channel"], "destination": row["destination"],
        "status": row["status"], "attempts": row["attempts"], "max_attempts": row["max_attempts"],
        "next_attempt_at": row["next_attempt_at"] if row["status"] in ("queued", "sending") else None,
        "reason": row["reason"], "last_code": row["last_code"], "provider_id": row["provider_id"],
        "ticket_id": row["ticket_id"], "message_id": row["message_id"], "subscription_id": row["subscription_id"],
        "event_id": row["event_id"], "created_at": row["created_at"], "updated_at": row["updated_at"],
        "sent_at": row["sent_at"], "replays": row["replays"],
    }


def attempt_as_read(row: Mapping[str, Any]) -> dict[str, Any]:
    return {"number": row["number"], "started_at": row["started_at"], "duration_ms": row["duration_ms"],
            "outcome": row["outcome"], "code": row["code"], "error": row["error"], "trigger": row["trigger"]}


def not_found() -> Problem:
    return Problem(404, "not-found", "Not found", "No such delivery.")


async def retry(conn: Any, *, delivery_id: uuid.UUID, settings: Any, outbox: Any) -> dict[str, Any]:
    """Queue a dead delivery again (``failed`` or ``undeliverable``) with a fresh budget of
    attempts, and, for a reply, say so (``delivery.deferred``: the message shows ``queued``
    again). A delivery that is queued, in flight or sent is a 409: retrying it could only send it
    twice (a webhook delivery that was sent is replayed instead, ``replay_webhook``)."""
    from helpdesk_common.outbox import enqueue_raw

    row = await repository.get(conn, delivery_id, for_update=True)
    if row is None:
        raise not_found()
    if row["status"] not in ("failed", "undeliverable"):
        raise Problem(409, "delivery-not-dead", "Delivery not retryable",
                      f"Only failed or undeliverable deliveries can be retried; this one is {row['status']}.")
    budget = attempt_budget(row["kind"], settings=settings)
    updated = await repository.requeue(conn, delivery_id, max_attempts=row["attempts"] + budget)
    if reports_status(updated["kind"]):
        await enqueue_raw(conn, outbox, status_event(updated))
    return as_read(updated)


def replay_request_hash(subscription_id: uuid.UUID, delivery_id: uuid.UUID) -> str:
    import hashlib

    return hashlib.sha256(f"webhook.replay\n{subscription_id}\n{delivery_id}".encode()).hexdigest()


async def webhook_delivery(conn: Any, *, subscription_id: uuid.UUID, delivery_id: uuid.UUID,
                           lock: str | None = None) -> tuple[Any, Any]:
    """(subscription, delivery) of a subscription's delivery log: 404 for an unknown subscription,
    and for a delivery that is not this subscription's (whether or not it exists elsewhere)."""
    subscription = await repository.subscription_state(conn, subscription_id, lock=lock)
    if subscription is None:
        raise webhooks.not_found()
    row = await repository.get(conn, delivery_id, for_update=lock is not None)
    if row is None or row["subscription_id"] != subscription_id:
        raise not_found()
    return subscription, row


async def replay_webhook(conn: Any, *, subscription_id: uuid.UUID, delivery_id: uuid.UUID, caller: str,
                         idempotency_key: str | None) -> tuple[dict[str, Any], bool]:
    """Send a webhook delivery's event again, whatever became of it (sent, failed, undeliverable):
    the same row, so the same ``webhook-id`` (receivers drop it if they already have it), signed
    anew at the attempt, with a fresh budget of attempts; its next attempt is logged as a
    ``replay``. (delivery, whether this answers an earlier request with the same
    ``Idempotency-Key``, which queues nothing.)

    409 ``webhook-disabled`` while the subscription is disabled (the send would only end
    undeliverable); 409 ``delivery-in-progress`` while the delivery is queued or in flight (a
    second send would race the first)."""
    if idempotency_key is not None:
        digest = replay_request_hash(subscription_id, delivery_id)
        prior = await repository.claim_replay_key(conn, caller=caller, key=idempotency_key, request_hash=digest)
        if prior is not None:
            if prior != digest:
                raise Problem(422, "idempotency-key-reused", "Idempotency key reused",
                              "This Idempotency-Key was used for a different request.")
            _, row = await webhook_delivery(conn, subscription_id=subscription_id, delivery_id=delivery_id)
            return as_read(row), True
    subscription, row = await webhook_delivery(conn, subscription_id=subscription_id, delivery_id=delivery_id,
                                               lock="share")
    if not subscription["enabled"]:
        raise Problem(409, "webhook-disabled", "Webhook subscription disabled",
                      "The subscription is disabled: enable it (PATCH enabled=true) before replaying.")
    if row["status"] in ("queued", "sending"):
        raise Problem(409, "delivery-in-progress", "Delivery in progress",
                      f"The delivery is {row['status']}: it is about to be sent; replay it once it has been.")
    updated = await repository.requeue(conn, delivery_id, max_attempts=row["attempts"] + webhook_schedule.MAX_ATTEMPTS,
                                       trigger="replay")
    return as_read(updated), False
