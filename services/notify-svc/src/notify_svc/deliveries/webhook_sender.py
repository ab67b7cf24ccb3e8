"""The dispatcher's adapter for webhook deliveries: look the subscription up, sign with its
secrets, post one attempt through the SSRF-safe egress (webhooks/delivery.py).

The delivery id is the ``webhook-id``: the same on every attempt, on a resend after a crash and
on a replay, as Standard Webhooks receivers expect for deduplication. A subscription deleted or
disabled since the event was queued makes the delivery ``undeliverable``. What an answer means
for the subscription (a 410 Gone, 5 days of failures: disabled, with ``webhook.disabled``) is
decided when the dispatcher records the attempt, in the same transaction
(``service.note_endpoint_attempt``): the sender only classifies, so that the attempt, the
delivery's state and the subscription's change commit together or not at all.
"""

from __future__ import annotations

import logging
from typing import Any

from ..channels.base import OutboundMessage, SendResult
from ..egress import Egress, EgressRefused, parse_url
from ..webhooks import delivery as webhook_delivery
from ..webhooks.crypto import SecretBox
from ..webhooks import service as webhooks
from . import repository

log = logging.getLogger(__name__)


def allowlist_only_refusal(url: str, allow: Any) -> str | None:
    """With ``NOTIFY_EGRESS_ALLOWLIST_ONLY``: why ``url`` may not be reached (None: it may). Only
    a literal address inside the allow-list passes: a name would need a DNS query, and any other
    address would leave the closed network."""
    import ipaddress

    try:
        host = (parse_url(url).raw_host or "").strip("[]")
        address = ipaddress.ip_address(host)
    except (EgressRefused, ValueError):
        return "only literal allow-listed addresses are reachable (NOTIFY_EGRESS_ALLOWLIST_ONLY)"
    if not any(address in network for network in allow):
        return f"{address} is not allow-listed (NOTIFY_EGRESS_ALLOWLIST_ONLY)"
    return None


class WebhookSender:
    channel = "webhook"

    def __init__(self, *, runtime: Any, settings: Any, egress: Egress | None = None) -> None:
        self._runtime = runtime
        self._settings = settings
        self._egress = egress

    def _client(self) -> Egress:
        if self._egress is None:  # created inside the running loop, on first use
            self._egress = Egress.from_settings(self._settings)
        return self._egress

    async def send(self, message: OutboundMessage) -> SendResult:
        subscription_id = message.extra.get("subscription_id")
        body = message.route.get("body")
        if subscription_id is None or not isinstance(body, str):
            return SendResult("permanent", reason="not a webhook delivery")
        async with self._runtime.raw_connection() as conn:
            subscription = await repository.subscription_for_send(conn, subscription_id)
        if subscription is None:
            return SendResult("undeliverable", reason=webhooks.DELETED_UNDELIVERABLE)
        if not subscription["enabled"]:
            return SendResult("undeliverable", reason=webhooks.DISABLED_UNDELIVERABLE)
        box = SecretBox.from_setting(self._settings.secret_key.get_secret_value())
        if box is None:
            return SendResult("transient", reason="NOTIFY_SECRET_KEY is not configured: cannot sign")
        if self._settings.egress_allowlist_only:
            refused = allowlist_only_refusal(subscription["url"], self._client().allow)
            if refused:
                return SendResult("permanent", reason=f"refused by the egress policy: {refused}", code="refused")
        secrets = webhooks.signing_secrets(subscription, box)
        answer = await webhook_delivery.attempt(self._client(), url=subscription["url"], secrets=secrets,
                                                msg_id=str(message.delivery_id), body=body.encode())
        return answer.result

    async def close(self) -> None:
        if self._egress is not None:
            await self._egress.close()
