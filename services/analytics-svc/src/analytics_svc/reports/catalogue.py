"""The API's metric catalogue: every figure a report can ask for, as a rule over rollup sums (pure).

Rollups keep sums and counts per UTC hour (docs/metrics.md, "Rollups"), never averages: an
average of averages would weigh a quiet hour like a busy one. So each metric here names the
columns it needs and derives its value from their sums over whatever hours and dimension values
a report groups together (a bucket, a team, "other"). Ratios with no denominator are None, never
0, because "no CSAT answers" is not "0 % satisfied". One table, so the API, the docs and the
tests agree on what ``resolution_minutes`` means.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from ..readmodel import histogram

Direction = Literal["higher_is_better", "lower_is_better", "neutral"]

#: dimensions the rollups are written for (besides ``all``)
DIMENSIONS: tuple[str, ...] = ("team", "agent", "channel", "type", "priority", "tier", "tag", "brand", "organization")

Sums = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Metric:
    """One figure: the rollup columns it needs, which of them counts its ``n``, and its rule."""

    name: str
    description: str
    unit: str
    direction: Direction
    columns: tuple[str, ...]
    #: the column whose sum is the metric's n (the number of things averaged or counted)
    n_column: str
    rule: Callable[[Sums], float | int | None]
    #: percentile metrics need a histogram column (summed element-wise, not as a number)
    hist_column: str | None = None

    def value(self, sums: Sums) -> float | int | None:
        return self.rule(sums)

    def n(self, sums: Sums) -> int:
        return int(sums.get(self.n_column) or 0)


def _num(sums: Sums, column: str) -> float:
    return float(sums.get(column) or 0)


def _count(column: str) -> Callable[[Sums], int]:
    return lambda sums: int(sums.get(column) or 0)


def _mean(total: str, n: str) -> Callable[[Sums], float | None]:
    def rule(sums: Sums) -> float | None:
        count = _num(sums, n)
        return None if count <= 0 else round(_num(sums, total) / count, 2)
    return rule


def _percent(part: str, n: str) -> Callable[[Sums], float | None]:
    def rule(sums: Sums) -> float | None:
        count = _num(sums, n)
        return None if count <= 0 else round(100 * _num(sums, part) / count, 2)
    return rule


def _nps(sums: Sums) -> float | None:
    count = _num(sums, "nps_n")
    if count <= 0:
        return None
    return round(100 * (_num(sums, "nps_promoters") - _num(sums, "nps_detractors")) / count, 2)


def _hist_percentile(column: str, q: float) -> Callable[[Sums], float | None]:
    def rule(sums: Sums) -> float | None:
        counts = sums.get(column)
        if not counts:
            return None
        estimate = histogram.percentile(counts, q)
        return None if estimate is None else round(estimate, 2)
    return rule


def _metric(name: str, description: str, unit: str, direction: Direction, columns: Sequence[str], n_column: str,
            rule: Callable[[Sums], Any], hist_column: str | None = None) -> Metric:
    return Metric(name=name, description=description, unit=unit, direction=direction, columns=tuple(columns),
                  n_column=n_column, rule=rule, hist_column=hist_column)


_LOWER, _HIGHER, _NEUTRAL = "lower_is_better", "higher_is_better", "neutral"

_METRICS: tuple[Metric, ...] = (
    _metric("tickets_created", "tickets created in the period", "tickets", _NEUTRAL, ["created"], "created",
            _count("created")),
    _metric("tickets_solved", "tickets resolved in the period", "tickets", _HIGHER, ["solved"], "solved",
            _count("solved")),
    _metric("first_reply_minutes", "mean first reply time of the first replies given in the period", "minutes",
            _LOWER, ["first_reply_n", "first_reply_sum"], "first_reply_n", _mean("first_reply_sum", "first_reply_n")),
    _metric("first_reply_business_minutes", "mean first reply time in business minutes", "minutes", _LOWER,
            ["first_reply_n", "first_reply_bsum"], "first_reply_n", _mean("first_reply_bsum", "first_reply_n")),
    _metric("first_reply_minutes_p50", "median first reply time (histogram estimate)", "minutes", _LOWER,
            ["first_reply_n"], "first_reply_n", _hist_percentile("first_reply_hist", 50), "first_reply_hist"),
    _metric("first_reply_minutes_p90", "90th percentile first reply time (histogram estimate)", "minutes", _LOWER,
            ["first_reply_n"], "first_reply_n", _hist_percentile("first_reply_hist", 90), "first_reply_hist"),
    _metric("resolution_minutes", "mean full resolution time of the tickets resolved in the period", "minutes",
            _LOWER, ["solved", "resolution_sum"], "solved", _mean("resolution_sum", "solved")),
    _metric("resolution_business_minutes", "mean full resolution time in business minutes", "minutes", _LOWER,
            ["solved", "resolution_bsum"], "solved", _mean("resolution_bsum", "solved")),
    _metric("resolution_minutes_p50", "median full resolution time (histogram estimate)", "minutes", _LOWER,
            ["solved"], "solved", _hist_percentile("resolution_hist", 50), "resolution_hist"),
    _metric("resolution_minutes_p90", "90th percentile full resolution time (histogram estimate)", "minutes",
            _LOWER, ["solved"], "solved", _hist_percentile("resolution_hist", 90), "resolution_hist"),
    _metric("requester_wait_minutes", "mean requester wait of the tickets resolved in the period", "minutes",
            _LOWER, ["solved", "requester_wait_sum"], "solved", _mean("requester_wait_sum", "solved")),
    _metric("requester_wait_business_minutes", "mean requester wait in business minutes", "minutes", _LOWER,
            ["solved", "requester_wait_bsum"], "solved", _mean("requester_wait_bsum", "solved")),
    _metric("agent_wait_minutes", "mean agent wait (pending) of the tickets resolved in the period", "minutes",
            _NEUTRAL, ["solved", "agent_wait_sum"], "solved", _mean("agent_wait_sum", "solved")),
    _metric("agent_wait_business_minutes", "mean agent wait in business minutes", "minutes", _NEUTRAL,
            ["solved", "agent_wait_bsum"], "solved", _mean("agent_wait_bsum", "solved")),
    _metric("on_hold_minutes", "mean on-hold time of the tickets resolved in the period", "minutes", _LOWER,
            ["solved", "on_hold_sum"], "solved", _mean("on_hold_sum", "solved")),
    _metric("on_hold_business_minutes", "mean on-hold time in business minutes", "minutes", _LOWER,
            ["solved", "on_hold_bsum"], "solved", _mean("on_hold_bsum", "solved")),
    _metric("next_reply_minutes", "mean next reply time over every next reply of the tickets resolved in the period",
            "minutes", _LOWER, ["next_reply_n", "next_reply_sum"], "next_reply_n",
            _mean("next_reply_sum", "next_reply_n")),
    _metric("next_reply_business_minutes", "mean next reply time in business minutes", "minutes", _LOWER,
            ["next_reply_n", "next_reply_bsum"], "next_reply_n", _mean("next_reply_bsum", "next_reply_n")),
    _metric("reopens_per_ticket", "reopens per resolved ticket", "reopens", _LOWER, ["solved", "reopens"], "solved",
            _mean("reopens", "solved")),
    _metric("replies_per_ticket", "public agent replies per resolved ticket", "replies", _LOWER,
            ["solved", "replies"], "solved", _mean("replies", "solved")),
    _metric("assignee_hops", "agent hand-overs per resolved ticket", "hops", _LOWER, ["solved", "assignee_hops"],
            "solved", _mean("assignee_hops", "solved")),
    _metric("team_hops", "team hand-overs per resolved ticket", "hops", _LOWER, ["solved", "team_hops"], "solved",
            _mean("team_hops", "solved")),
    _metric("one_touch_percent", "share of resolved tickets resolved with at most one reply", "percent", _HIGHER,
            ["solved", "one_touch"], "solved", _percent("one_touch", "solved")),
    _metric("first_contact_percent", "share of resolved tickets resolved at first contact", "percent", _HIGHER,
            ["solved", "first_contact"], "solved", _percent("first_contact", "solved")),
    _metric("csat_percent", "share of CSAT ratings 4-5", "percent", _HIGHER, ["csat_n", "csat_satisfied"], "csat_n",
            _percent("csat_satisfied", "csat_n")),
    _metric("csat_average", "mean CSAT rating (1-5)", "rating", _HIGHER, ["csat_n", "csat_rating_sum"], "csat_n",
            _mean("csat_rating_sum", "csat_n")),
    _metric("nps", "% promoters (9-10) - % detractors (0-6)", "score", _HIGHER,
            ["nps_n", "nps_promoters", "nps_detractors"], "nps_n", _nps),
    _metric("sla_compliance_percent", "achieved SLA cycles / SLA cycles with an outcome", "percent", _HIGHER,
            ["sla_n", "sla_achieved"], "sla_n", _percent("sla_achieved", "sla_n")),
    _metric("delivery_failures", "outbound deliveries that failed", "deliveries", _LOWER, ["delivery_failures"],
            "delivery_failures", _count("delivery_failures")),
    _metric("deflections", "knowledge-base suggestions that answered the question (no ticket followed)", "requests", _HIGHER,
            ["deflections"], "deflections", _count("deflections")),
)

METRICS: dict[str, Metric] = {m.name: m for m in _METRICS}

#: every numeric rollup column a summary may need (the hist columns are summed separately)
SUM_COLUMNS: tuple[str, ...] = tuple(sorted({c for m in _METRICS for c in m.columns}))


def metric_names() -> list[str]:
    return list(METRICS)


def merge_sums(rows: Sequence[Sums], metric: Metric) -> dict[str, Any]:
    """The sums of several groups (hours, dimension values) as one group: "other" in a top-N split,
    a bucket made of many hours. Histograms add bin by bin."""
    total: dict[str, Any] = {c: 0 for c in metric.columns}
    hists = []
    for row in rows:
        for column in metric.columns:
            total[column] += row.get(column) or 0
        if metric.hist_column:
            hists.append(row.get(metric.hist_column))
    if metric.hist_column:
        total[metric.hist_column] = histogram.merge(hists)
    return total


def subtract_sums(whole: Sums, part: Sums, metric: Metric) -> dict[str, Any]:
    """``whole`` minus ``part`` (the "other" group: everything but the top values)."""
    rest: dict[str, Any] = {c: (whole.get(c) or 0) - (part.get(c) or 0) for c in metric.columns}
    if metric.hist_column:
        a = histogram.merge([whole.get(metric.hist_column)])
        b = histogram.merge([part.get(metric.hist_column)])
        rest[metric.hist_column] = [x - y for x, y in zip(a, b, strict=True)]
    return rest


def rank(items: Sequence[dict[str, Any]], metric: Metric) -> list[dict[str, Any]]:
    """Items ordered best first by ``metric``'s direction (ties by n, then key); no value last."""
    sign = 1 if metric.direction == "lower_is_better" else -1
    return sorted(items, key=lambda item: (item["value"] is None, sign * (item["value"] or 0), -item["n"],
                                          str(item["key"])))
