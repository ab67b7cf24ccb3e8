"""What one ticket adds to the rollups, and the difference between two such states (pure).

A ticket's *contributions* are the sums it puts into ``metric_rollups`` and ``sla_rollups``
(docs/metrics.md, "Read model"): per UTC hour of the instant each figure belongs to, for every
dimension value the ticket currently has. They are a function of the ticket's facts, its current
dimensions and its calendar only; the stored form (``ticket_metrics.contributions``) is what the
rollups hold for the ticket now, so a re-fold adds ``delta(old, new)`` and the rollups hold the
new state exactly once, whatever order the facts came in.

Durations are added to the rollups as multiples of 1/1024 minute (about 0.06 s): sums and
differences of such numbers are exact in double precision, so adding and taking back a ticket
leaves exactly zero and the rollups do not depend on the order of re-folds.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from ..metrics.rules import Assigned, Created, TicketMetrics, order_key
from . import histogram
from .facts import DeliveryFailure, Dims, HistoryFact, Linked, SlaTarget

#: the additive columns of metric_rollups (the histograms are ``<name>:<bin>`` keys below)
SUM_COLUMNS = (
    "first_reply_sum", "first_reply_bsum", "resolution_sum", "resolution_bsum", "requester_wait_sum",
    "requester_wait_bsum", "agent_wait_sum", "agent_wait_bsum", "on_hold_sum", "on_hold_bsum", "next_reply_sum",
    "next_reply_bsum",
)
COUNT_COLUMNS = (
    "created", "solved", "first_reply_n", "next_reply_n", "reopens", "replies", "assignee_hops", "team_hops",
    "one_touch", "first_contact", "csat_n", "csat_satisfied", "csat_rating_sum", "nps_n", "nps_promoters",
    "nps_detractors", "sla_n", "sla_achieved", "delivery_failures", "deflections", "linked", "with_sla",
)
HIST_COLUMNS = ("first_reply_hist", "resolution_hist")
QUANTUM = 1024


def quantize(minutes: float) -> float:
    """Minutes rounded to a multiple of 1/1024 (exact in binary floating point)."""
    return round(minutes * QUANTUM) / QUANTUM


def hour(at: datetime) -> str:
    """The UTC hour bucket of an instant (``date_trunc('hour', at)``), as ISO text. A fold asks
    for the same few hours many times (every fact of a ticket, twice per refold): the hour's
    number is cheap to get (exact: timedelta arithmetic, no float), its text is cached."""
    if at.tzinfo is None:
        at = at.astimezone(UTC)
    return _hour_text((at - _EPOCH) // _HOUR)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_HOUR = timedelta(hours=1)


@functools.lru_cache(maxsize=8192)
def _hour_text(number: int) -> str:
    return (_EPOCH + number * _HOUR).isoformat()


# --------------------------------------------------------------------------- dimensions


@dataclass(frozen=True, slots=True)
class Dimensions:
    """A ticket's current dimension values (None: unknown, no rollup row for that dimension)."""

    team_id: str | None = None
    assignee_id: str | None = None
    channel: str | None = None
    ticket_type: str | None = None
    priority: str | None = None
    tier: str | None = None
    organization_id: str | None = None
    brand: str | None = None
    tags: tuple[str, ...] = ()

    def pairs(self) -> list[tuple[str, str]]:
        """``(dim, dim_value)`` of every rollup row the ticket counts in, ``all`` first."""
        out = [("all", "")]
        for dim, value in (("team", self.team_id), ("agent", self.assignee_id), ("channel", self.channel),
                           ("type", self.ticket_type), ("priority", self.priority), ("tier", self.tier),
                           ("brand", self.brand), ("organization", self.organization_id)):
            if value is not None and value != "":
                out.append((dim, value))
        out.extend(("tag", tag) for tag in sorted(set(self.tags)) if tag)
        return out


@dataclass(frozen=True, slots=True)
class TicketState:
    """What a ticket's history says beyond the metrics: its dimensions (before the customer's
    tier and organisation are looked up), its customer, SLA targets and delivery failures."""

    number: int | None
    customer_id: str | None
    ticket_tier: str | None
    dims: Dimensions
    targets: tuple[SlaTarget, ...]
    failures: tuple[DeliveryFailure, ...]
    newest: datetime | None


