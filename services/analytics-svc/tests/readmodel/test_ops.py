"""The read model's ops metrics: events folded per type, and the newest folded event's age
computed at scrape time from memory (NaN before the first event)."""

import math
from datetime import UTC, datetime, timedelta

from prometheus_client import REGISTRY

from analytics_svc.readmodel import ops


def test_the_newest_event_age_follows_the_newest_event_not_the_last_one(monkeypatch):
    monkeypatch.setitem(ops._newest, "at", math.nan)
    assert math.isnan(ops.newest_event_age())
    before = REGISTRY.get_sample_value("analytics_events_folded_total", {"type": "ticket.assigned"}) or 0.0
    newest = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    ops.folded("ticket.assigned", newest)
    ops.folded("ticket.assigned", newest - timedelta(hours=1))  # an older event arriving later
    assert ops.newest_event_age(now=newest.timestamp() + 2.5) == 2.5
    assert ops.newest_event_age(now=newest.timestamp() - 10) == 0.0  # a clock behind the producer's
    assert REGISTRY.get_sample_value("analytics_events_folded_total", {"type": "ticket.assigned"}) == before + 2
    assert REGISTRY.get_sample_value("analytics_newest_event_age_seconds") >= 0
