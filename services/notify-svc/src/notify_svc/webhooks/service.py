"""Webhook subscription rules; flushes, never commits (endpoints own the transaction)."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncConnection

from helpdesk_common import events
from helpdesk_common.concurrency import check_version
from helpdesk_common.outbox import enqueue
from helpdesk_common.problems import Problem

from ..db import outbox
from ..egress import IPNetwork, check_url, parse_allow_networks
from . import repository, schedule, signing
from .crypto import SecretBox
from .schemas import WebhookCreate, WebhookPatch

#: after a rotation the replaced secret keeps signing for this long (docs/webhooks.md)
ROTATION_GRACE = timedelta(hours=24)
#: the reason of a delivery that will not be sent because of its subscription
DISABLED_UNDELIVERABLE = "the webhook subscription is disabled"
DELETED_UNDELIVERABLE = "the webhook subscription was deleted"
SOURCE = "notify-svc"


@lru_cache(maxsize=4)
def _box(key_setting: str) -> SecretBox | None:
    return SecretBox.from_setting(key_setting)


@lru_cache(maxsize=4)
def _allow(allow_setting: str) -> tuple[IPNetwork, ...]:
    return parse_allow_networks(allow_setting)


def secret_box(settings: Any) -> SecretBox:
    """The key for secrets at rest, or 503 when the operator has not configured one."""
    box = _box(settings.secret_key.get_secret_value())
    if box is None:
        raise Problem(503, "webhooks-not-configured", "Webhooks are not configured",
                      "NOTIFY_SECRET_KEY is not set: webhook secrets cannot be stored.",
                      headers={"Retry-After": "300"})
    return box


def allow_networks(settings: Any) -> tuple[IPNetwork, ...]:
    return _allow(settings.webhook_allow_networks)


def as_read(row: Mapping[str, Any]) -> dict[str, Any]:
    """The public view: no secret, encrypted or not, ever."""
    return {"id": row["id"], "url": row["url"], "event_types": list(row["event_types"]),
            "description": row["description"], "enabled": row["enabled"],
            "disabled_reason": row["disabled_reason"], "failing_since": row["failing_since"],
            "previous_secret_expires_at": row["previous_secret_expires_at"], "version": row["version"],
            "created_at": row["created_at"], "updated_at": row["updated_at"]}


def refused_url(reason: str) -> Problem:
    return Problem(422, "validation-error", "Validation failed", "One or more fields are invalid.",
                   errors=[{"field": "body.url", "message": f"refused by the egress policy: {reason}",
                            "code": "url_refused"}])


def check_subscription_url(url: str, allow: tuple[IPNetwork, ...]) -> None:
    """What can be decided without DNS (scheme, literal addresses, localhost); a name is
    checked again, address by address, at each delivery (egress.py)."""
    reason = check_url(url, allow)
    if reason is not None:
        raise refused_url(reason)


def request_hash(body: WebhookCreate) -> str:
    canonical = orjson.dumps(body.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(b"webhook.create\n" + canonical).hexdigest()


async def replay(conn: AsyncConnection, *, caller: str, key: str | None, body: WebhookCreate) -> dict[str, Any] | None:
    """The subscription an earlier identical create made with this ``Idempotency-Key`` (without
    its secret: that was shown once), or None when the key is new (and now claimed)."""
    if key is None:
        return None
    digest = request_hash(body)
    if await repository.claim_key(conn, caller=caller, key=key, request_hash=digest):
        return None
    prior = await repository.get_key(conn, caller=caller, key=key)
    if prior.request_hash != digest:
        raise Problem(422, "idempotency-key-reused", "Idempotency key reused",
                      "This Idempotency-Key was used for a different request.")
    row = await repository.get(conn, prior.subscription_id) if prior.subscription_id else None
    if row is None:
        raise Problem(409, "conflict", "Conflict",
                      "The subscription created with this Idempotency-Key no longer exists.")
    return as_read(row)


async def create(conn: AsyncConnection, *, body: WebhookCreate, box: SecretBox, allow: tuple[IPNetwork, ...],
                 created_by: str, idempotency_key: str | None = None) -> dict[str, Any]:
    check_subscription_url(body.url, allow)
    subscription_id = uuid.uuid4()
    secret = signing.generate_secret()
    row = await repository.insert(conn, subscription_id=subscription_id, url=body.url,
                                  event_types=list(body.event_types), description=body.description,
                                  secret_encrypted=box.encrypt(secret, owner=subscription_id), created_by=created_by)
    if idempotency_key is not None:
        await repository.bind_key(conn, caller=created_by, key=idempotency_key, subscription_id=subscription_id)
    return {**as_read(row), "secret": secret}


async def _locked(conn: AsyncConnection, subscription_id: uuid.UUID, if_match: str | None) -> Mapping[str, Any]:
    row = await repository.get(conn, subscription_id, for_update=True)
    if row is None:
        raise not_found()
    check_version(row["version"], if_match, what="webhook subscription")
    return row


def url_host(url: str) -> str:
    """The host of a subscription's URL: what may be shown where the URL may not (its path or
    query can carry the receiver's token)."""
    from urllib.parse import urlsplit

    try:
        return urlsplit(url).hostname or "unknown"
    except ValueError:
        return "unknown"


