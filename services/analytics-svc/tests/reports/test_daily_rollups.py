"""Long ranges read whole UTC days from metric_rollups_daily and only their edge hours from
metric_rollups: the answer is the one the hourly rows alone give, for ranges with partial days at
both ends in Asia/Shanghai (UTC+8) and in New York across the fall-back night."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from analytics_svc.reporting.buckets import buckets_between
from analytics_svc.reports import catalogue, repository
from analytics_svc.reports.service import floor_hour, period_range

from .conftest import rollup

AGENTS = ["agent-1", "agent-2", "agent-3", "agent-4"]
#: 2026-10-27 00:00 UTC to 2026-11-06 00:00 UTC: New York falls back on 2026-11-01
FIRST_HOUR = datetime(2026, 10, 27, tzinfo=UTC)
HOURS = 24 * 10
NOW = datetime(2026, 11, 5, 9, 30, tzinfo=UTC)
METRICS = ["tickets_created", "first_reply_minutes", "first_reply_minutes_p50", "resolution_minutes_p90",
           "csat_percent", "nps"]


async def populate(raw) -> None:
    """Random hourly sums per agent (every row also added to its UTC day, as the fold does).
    Durations are whole minutes, so a sum does not depend on the order it is added in."""
    draw = random.Random(13)
    for h in range(HOURS):
        bucket = FIRST_HOUR + timedelta(hours=h)
        for agent in AGENTS:
            if draw.random() < 0.3:
                continue
            replies, solved = draw.randint(0, 4), draw.randint(0, 3)
            csat = draw.randint(0, 3)
            nps = draw.randint(0, 2)
            await rollup(
                raw, dim="agent", bucket=bucket, value=agent, created=draw.randint(0, 5),
                first_reply_n=replies, first_reply_sum=float(sum(draw.randint(1, 300) for _ in range(replies))),
                first_reply_hist=[draw.randint(0, 2) if i < 20 else 0 for i in range(44)],
                solved=solved, resolution_sum=float(draw.randint(0, 5000)),
                resolution_hist=[draw.randint(0, 1) for _ in range(44)],
                csat_n=csat, csat_satisfied=draw.randint(0, csat), nps_n=nps, nps_promoters=draw.randint(0, nps),
                nps_detractors=0)


def _as_compared(rows: list[dict]) -> list[tuple]:
    return sorted((r["g"], r["key"] or "", tuple(sorted((k, v if not isinstance(v, list) else tuple(v))
                                                  for k, v in r.items() if k not in ("g", "key"))))
                  for r in rows)


async def both_ways(raw, *, start: datetime, end: datetime, thresholds=None, split: str = "each",
                    top_n: int | None = None) -> dict[str, list[tuple]]:
    answers = {}
    for name in METRICS:
        metric = catalogue.METRICS[name]
        kwargs = dict(dim="agent", values=None, start=start, end=end, thresholds=thresholds, metric=metric,
                      split=split, top_n=top_n)
        mixed = await repository.rollup_groups(raw, **kwargs)
        hourly = await repository.rollup_groups(raw, **kwargs, daily=False)
        assert mixed, name
        assert _as_compared(mixed) == _as_compared(hourly), name
        answers[name] = _as_compared(mixed)
    return answers


async def test_edges_in_shanghai_and_new_york_read_days_and_hours_alike(raw):
    await populate(raw)
    ranges = []
    for tz in ("Asia/Shanghai", "America/New_York"):
        zone = ZoneInfo(tz)
        for period in ("7d", "yesterday", "this_week"):
            ranges.append(period_range(period, now=NOW, zone=zone))
        # an arbitrary local range with partial days at both ends (New York: across the fall-back)
        ranges.append((datetime(2026, 10, 28, 5, 0, tzinfo=zone).astimezone(UTC),
                       datetime(2026, 11, 4, 19, 0, tzinfo=zone).astimezone(UTC)))
    used_days = 0
    for start, end in ranges:
        first_day, end_day = repository.daily_span(floor_hour(start), floor_hour(end), None)
        used_days += (end_day - first_day).days
        await both_ways(raw, start=floor_hour(start), end=floor_hour(end))
        await both_ways(raw, start=floor_hour(start), end=floor_hour(end), split="none")
    assert used_days > 20  # whole days were read from the daily table


async def test_trends_use_days_only_where_buckets_start_at_utc_midnight(raw):
    await populate(raw)
    start, end = datetime(2026, 10, 27, 13, tzinfo=UTC), datetime(2026, 11, 5, 7, tzinfo=UTC)
    utc_days = [floor_hour(b.start) for b in buckets_between(start, end, "day", ZoneInfo("UTC"))]
    assert repository.daily_span(start, end, utc_days) != (end, end)
    await both_ways(raw, start=start, end=end, thresholds=utc_days, split="top", top_n=2)
    shanghai_days = [floor_hour(b.start) for b in buckets_between(start, end, "day", ZoneInfo("Asia/Shanghai"))]
    assert repository.daily_span(start, end, shanghai_days) == (end, end)  # a UTC day spans two local days


async def test_the_daily_rows_are_what_is_read(raw):
    """A daily row that disagreed with its hours would show (so the comparisons above compare)."""
    await populate(raw)
    start, end = datetime(2026, 10, 28, 5, tzinfo=UTC), datetime(2026, 11, 3, 5, tzinfo=UTC)
    await both_ways(raw, start=start, end=end)
    await raw.execute("UPDATE metric_rollups_daily SET created = created + 7 WHERE dim = 'agent' "
                      "AND dim_value = 'agent-1' AND bucket = $1", datetime(2026, 10, 30, tzinfo=UTC))
    metric = catalogue.METRICS["tickets_created"]
    kwargs = dict(dim="agent", values=None, start=start, end=end, thresholds=None, metric=metric, split="each")
    mixed = {r["key"]: r["created"] for r in await repository.rollup_groups(raw, **kwargs)}
    hourly = {r["key"]: r["created"] for r in await repository.rollup_groups(raw, **kwargs, daily=False)}
    assert mixed["agent-1"] == hourly["agent-1"] + 7
    assert {k: v for k, v in mixed.items() if k != "agent-1"} == {k: v for k, v in hourly.items() if k != "agent-1"}