def ticket_state(history: Iterable[HistoryFact]) -> TicketState:
    """Resolve the current dimensions from the facts, independent of their arrival order:
    ``Dims`` apply in (version, time) order field by field; the team and assignee are those of
    the latest assignment (by ``rules.order_key``), else the creation's; the customer is the one
    of the latest link or of the latest creation / update naming one, whichever is newer."""
    dims_facts: list[Dims] = []
    assignments: list[Created | Assigned] = []
    links: list[Linked] = []
    targets: list[SlaTarget] = []
    failures: dict[str, DeliveryFailure] = {}
    newest: datetime | None = None
    for fact in history:
        at = fact.at.astimezone(UTC)
        newest = at if newest is None or at > newest else newest
        match fact:
            case Dims():
                dims_facts.append(fact)
            case Created() | Assigned():
                assignments.append(fact)
            case Linked():
                links.append(fact)
            case SlaTarget():
                targets.append(fact)
            case DeliveryFailure():
                failures[fact.delivery_id] = fact
    values: dict[str, Any] = {}
    customer_set_at: datetime | None = None
    for d in sorted(dims_facts, key=lambda d: (d.version, d.at.astimezone(UTC), sorted(d.values.items(), key=str))):
        values.update(d.values)
        if "customer_id" in d.values:
            customer_set_at = d.at.astimezone(UTC)
    team = assignee = None
    if assignments:
        latest = max(assignments, key=lambda f: (isinstance(f, Assigned), order_key(f)))
        team, assignee = latest.team_id, latest.assignee_id
    customer = values.get("customer_id")
    if links:
        # a link newer than the ticket's own customer change wins (a requester resolved later);
        # a customer change after it (a merge re-pointing the ticket) wins over the link
        link = max(links, key=lambda f: (f.at.astimezone(UTC), f.customer_id))
        if customer is None or customer_set_at is None or link.at.astimezone(UTC) > customer_set_at:
            customer = link.customer_id
    tags = values.get("tags") or ()
    dims = Dimensions(
        team_id=team, assignee_id=assignee, channel=values.get("channel"), ticket_type=values.get("type"),
        priority=values.get("priority"), brand=values.get("brand"),
        tags=tuple(str(t) for t in tags) if isinstance(tags, (list, tuple)) else (),
    )
    targets_sorted = tuple(sorted(targets, key=lambda t: (t.at.astimezone(UTC), t.metric, t.policy)))
    return TicketState(
        number=values.get("number"), customer_id=customer, ticket_tier=values.get("customer_tier"), dims=dims,
        targets=targets_sorted, failures=tuple(sorted(failures.values(), key=lambda f: (f.at, f.delivery_id))),
        newest=newest,
    )


def cycle_policies(metrics: TicketMetrics, targets: Sequence[SlaTarget]) -> tuple[str, ...]:
    """The policy of each SLA cycle: the latest target of its metric started at or before the
    outcome, else the metric's earliest target, else '' (unknown)."""
    out = []
    for (metric, _), at in zip(metrics.sla_outcomes, metrics.sla_outcome_at, strict=True):
        same = [t for t in targets if t.metric == metric]
        before = [t for t in same if t.at <= at]
        chosen = before[-1] if before else (same[0] if same else None)
        out.append("" if chosen is None else chosen.policy)
    return tuple(out)


# --------------------------------------------------------------------------- contributions


