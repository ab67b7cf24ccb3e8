"""Report rules: parameters, buckets and the documents built from rollup sums (pure, plus the calls
that fetch them).

Rollups are UTC hours. A caller's bucket is the sum of the hours that start inside it, and every
bucket boundary is moved to the start of the UTC hour containing it: exact in every zone whose
offset is a whole number of hours, and for Asia/Kolkata (+05:30) or Australia/Adelaide a day runs
from the UTC hour containing local midnight (docs/metrics.md, "API", states the limit). The same
rule cuts the requested range, so a bucket and the range always agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from helpdesk_common.problems import Problem

from ..access import Selection, TicketFilter
from ..reporting.buckets import (
    INTERVALS, Bucket, ReportParameterError, bucket_of, buckets_between, parse_interval, previous_period,
    resolve_zone, validate_range,
)
from . import catalogue, repository

PERIODS: tuple[str, ...] = ("today", "yesterday", "7d", "30d", "90d", "this_week", "last_week", "this_month",
                            "last_month")
DEFAULT_SPAN: dict[str, timedelta] = {"hour": timedelta(hours=24), "day": timedelta(days=30),
                                      "week": timedelta(weeks=12), "month": timedelta(days=365)}


def invalid(parameter: str, message: str, code: str = "invalid") -> Problem:
    """A 422 problem naming the query parameter (RFC 9457 with a field-level detail)."""
    return Problem(422, "validation-error", "Validation failed", f"{parameter}: {message}",
                   errors=[{"field": f"query.{parameter}", "message": message, "code": code}])


def from_parameter_error(error: ReportParameterError) -> Problem:
    return invalid(error.parameter, error.message, error.code)


def choose(parameter: str, value: str, allowed: Sequence[str]) -> str:
    """``value`` if it is one of ``allowed``; else a 422 that lists them."""
    if value not in allowed:
        raise invalid(parameter, f"must be one of: {', '.join(allowed)}", "invalid_choice")
    return value


def parse_metric(name: str) -> catalogue.Metric:
    return catalogue.METRICS[choose("metric", name, catalogue.metric_names())]


def parse_zone(name: str) -> ZoneInfo:
    try:
        return resolve_zone(name)
    except ReportParameterError as error:
        raise from_parameter_error(error) from None


def floor_hour(instant: datetime) -> datetime:
    """The start of the UTC hour holding ``instant``: the grain of the rollups."""
    return instant.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


@dataclass(frozen=True, slots=True)
class Window:
    """A requested range, its buckets, and the rollup hours that stand for it."""

    start: datetime
    end: datetime
    interval: str
    zone: ZoneInfo
    buckets: tuple[Bucket, ...]

    @property
    def first_hour(self) -> datetime:
        return floor_hour(self.start)

    @property
    def end_hour(self) -> datetime:
        return floor_hour(self.end)

    @property
    def thresholds(self) -> list[datetime]:
        return [floor_hour(b.start) for b in self.buckets]


def window(start: datetime | None, end: datetime | None, interval: str, zone: ZoneInfo, *,
           now: datetime) -> Window:
    """The range ``[from, to)`` (defaults: the interval's usual span up to now) and its buckets."""
    try:
        interval = parse_interval(interval)
        end = end if end is not None else now
        start = start if start is not None else end - DEFAULT_SPAN[interval]
        start, end = validate_range(start, end, interval)
        buckets = buckets_between(start, end, interval, zone)
    except ReportParameterError as error:
        raise from_parameter_error(error) from None
    except (OverflowError, ValueError):  # a bucket edge beyond year 1..9999 in the zone
        raise invalid("to", "the range's buckets fall outside the supported calendar (years 1-9999)",
                      "out_of_range") from None
    return Window(start=start, end=end, interval=interval, zone=zone, buckets=tuple(buckets))


def _days_back(day: Bucket, count: int, zone: ZoneInfo) -> datetime:
    start = day.start
    for _ in range(count):
        start = bucket_of(start - timedelta(microseconds=1), "day", zone).start
    return start


def period_range(period: str, *, now: datetime, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """A named period in the caller's zone: ``7d`` is today and the six local days before it."""
    choose("period", period, PERIODS)
    today = bucket_of(now, "day", zone)
    if period == "today":
        return today.start, today.end
    if period == "yesterday":
        return _days_back(today, 1, zone), today.start
    if period.endswith("d"):
        return _days_back(today, int(period[:-1]) - 1, zone), today.end
    unit = "week" if "week" in period else "month"
    current = bucket_of(now, unit, zone)
    if period.startswith("this"):
        return current.start, current.end
    return bucket_of(current.start - timedelta(microseconds=1), unit, zone).start, current.start


def _point(metric: catalogue.Metric, sums: dict[str, Any] | None) -> tuple[Any, int]:
    sums = sums or {}
    return metric.value(sums), metric.n(sums)


def assemble_series(rows: Sequence[dict[str, Any]], buckets: Sequence[Bucket], metric: catalogue.Metric, *,
                    split: bool, order: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """One series per key (``all`` unsplit; else each top value then ``other``), a point per bucket."""
    by_key: dict[Any, dict[int, dict[str, Any]]] = {}
    for row in rows:
        by_key.setdefault(row["key"], {})[int(row["g"])] = row
    if not split:
        keys: list[Any] = [None]
    else:
        present = [k for k in by_key if k is not None]
        ranked = sorted(present, key=lambda k: (-sum(metric.n(r) for r in by_key[k].values()), k))
        keys = [k for k in (order or ranked) if k is not None] + ([None] if None in by_key else [])
    series = []
    for key in keys:
        groups = by_key.get(key, {})
        points = []
        for index, bucket in enumerate(buckets, start=1):
            value, n = _point(metric, groups.get(index))
            points.append({"bucket": bucket.label, "start": bucket.start, "end": bucket.end, "value": value, "n": n})
        name = ("all" if not split else "other") if key is None else key
        series.append({"key": name, "points": points})
    return series


def bucket_labels(buckets: Sequence[Bucket]) -> list[dict[str, Any]]:
    return [{"bucket": b.label, "start": b.start, "end": b.end} for b in buckets]


async def trends(conn: Any, *, metric: catalogue.Metric, win: Window, selection: Selection, by: str | None,
                 by_values: tuple[str, ...] | None, top: int, compare: bool) -> dict[str, Any]:
    if by is None:
        rows = await repository.rollup_groups(
            conn, dim=selection.dim, values=selection.values, start=win.first_hour, end=win.end_hour,
            thresholds=win.thresholds, metric=metric)
        series = assemble_series(rows, win.buckets, metric, split=False)
    else:
        rows = await repository.rollup_groups(
            conn, dim=by, values=by_values, start=win.first_hour, end=win.end_hour, thresholds=win.thresholds,
            metric=metric, split="top", top_n=top)
        series = assemble_series(rows, win.buckets, metric, split=True)
    previous = None
    if compare:
        try:
            prev_start, prev_end = previous_period(win.start, win.end, win.interval, win.zone)  # type: ignore[arg-type]
        except (OverflowError, ValueError):
            raise invalid("compare", "the previous period falls before year 1", "out_of_range") from None
        prev = window(prev_start, prev_end, win.interval, win.zone, now=win.end)
        if by is None:
            prev_rows = await repository.rollup_groups(
                conn, dim=selection.dim, values=selection.values, start=prev.first_hour, end=prev.end_hour,
                thresholds=prev.thresholds, metric=metric)
            prev_series = assemble_series(prev_rows, prev.buckets, metric, split=False)
        else:
            keys = [s["key"] for s in series if s["key"] != "other"]
            prev_rows = await repository.rollup_groups(
                conn, dim=by, values=by_values, start=prev.first_hour, end=prev.end_hour,
                thresholds=prev.thresholds, metric=metric, split="keys", keys=keys)
            prev_series = assemble_series(prev_rows, prev.buckets, metric, split=True, order=keys)
        previous = {"from": prev.start, "to": prev.end, "series": prev_series}
    return {
        "metric": metric.name, "unit": metric.unit, "direction": metric.direction, "interval": win.interval,
        "tz": win.zone.key, "from": win.start, "to": win.end, "by": by, "series": series, "previous": previous,
    }


def trend_rows(body: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    header = ["period", "series", "bucket", "start", "end", "metric", "value", "n"]
    rows = []
    for period, part in (("current", body), ("previous", body.get("previous"))):
        if not part:
            continue
        for series in part["series"]:
            for p in series["points"]:
                rows.append([period, series["key"], p["bucket"], p["start"], p["end"], body["metric"], p["value"],
                             p["n"]])
    return header, rows


def figure_items(rows: Sequence[dict[str, Any]], metric: catalogue.Metric) -> list[dict[str, Any]]:
    return [{"key": r["key"], "value": metric.value(r), "n": metric.n(r)} for r in rows if r["key"] is not None]


async def breakdown(conn: Any, *, metric: catalogue.Metric, by: str, values: tuple[str, ...] | None,
                    start: datetime, end: datetime, tz: str, limit: int) -> dict[str, Any]:
    rows = await repository.rollup_groups(conn, dim=by, values=values, start=floor_hour(start),
                                          end=floor_hour(end), thresholds=None, metric=metric, split="each")
    items = sorted(figure_items(rows, metric), key=lambda i: (-i["n"], str(i["key"])))
    return {"metric": metric.name, "unit": metric.unit, "direction": metric.direction, "by": by, "tz": tz,
            "from": start, "to": end, "items": items[:limit], "truncated": len(items) > limit}


def breakdown_rows(body: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    return (["by", "key", "metric", "value", "n"],
            [[body["by"], i["key"], body["metric"], i["value"], i["n"]] for i in body["items"]])


async def leaderboard(conn: Any, *, metric: catalogue.Metric, entity: str, values: tuple[str, ...] | None,
                      period: str, start: datetime, end: datetime, tz: str, limit: int,
                      min_n: int) -> dict[str, Any]:
    rows = await repository.rollup_groups(conn, dim=entity, values=values, start=floor_hour(start),
                                          end=floor_hour(end), thresholds=None, metric=metric, split="each")
    eligible = [i for i in figure_items(rows, metric) if i["n"] >= min_n and i["value"] is not None]
    ranked = catalogue.rank(eligible, metric)[:limit]
    return {"metric": metric.name, "unit": metric.unit, "direction": metric.direction, "entity": entity,
            "period": period, "tz": tz, "from": start, "to": end,
            "items": [{"rank": place, **item} for place, item in enumerate(ranked, start=1)]}


def leaderboard_rows(body: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    return (["rank", body["entity"], "metric", "value", "n"],
            [[i["rank"], i["key"], body["metric"], i["value"], i["n"]] for i in body["items"]])


def _compliance(achieved: int, breached: int) -> float | None:
    total = achieved + breached
    return None if total == 0 else round(100 * achieved / total, 2)


def sla_items(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    items = []
    for r in rows:
        achieved, breached = int(r["achieved"]), int(r["breached"])
        metric = r["metric"]
        items.append({
            "key": r["key"], "policy": r["policy"] or None, "metric": metric,
            "step": metric[5:] if metric.startswith("step:") else None,
            "achieved": achieved, "breached": breached, "n": achieved + breached,
            "compliance_percent": _compliance(achieved, breached),
        })
    return items


async def sla(conn: Any, *, dim: str, values: tuple[str, ...] | None, by: str | None, start: datetime,
              end: datetime, tz: str) -> dict[str, Any]:
    rows = await repository.sla_outcomes(conn, dim=dim, values=values, start=floor_hour(start),
                                         end=floor_hour(end), by_value=by is not None)
    items = sla_items(rows)
    achieved = sum(i["achieved"] for i in items)
    breached = sum(i["breached"] for i in items)
    return {"by": by, "tz": tz, "from": start, "to": end, "items": items,
            "total": {"achieved": achieved, "breached": breached, "n": achieved + breached,
                      "compliance_percent": _compliance(achieved, breached)}}


def sla_rows(body: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    return (["key", "policy", "metric", "step", "achieved", "breached", "n", "compliance_percent"],
            [[i["key"], i["policy"], i["metric"], i["step"], i["achieved"], i["breached"], i["n"],
              i["compliance_percent"]] for i in body["items"]])


def target_item(row: dict[str, Any], now: datetime) -> dict[str, Any]:
    due = row["due_at"]
    return {
        "ticket_id": row["ticket_id"], "number": row["number"], "metric": row["metric"],
        "policy": row["policy"] or None, "target_minutes": row["target_minutes"], "due_at": due,
        "minutes_left": None if due is None else round((due - now).total_seconds() / 60, 1),
        "colour": row["colour"], "status": row["status"], "priority": row["priority"], "channel": row["channel"],
        "team_id": row["team_id"], "assignee_id": row["assignee_id"],
    }


async def at_risk(conn: Any, *, now: datetime, limit: int, scope: TicketFilter) -> dict[str, Any]:
    found = await repository.at_risk(conn, now=now, limit=limit, scope=scope)
    return {"as_of": now, "at_risk": [target_item(r, now) for r in found["at_risk"]],
            "overdue": [target_item(r, now) for r in found["overdue"]]}


AT_RISK_HEADER = ["state", "ticket_id", "number", "metric", "policy", "target_minutes", "due_at", "minutes_left",
                  "colour", "status", "priority", "channel", "team_id", "assignee_id"]


def at_risk_rows(body: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    rows = []
    for state in ("overdue", "at_risk"):
        for i in body[state]:
            rows.append([state, *(i[c] for c in AT_RISK_HEADER[1:])])
    return AT_RISK_HEADER, rows


__all__ = ["INTERVALS", "PERIODS"]
