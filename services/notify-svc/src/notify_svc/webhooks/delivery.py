"""One webhook delivery attempt: sign, post through egress, classify (no retries here).

The delivery engine owns records, retries and dead letters (channels/base.py); this answers
it in the same terms as the channel adapters (``SendResult``), plus whether the subscription
should be disabled now (a 410 Gone). Classification (schedule.py, docs/webhooks.md):

- 2xx: ``sent``;
- 410: ``permanent`` and ``disable``: the receiver asked for no more;
- any other status, 3xx included (redirects are never followed), and network errors:
  ``transient``, with the receiver's ``Retry-After`` when it gave one;
- a destination the egress policy refuses: ``permanent`` (retrying cannot make it allowed;
  the admin has to change the URL or the allow-list).

The receiver's body is never copied into the result: it could carry anything, and the
reason is shown to admins and written to logs.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Sequence
from dataclasses import dataclass

from ..channels.base import SendResult
from ..egress import Egress, EgressError, EgressRefused
from . import schedule, signing


@dataclass(frozen=True, slots=True)
class WebhookAttempt:
    result: SendResult
    #: the subscription should be disabled now (410 Gone)
    disable: bool = False
    #: the HTTP status, when there was an answer
    status: int | None = None


def retry_after_s(value: str | None, *, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds from now: delta-seconds or an HTTP date; None when absent or
    unreadable (the schedule alone decides then)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(int(value))
    try:
        at = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if at is None or at.tzinfo is None:
        return None
    return max(0.0, at.timestamp() - (time.time() if now is None else now))


async def attempt(egress: Egress, *, url: str, secrets: Sequence[str], msg_id: str, body: bytes,
                  timestamp: int | None = None) -> WebhookAttempt:
    """Post one event. ``msg_id`` is the delivery's stable id (``webhook-id``); ``secrets`` the
    subscription's signing secrets (``service.signing_secrets``: two during a rotation)."""
    headers = signing.webhook_headers(secrets, msg_id=msg_id, body=body, timestamp=timestamp)
    try:
        answer = await egress.post(url, body, headers)
    except EgressRefused as refused:
        return WebhookAttempt(SendResult("permanent", reason=f"refused by the egress policy: {refused.reason}",
                                         code="refused"))
    except EgressError as failed:
        return WebhookAttempt(SendResult("transient", reason=failed.reason, code="network"))
    verdict = schedule.classify(answer.status)
    code = str(answer.status)
    if verdict == "success":
        return WebhookAttempt(SendResult("sent", code=code), status=answer.status)
    if verdict == "disable":
        return WebhookAttempt(SendResult("permanent", reason="the receiver answered 410 Gone", code=code),
                              disable=True, status=answer.status)
    reason = (f"redirect ({answer.status}) not followed" if answer.is_redirect
              else f"the receiver answered {answer.status}")
    return WebhookAttempt(SendResult("transient", reason=reason, code=code,
                                     retry_after=retry_after_s(answer.headers.get("Retry-After"))),
                          status=answer.status)