@dataclass(frozen=True, slots=True)
class Contributions:
    """What one ticket holds in the rollups: for each of its dimension ``pairs``, the same sums
    per hour (``metric``: bucket -> column -> amount, histogram bins as ``<column>:<bin>``) and
    SLA outcomes (``sla``: (bucket, policy, metric) -> (achieved, breached)) and, while the
    ticket is open, its place in the open backlog (``open``: created_at's bucket -> ``open`` /
    ``unassigned`` counts; and the bucket of the instant it becomes overdue -> ``overdue_from``,
    of the instant it becomes at risk -> ``at_risk_from``: the ``open_rollups`` rows it adds to)."""

    pairs: tuple[tuple[str, str], ...] = ()
    metric: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    sla: Mapping[tuple[str, str, str], tuple[int, int]] = field(default_factory=dict)
    open: Mapping[str, Mapping[str, int]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out = {
            "pairs": [list(p) for p in self.pairs],
            "metric": {b: dict(cols) for b, cols in self.metric.items()},
            "sla": [[b, p, m, a, x] for (b, p, m), (a, x) in self.sla.items()],
        }
        if self.open:
            out["open"] = {b: dict(cols) for b, cols in self.open.items()}
        return out

    @classmethod
    def from_json(cls, value: Any) -> Contributions:
        """The stored form back; an empty value (the column's ``[]`` default) is no contribution."""
        if not value:
            return cls()
        return cls(
            pairs=tuple((p[0], p[1]) for p in value["pairs"]),
            metric={b: dict(cols) for b, cols in value["metric"].items()},
            sla={(b, p, m): (a, x) for b, p, m, a, x in value["sla"]},
            open={b: dict(cols) for b, cols in value.get("open", {}).items()},
        )


def contributions(*, created_at: datetime | None, metrics: TicketMetrics | None, dims: Dimensions,
                  policies: Sequence[str] = (), failures: Sequence[DeliveryFailure] = (), linked: bool = False,
                  with_sla: bool = False, assigned: bool = False,
                  sla_clock: tuple[datetime | None, datetime | None] = (None, None)) -> Contributions:
    """The rollup sums of one ticket, attributed as docs/metrics.md "Read model" states: created
    at creation; the resolution figures at the resolution, for resolved tickets; the first reply
    at the first reply; survey answers at the answer; each SLA cycle at its outcome; delivery
    failures at the failure; ``linked`` (linked to a customer) and ``with_sla`` (at least one
    SLA target) at creation; an open ticket (neither resolved nor merged) counts in the open
    backlog at creation, as unassigned unless ``assigned``, and in the overdue / at-risk clocks at
    the hours of ``sla_clock`` (``targets.sla_clock``). A ticket whose creation is not folded yet
    contributes nothing.
    Business sums without a calendar are the calendar ones (24x7). A soft-deleted ticket
    contributes nothing until it is restored (deleted tickets are in no report, as in Zendesk)."""
    if created_at is None or metrics is None or metrics.deleted:
        return Contributions()
    buckets: dict[str, Counter[str]] = {}

    def add(at: datetime, **amounts: float) -> None:
        cols = buckets.setdefault(hour(at), Counter())
        for name, amount in amounts.items():
            cols[name] += amount

    add(created_at, created=1, linked=int(linked), with_sla=int(with_sla))
    m = metrics
    if m.first_reply is not None and m.first_reply_at is not None:
        cal = m.first_reply.calendar_minutes
        add(m.first_reply_at, first_reply_n=1, first_reply_sum=quantize(cal),
            first_reply_bsum=quantize(_business(m.first_reply)),
            **{f"first_reply_hist:{histogram.hist_bin(cal)}": 1})
    if m.resolved and m.resolved_at is not None and m.full_resolution is not None:
        cal = m.full_resolution.calendar_minutes
        next_sum = sum((d.calendar_minutes for d in m.next_replies), 0.0)
        next_bsum = sum((_business(d) for d in m.next_replies), 0.0)
        add(m.resolved_at, solved=1, resolution_sum=quantize(cal), resolution_bsum=quantize(_business(m.full_resolution)),
            requester_wait_sum=quantize(m.requester_wait.calendar_minutes),
            requester_wait_bsum=quantize(_business(m.requester_wait)),
            agent_wait_sum=quantize(m.agent_wait.calendar_minutes), agent_wait_bsum=quantize(_business(m.agent_wait)),
            on_hold_sum=quantize(m.on_hold.calendar_minutes), on_hold_bsum=quantize(_business(m.on_hold)),
            next_reply_n=len(m.next_replies), next_reply_sum=quantize(next_sum), next_reply_bsum=quantize(next_bsum),
            reopens=m.reopens, replies=m.replies, assignee_hops=m.assignee_hops, team_hops=m.team_hops,
            one_touch=int(m.one_touch), first_contact=int(m.first_contact),
            **{f"resolution_hist:{histogram.hist_bin(cal)}": 1})
    if m.csat is not None and m.csat_at is not None:
        add(m.csat_at, **survey_amounts("csat", m.csat))
    if m.nps is not None and m.nps_at is not None:
        add(m.nps_at, **survey_amounts("nps", m.nps))
    sla: Counter[tuple[str, str, str]] = Counter()
    breached: Counter[tuple[str, str, str]] = Counter()
    padded = list(policies) + [""] * (len(m.sla_outcomes) - len(policies))
    for (metric, achieved), at, policy in zip(m.sla_outcomes, m.sla_outcome_at, padded, strict=False):
        add(at, sla_n=1, sla_achieved=int(achieved))
        key = (hour(at), policy, metric)
        sla[key] += int(achieved)
        breached[key] += int(not achieved)
    for failure in failures:
        add(failure.at, delivery_failures=1)
    metric = {b: {k: v for k, v in sorted(cols.items()) if v} for b, cols in sorted(buckets.items())}
    return Contributions(
        pairs=tuple(dims.pairs()),
        metric={b: cols for b, cols in metric.items() if cols},
        sla={key: (sla[key], breached[key]) for key in sorted(sla.keys() | breached.keys())},
        open=open_contribution(m, created_at, assigned=assigned, sla_clock=sla_clock),
    )


def open_contribution(m: TicketMetrics, created_at: datetime, *, assigned: bool,
                      sla_clock: tuple[datetime | None, datetime | None]) -> dict[str, dict[str, int]]:
    """An open ticket's ``open_rollups`` counts by bucket (nothing once resolved or merged)."""
    if m.resolved or m.merged:
        return {}
    out: dict[str, Counter[str]] = {hour(created_at): Counter(open=1, unassigned=int(not assigned))}
    overdue_at, at_risk_at = sla_clock
    if overdue_at is not None and at_risk_at is not None:
        out.setdefault(hour(overdue_at), Counter())["overdue_from"] += 1
        out.setdefault(hour(at_risk_at), Counter())["at_risk_from"] += 1
    return {b: {k: v for k, v in sorted(cols.items()) if v} for b, cols in sorted(out.items())}


def survey_amounts(kind: str, value: int) -> dict[str, int]:
    """One CSAT rating (1-5) or NPS score (0-10) as rollup counts."""
    if kind == "csat":
        return {"csat_n": 1, "csat_satisfied": int(value >= 4), "csat_rating_sum": value}
    return {"nps_n": 1, "nps_promoters": int(value >= 9), "nps_detractors": int(value <= 6)}


def _business(duration: Any) -> float:
    minutes = duration.business_minutes
    return duration.calendar_minutes if minutes is None else minutes


# --------------------------------------------------------------------------- delta

MetricKey = tuple[str, str, str]  # (dim, bucket, dim_value)
SlaKey = tuple[str, str, str, str, str]  # (dim, bucket, dim_value, policy, metric)


@dataclass(frozen=True, slots=True)
class Delta:
    """What to add to the rollups, rows sorted by key (the lock order of the upserts)."""

    metric: tuple[tuple[MetricKey, dict[str, float]], ...] = ()
    sla: tuple[tuple[SlaKey, tuple[int, int]], ...] = ()
    open: tuple[tuple[MetricKey, dict[str, float]], ...] = ()

    def __bool__(self) -> bool:
        return bool(self.metric or self.sla or self.open)


def expand(c: Contributions) -> tuple[dict[MetricKey, Counter[str]], dict[SlaKey, tuple[int, int]]]:
    """The rollup rows of one state: every pair times every bucket."""
    metric: dict[MetricKey, Counter[str]] = {}
    sla: dict[SlaKey, tuple[int, int]] = {}
    for dim, value in c.pairs:
        for bucket, cols in c.metric.items():
            metric[(dim, bucket, value)] = Counter(cols)
        for (bucket, policy, sla_metric), counts in c.sla.items():
            sla[(dim, bucket, value, policy, sla_metric)] = counts
    return metric, sla


def expand_open(c: Contributions) -> dict[MetricKey, Counter[str]]:
    """The open_rollups rows of one state: every pair times each of its (at most three) buckets."""
    return {(dim, bucket, value): Counter(cols) for dim, value in c.pairs for bucket, cols in c.open.items()}


def _diff_rows(old: Mapping[MetricKey, Counter[str]],
               new: Mapping[MetricKey, Counter[str]]) -> tuple[tuple[MetricKey, dict[str, float]], ...]:
    """The rows that turn ``old`` into ``new`` (zeros dropped, rows and columns in key order)."""
    out = []
    for key in sorted(old.keys() | new.keys()):
        before, after = old.get(key, Counter()), new.get(key, Counter())
        diff = {name: after.get(name, 0) - before.get(name, 0) for name in sorted(before.keys() | after.keys())}
        diff = {name: amount for name, amount in diff.items() if amount}
        if diff:
            out.append((key, diff))
    return tuple(out)


def _bucket_diff(old: Mapping[str, Mapping[str, float]],
                 new: Mapping[str, Mapping[str, float]]) -> dict[str, dict[str, float]]:
    """``_diff_rows`` of one pair's buckets: bucket -> the columns that changed (columns in order)."""
    out: dict[str, dict[str, float]] = {}
    for bucket in old.keys() | new.keys():
        before, after = old.get(bucket) or {}, new.get(bucket) or {}
        diff = {name: after.get(name, 0) - before.get(name, 0) for name in sorted(before.keys() | after.keys())}
        diff = {name: amount for name, amount in diff.items() if amount}
        if diff:
            out[bucket] = diff
    return out


def _pair_rows(old_pairs: Sequence[tuple[str, str]], old: Mapping[str, Mapping[str, float]],
               new_pairs: Sequence[tuple[str, str]], new: Mapping[str, Mapping[str, float]]
               ) -> tuple[tuple[MetricKey, dict[str, float]], ...]:
    """``_diff_rows(expand(old), expand(new))`` without expanding: every pair holds the same
    buckets, so the difference of a pair depends only on whether the old state, the new one or
    both have it, and is computed once for each of those three cases, not once per pair (a
    ticket has about ten pairs; this was the fold's largest Python cost after the statements)."""
    had, has = set(old_pairs), set(new_pairs)
    by_case: dict[tuple[bool, bool], dict[str, dict[str, float]]] = {}
    out = []
    for pair in had | has:
        case = (pair in had, pair in has)
        diff = by_case.get(case)
        if diff is None:
            diff = by_case[case] = _bucket_diff(old if case[0] else {}, new if case[1] else {})
        dim, value = pair
        out.extend(((dim, bucket, value), cols) for bucket, cols in diff.items())
    out.sort(key=lambda row: row[0])
    return tuple(out)


def delta(old: Contributions, new: Contributions) -> Delta:
    """What to add to the rollups so that they hold ``new`` instead of ``old`` for this ticket
    (the rows of ``expand(new)`` minus those of ``expand(old)``, zeros dropped, in key order)."""
    had, has = set(old.pairs), set(new.pairs)
    sla = []
    for case in ((True, True), (True, False), (False, True)):
        pairs = [p for p in had | has if (p in had, p in has) == case]
        if not pairs:
            continue
        before, after = (old.sla if case[0] else {}), (new.sla if case[1] else {})
        for key in before.keys() | after.keys():
            a0, b0 = before.get(key, (0, 0))
            a1, b1 = after.get(key, (0, 0))
            if (a1 - a0, b1 - b0) != (0, 0):
                bucket, policy, sla_metric = key
                sla.extend(((dim, bucket, value, policy, sla_metric), (a1 - a0, b1 - b0)) for dim, value in pairs)
    sla.sort(key=lambda row: row[0])
    return Delta(metric=_pair_rows(old.pairs, old.metric, new.pairs, new.metric), sla=tuple(sla),
                 open=_pair_rows(old.pairs, old.open, new.pairs, new.open))


def hist_arrays(cols: Mapping[str, float]) -> dict[str, list[int] | None]:
    """The histogram deltas of one row as full bin arrays (None when a histogram is unchanged)."""
    out: dict[str, list[int] | None] = {name: None for name in HIST_COLUMNS}
    for key, amount in cols.items():
        name, sep, index = key.partition(":")
        if sep and name in out:
            arr = out[name] or [0] * histogram.BINS
            arr[int(index)] += int(amount)
            out[name] = arr
    return out


def day(bucket: str) -> str:
    """The UTC day of an hourly bucket (ISO text, as ``hour`` writes it)."""
    return bucket[:10] + "T00:00:00+00:00"


class DeltaSum:
    """The sum of many tickets' deltas (one batch's fold): rows per key, zeros dropped, in key
    order; ``daily`` is the same sums per UTC day (``metric_rollups_daily``)."""

    def __init__(self) -> None:
        self._metric: dict[MetricKey, Counter[str]] = {}
        self._sla: dict[SlaKey, list[int]] = {}
        self._open: dict[MetricKey, Counter[str]] = {}

    def add(self, d: Delta) -> None:
        for key, cols in d.metric:
            self._metric.setdefault(key, Counter()).update(cols)
        for key, cols in d.open:
            self._open.setdefault(key, Counter()).update(cols)
        for key, (a, b) in d.sla:
            acc = self._sla.setdefault(key, [0, 0])
            acc[0] += a
            acc[1] += b

    @staticmethod
    def _rows(metric: Mapping[MetricKey, Counter[str]]) -> tuple[tuple[MetricKey, dict[str, float]], ...]:
        out = []
        for key in sorted(metric):
            cols = {name: amount for name, amount in sorted(metric[key].items()) if amount}
            if cols:
                out.append((key, cols))
        return tuple(out)

    def hourly(self) -> Delta:
        return Delta(metric=self._rows(self._metric))

    def daily(self) -> Delta:
        days: dict[MetricKey, Counter[str]] = {}
        for (dim, bucket, value), cols in self._metric.items():
            days.setdefault((dim, day(bucket), value), Counter()).update(cols)
        return Delta(metric=self._rows(days))

    def open_rows(self) -> Delta:
        """The open_rollups rows (``open``)."""
        return Delta(open=self._rows(self._open))

    def sla_rows(self) -> Delta:
        return Delta(sla=tuple((key, (a, b)) for key, (a, b) in sorted(self._sla.items()) if (a, b) != (0, 0)))