def disabled_event(*, subscription_id: uuid.UUID, url: str, cause: schedule.DisableCause,
                   failing_since: datetime | None, at: datetime) -> events.WebhookDisabled:
    """``webhook.disabled``, keyed by the subscription: the host only, never the URL."""
    return events.WebhookDisabled(source=SOURCE, subject=str(subscription_id), data=events.WebhookDisabledData(
        subscription_id=subscription_id, url_host=url_host(url), cause=cause,
        reason=schedule.disabled_reason(cause, failing_since=failing_since), failing_since=failing_since, at=at))


async def update(conn: AsyncConnection, *, subscription_id: uuid.UUID, body: WebhookPatch,
                 allow: tuple[IPNetwork, ...], if_match: str | None) -> dict[str, Any]:
    """Disabling publishes ``webhook.disabled`` (``cause: admin``) and ends the queued deliveries,
    as an automatic disable does, so whoever watches for disabled subscriptions sees all of them."""
    row = await _locked(conn, subscription_id, if_match)
    changes = body.model_dump(exclude_unset=True)
    if "url" in changes:
        check_subscription_url(changes["url"], allow)
    enabled = changes.get("enabled", row["enabled"])
    reason, failing_since = row["disabled_reason"], row["failing_since"]
    if enabled and not row["enabled"]:
        reason, failing_since = None, None  # re-enabled: a fresh start for the auto-disable rule
    elif not enabled and row["enabled"]:
        reason = schedule.disabled_reason("admin", failing_since=failing_since)
    updated = await repository.update(
        conn, subscription_id, url=changes.get("url", row["url"]),
        event_types=list(changes.get("event_types", row["event_types"])),
        description=changes.get("description", row["description"]), enabled=enabled,
        disabled_reason=reason, failing_since=failing_since)
    if row["enabled"] and not enabled:
        await repository.end_queued_deliveries(conn, subscription_id, reason=DISABLED_UNDELIVERABLE)
        await enqueue(conn, outbox, disabled_event(subscription_id=subscription_id, url=updated["url"], cause="admin",
                                                   failing_since=failing_since, at=datetime.now(UTC)))
    return as_read(updated)


async def rotate_secret(conn: AsyncConnection, *, subscription_id: uuid.UUID, box: SecretBox,
                        if_match: str | None, now: datetime | None = None) -> dict[str, Any]:
    """A new secret (returned once); the current one keeps signing for ``ROTATION_GRACE``.
    Only the secret being replaced stays valid: a second rotation within the grace period ends
    the first one's grace, so at most two signatures are ever sent."""
    row = await _locked(conn, subscription_id, if_match)
    now = now or datetime.now(UTC)
    secret = signing.generate_secret()
    current = box.decrypt(row["secret_encrypted"], owner=subscription_id)
    updated = await repository.rotate_secret(
        conn, subscription_id, secret_encrypted=box.encrypt(secret, owner=subscription_id),
        previous_encrypted=box.encrypt(current, owner=subscription_id), previous_expires_at=now + ROTATION_GRACE)
    return {**as_read(updated), "secret": secret}


async def delete(conn: AsyncConnection, *, subscription_id: uuid.UUID, if_match: str | None) -> None:
    """Its deliveries stay (the log of what was sent) but are no longer reachable through the
    subscription; the queued ones end ``undeliverable`` now."""
    await _locked(conn, subscription_id, if_match)
    await repository.end_queued_deliveries(conn, subscription_id, reason=DELETED_UNDELIVERABLE)
    await repository.delete(conn, subscription_id)


def signing_secrets(row: Mapping[str, Any], box: SecretBox, *, now: datetime | None = None) -> list[str]:
    """The secrets a delivery is signed with now: the current one, and the replaced one while
    its grace lasts (``webhook-signature`` then carries both)."""
    now = now or datetime.now(UTC)
    secrets = [box.decrypt(row["secret_encrypted"], owner=row["id"])]
    expires = row["previous_secret_expires_at"]
    if row["previous_secret_encrypted"] is not None and expires is not None and now < expires:
        secrets.append(box.decrypt(row["previous_secret_encrypted"], owner=row["id"]))
    return secrets


def not_found() -> Problem:
    return Problem(404, "not-found", "Not found", "No such webhook subscription.")
