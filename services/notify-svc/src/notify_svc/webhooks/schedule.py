"""When to try a webhook delivery again, and when to give up on an endpoint (pure).

Standard Webhooks (Svix) publishes one schedule and receivers plan around it, so we keep it
rather than inventing ours: an attempt immediately, then after 5 s, 5 min, 30 min, 2 h, 5 h,
10 h and 10 h (8 attempts over about 27.5 hours). 2xx is success; a 3xx is a failure (redirects
are never followed, docs/webhooks.md "SSRF"); 410 Gone means the receiver wants no more and
disables the subscription at once; every other answer or network error is retried. An endpoint
that has failed without a single success for 5 days is disabled, with an event.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Literal

#: the delay before attempt n+1 (index n = attempts already made): attempt 1 is immediate
RETRY_SCHEDULE_S: tuple[int, ...] = (0, 5, 5 * 60, 30 * 60, 2 * 3600, 5 * 3600, 10 * 3600, 10 * 3600)
MAX_ATTEMPTS = len(RETRY_SCHEDULE_S)
#: an endpoint failing continuously for this long is disabled
AUTO_DISABLE_AFTER = timedelta(days=5)
#: a receiver's Retry-After is honoured up to the longest step of the schedule
MAX_RETRY_AFTER_S = max(RETRY_SCHEDULE_S)

Verdict = Literal["success", "retry", "disable"]


def classify(status: int | None) -> Verdict:
    """An attempt's answer (``None``: no answer at all, a network error or timeout)."""
    if status is not None and 200 <= status < 300:
        return "success"
    if status == 410:
        return "disable"
    return "retry"


def next_delay_s(attempts_made: int, *, retry_after_s: float | None = None, jitter: float = 0.0) -> float | None:
    """Seconds to wait before the next attempt, or None when the schedule is exhausted.

    ``retry_after_s`` (the receiver's ``Retry-After``) can only lengthen the wait, up to
    ``MAX_RETRY_AFTER_S``. ``jitter`` in [0, 1) adds up to 10 % of the step, so that deliveries
    that failed together (one receiver down) do not all come back in the same second; the
    caller draws it, this stays deterministic."""
    if attempts_made < 0:
        raise ValueError("attempts_made is not negative")
    if attempts_made >= MAX_ATTEMPTS:
        return None
    if not 0.0 <= jitter < 1.0:
        raise ValueError("jitter is in [0, 1)")
    base = float(RETRY_SCHEDULE_S[attempts_made])
    delay = base + base * 0.1 * jitter
    if retry_after_s is not None and retry_after_s > delay:
        delay = min(float(retry_after_s), float(MAX_RETRY_AFTER_S))
    return delay


def next_attempt_at(last_attempt_at: datetime, attempts_made: int, *, retry_after_s: float | None = None,
                    jitter: float = 0.0) -> datetime | None:
    delay = next_delay_s(attempts_made, retry_after_s=retry_after_s, jitter=jitter)
    return None if delay is None else last_attempt_at + timedelta(seconds=delay)


def failing_since_after(failing_since: datetime | None, *, succeeded: bool, at: datetime) -> datetime | None:
    """The start of the endpoint's current run of failures after an attempt at ``at``: a success
    ends the run (None); the first failure after a success starts it; later failures keep it."""
    if succeeded:
        return None
    return failing_since if failing_since is not None else at


def should_auto_disable(failing_since: datetime | None, *, now: datetime) -> bool:
    """True when the endpoint has failed continuously for ``AUTO_DISABLE_AFTER`` or longer."""
    return failing_since is not None and now - failing_since >= AUTO_DISABLE_AFTER


#: why a subscription is disabled: no success for ``AUTO_DISABLE_AFTER``, a 410 Gone, an admin
DisableCause = Literal["failing", "gone", "admin"]
#: what one attempt said about the receiving endpoint
EndpointVerdict = Literal["success", "failure", "gone"]


def endpoint_after_attempt(failing_since: datetime | None, *, verdict: EndpointVerdict, at: datetime,
                           now: datetime) -> tuple[datetime | None, DisableCause | None]:
    """(the endpoint's ``failing_since`` after an attempt made at ``at``, and why it must be
    disabled now, if it must). A 410 Gone is a failure that disables at once; any other failure
    disables once the run of failures has lasted ``AUTO_DISABLE_AFTER``."""
    since = failing_since_after(failing_since, succeeded=verdict == "success", at=at)
    if verdict == "gone":
        return since, "gone"
    if should_auto_disable(since, now=now):
        return since, "failing"
    return since, None


def disabled_reason(cause: DisableCause, *, failing_since: datetime | None) -> str:
    """The ``disabled_reason`` an admin reads (and the event carries)."""
    if cause == "gone":
        return "the receiver answered 410 Gone"
    if cause == "admin":
        return "disabled by an admin"
    stamp = failing_since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if failing_since else "an unknown time"
    return f"failing since {stamp}: no successful delivery for {AUTO_DISABLE_AFTER.days} days"
