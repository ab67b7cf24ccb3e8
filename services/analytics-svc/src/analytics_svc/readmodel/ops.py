"""Prometheus metrics of the read model's consumer side (docs/metrics.md, "Ops").

``analytics_events_folded_total{type}`` counts the events the read model folded (redeliveries
that changed nothing are counted too: they cost the same work up to the fact insert), so
``rate()`` of it is the events folded per second. ``analytics_newest_event_age_seconds`` is
computed at scrape time from an in-memory maximum of the folded events' envelope times, so a
scrape costs no query; it is NaN until this process folded an event (after a restart, until the
next event arrives). Consumer lag is the shared ``consumer_lag`` gauge of the consumer runner.
"""

from __future__ import annotations

import math
import time
from datetime import datetime

from prometheus_client import Counter, Gauge

EVENTS_FOLDED = Counter("analytics_events_folded_total", "Events folded into the metric read model", ["type"])
NEWEST_EVENT_AGE = Gauge(
    "analytics_newest_event_age_seconds",
    "Now minus the time of the newest event folded into the metric read model (NaN before the first)",
)

_newest = {"at": math.nan}


def folded(event_type: str, event_time: datetime) -> None:
    """Count one folded event and remember its time if it is the newest so far."""
    EVENTS_FOLDED.labels(type=event_type).inc()
    stamp = event_time.timestamp()
    if math.isnan(_newest["at"]) or stamp > _newest["at"]:
        _newest["at"] = stamp


def newest_event_age(now: float | None = None) -> float:
    """Seconds since the newest folded event's time (NaN before the first)."""
    at = _newest["at"]
    if math.isnan(at):
        return math.nan
    return max(0.0, (time.time() if now is None else now) - at)


NEWEST_EVENT_AGE.set_function(newest_event_age)
