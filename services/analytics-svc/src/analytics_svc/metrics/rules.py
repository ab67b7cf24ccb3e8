"""Per-ticket and aggregate metric rules: pure functions over plain data (docs/metrics.md).

A ticket's history is a collection of small frozen *facts* (one per relevant event). ``fold``
sorts them by time with a deterministic tiebreak that does not depend on arrival order, so a
late or redelivered-out-of-order event never changes the result: the read model can simply
re-fold a ticket's facts whenever one arrives. Durations are exact ``timedelta`` values in
calendar time and, when a :class:`BusinessCalendar` is given, in business time counted by
``helpdesk_common.business_time`` (the arithmetic sla-svc's timers use), so an analytics
"business minute" is the same minute an SLA target is stated in.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from helpdesk_common.business_time import BusinessCalendar, business_time_between, to_utc

# --------------------------------------------------------------------------- facts

Author = Literal["customer", "agent", "system"]

#: statuses in which agent work is still owed (ticket-svc's lifecycle.ACTIVE)
ACTIVE = frozenset({"new", "open", "pending", "on_hold"})
#: statuses that end the resolution clock
RESOLVED = frozenset({"solved", "closed"})
#: statuses whose time is the requester's wait (the ball is with the help desk)
REQUESTER_WAIT = frozenset({"new", "open", "on_hold"})


@dataclass(frozen=True, slots=True)
class Created:
    """The ticket exists. ``by_agent`` marks a ticket an agent opened on a customer's behalf:
    its first-reply clock waits for the customer's first public message instead of starting
    here (the agent's own opening text is no request waiting for an answer)."""

    at: datetime
    status: str = "new"
    by_agent: bool = False
    assignee_id: str | None = None
    team_id: str | None = None


@dataclass(frozen=True, slots=True)
class StatusChanged:
    """``reason`` "deleted" (a soft delete closes the ticket) or "restored" (its restore): neither
    is a resolution nor a reopening, and a deleted ticket is in no figure until restored."""

    at: datetime
    to_status: str
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Assigned:
    """The ticket's assignee and team after an assignment (either may be None: unassigned)."""

    at: datetime
    assignee_id: str | None
    team_id: str | None


@dataclass(frozen=True, slots=True)
class Message:
    """A message on the ticket. Only ``public`` messages are replies or requests: an internal
    note is neither, whoever writes it; system messages never count."""

    at: datetime
    author: Author
    public: bool


@dataclass(frozen=True, slots=True)
class Merged:
    """The ticket was merged into another: its clocks stop here and it is never "resolved"."""

    at: datetime


@dataclass(frozen=True, slots=True)
class SlaOutcome:
    """An SLA target's outcome for ``metric`` (``first_response``, ``resolution``, ``step:<key>``...).

    ``final`` is True for a fulfilment (the target's cycle ended, on time or late) and False for
    a breach seen while the target still runs (``sla.breached`` at the due time): the late
    fulfilment that follows such a breach ends the same cycle and must not count twice.
    """

    at: datetime
    metric: str
    breached: bool
    final: bool = True


@dataclass(frozen=True, slots=True)
class SurveyAnswer:
    """A CSAT rating (1-5) or NPS score (0-10) about this ticket."""

    at: datetime
    kind: Literal["csat", "nps"]
    value: int


Fact = Created | StatusChanged | Assigned | Message | Merged | SlaOutcome | SurveyAnswer

_RANK: dict[type, int] = {Created: 0, Assigned: 1, Message: 2, StatusChanged: 3, Merged: 4, SlaOutcome: 5,
                          SurveyAnswer: 6}
"""Tiebreak for facts at the same instant. A ticket is created before anything else happens to it;
a message sent in the same instant as a status change is treated as written before it (an agent's
"reply and solve" is a reply on the open ticket, then the solve)."""


def order_key(fact: Fact) -> tuple[Any, ...]:
    """The sort key: time, kind rank, then the fact's own fields, so equal-time facts sort the
    same whatever order they arrived in (the fold is a function of the *set* of facts)."""
    values = tuple("" if v is None else str(v) for v in _fields(fact)[1:])
    return (to_utc(fact.at), _RANK[type(fact)], values)


def _fields(fact: Fact) -> tuple[Any, ...]:
    return tuple(getattr(fact, name) for name in fact.__slots__)  # type: ignore[union-attr]


def facts_from_event(event: Any) -> tuple[Fact, ...]:
    """The facts one contract event (``helpdesk_common.events``) contributes to its ticket's history.

    Events that carry nothing a metric needs give ``()``; a new metric-relevant event kind is one
    more branch here. ``created_by`` starting with ``user:`` marks a ticket an agent opened.
    """
    data = getattr(event, "data", None)
    kind = getattr(event, "type", "")
    match kind:
        case "ticket.created":
            return (Created(at=data.created_at, status=data.status, by_agent=data.created_by.startswith("user:"),
                            assignee_id=data.assignee_id, team_id=_str(data.team_id)),)
        case "ticket.status_changed":
            return (StatusChanged(at=data.changed_at, to_status=data.to_status, reason=data.reason),)
        case "ticket.assigned":
            return (Assigned(at=data.assigned_at, assignee_id=data.assignee_id, team_id=_str(data.team_id)),)
        case "ticket.message_added":
            return (Message(at=data.created_at, author=data.author_kind, public=data.public),)
        case "ticket.merged":
            return (Merged(at=event.time),)
        case "sla.fulfilled":
            return (SlaOutcome(at=data.fulfilled_at, metric=data.metric, breached=data.breached),)
        case "sla.breached":
            return (SlaOutcome(at=data.fire_at or data.due_at, metric=data.metric, breached=True, final=False),)
        case "survey.answered" if data.ticket_id is not None:
            value = data.rating if data.kind == "csat" else data.score
            if value is None:
                return ()
            return (SurveyAnswer(at=data.at, kind=data.kind, value=value),)
    return ()


def _str(value: object) -> str | None:
    return None if value is None else str(value)


# --------------------------------------------------------------------------- results


@dataclass(frozen=True, slots=True)
class Duration:
    """One measured span: calendar time, and business time when a calendar was given."""

    calendar: timedelta
    business: timedelta | None = None

    @property
    def calendar_minutes(self) -> float:
        return self.calendar / timedelta(minutes=1)

    @property
    def business_minutes(self) -> float | None:
        return None if self.business is None else self.business / timedelta(minutes=1)

    def __add__(self, other: Duration) -> Duration:
        business = None if self.business is None or other.business is None else self.business + other.business
        return Duration(self.calendar + other.calendar, business)


@dataclass(frozen=True, slots=True)
class TicketMetrics:
    """Every per-ticket figure of docs/metrics.md, for one ticket."""

    first_reply: Duration | None
    next_replies: tuple[Duration, ...]
    full_resolution: Duration | None
    requester_wait: Duration
    agent_wait: Duration
    on_hold: Duration
    reopens: int
    replies: int
    assignee_hops: int
    team_hops: int
    resolved: bool
    one_touch: bool
    first_contact: bool
    merged: bool
    status: str | None
    sla: dict[str, bool] = field(default_factory=dict)
    """metric -> achieved (True) / breached (False); the latest outcome per metric wins"""
    sla_outcomes: tuple[tuple[str, bool], ...] = ()
    """(metric, achieved) per target cycle, in time order: ``next_response`` has one per answered
    customer message, so compliance counts cycles, not just the last one"""
    csat: int | None = None
    nps: int | None = None
    first_reply_at: datetime | None = None
    """the instant of the reply that ended the first reply wait (the read model's hour for it)"""
    resolved_at: datetime | None = None
    """the instant the ticket was last resolved, only while it is resolved now"""
    sla_outcome_at: tuple[datetime, ...] = ()
    """the instant each cycle of ``sla_outcomes`` was decided (same order): a breach counts at the
    breach, a fulfilment at the fulfilment"""
    csat_at: datetime | None = None
    nps_at: datetime | None = None
    """the instants of the answers kept in ``csat`` / ``nps``"""
    deleted: bool = False
    """soft-deleted and not restored: the read model counts the ticket nowhere"""


# --------------------------------------------------------------------------- fold


def span(start: datetime, end: datetime, calendar: BusinessCalendar | None) -> Duration:
    """The duration of ``[start, end)``; business time by the shared business-time arithmetic."""
    business = None if calendar is None else business_time_between(calendar, start, end)
    return Duration(to_utc(end) - to_utc(start), business)


def _total(spans: Iterable[tuple[datetime, datetime]], calendar: BusinessCalendar | None) -> Duration:
    total = Duration(timedelta(0), None if calendar is None else timedelta(0))
    for start, end in spans:
        total = total + span(start, end, calendar)
    return total


def fold(history: Iterable[Fact], *, calendar: BusinessCalendar | None = None,
         as_of: datetime | None = None) -> TicketMetrics:
    """Compute one ticket's metrics from its facts, in any order (docs/metrics.md).

    Status spells still running at the end are counted up to ``as_of`` (default: the newest
    fact's time; an ``as_of`` older than the newest fact is taken as that fact's time), so an
    unresolved ticket's waits grow as the board is refreshed. A fact stamped before the ticket's
    creation (another service's clock running behind) counts as happening at the creation, so no
    duration is ever negative. A history without ``Created`` (its event not folded yet) starts at
    its earliest fact, in status ``new``, and assumes no customer request at that start. Facts are not de-duplicated: two customer messages in the same instant are
    two messages; redelivered events are the inbox's business, before facts are made.
    """
    facts = sorted(history, key=order_key)
    if not facts:
        raise ValueError("a ticket's history needs at least one fact")
    created = next((f for f in facts if isinstance(f, Created)), None)
    start = to_utc(created.at) if created else to_utc(facts[0].at)
    newest = max(to_utc(f.at) for f in facts)
    end = max(start, newest, to_utc(as_of) if as_of is not None else newest)

    status = created.status if created else "new"
    spell_start = start
    spells: dict[str, list[tuple[datetime, datetime]]] = {}
    # a customer's opening text is their first request; an agent's (or an unknown) opening is not
    opening_is_request = created is not None and not created.by_agent
    assignee = created.assignee_id if created else None
    team = created.team_id if created else None
    assignee_hops = team_hops = 0

    # first and next replies: the instant the oldest unanswered public customer message arrived
    awaiting: datetime | None = start if opening_is_request else None
    first_reply: Duration | None = None
    first_reply_at: datetime | None = None
    next_replies: list[Duration] = []
    replies = 0
    customer_messages = 1 if opening_is_request else 0
    # a ticket logged as already solved (a phone call settled on the spot) resolved at creation
    resolved_at: datetime | None = start if status in RESOLVED else None
    reopens = 0
    merged_at: datetime | None = None
    deleted = False
    sla: dict[str, bool] = {}
    cycles: list[tuple[str, bool]] = []
    cycle_at: list[datetime] = []
    open_breach: dict[str, int] = {}  # metric -> index in cycles of a breach whose cycle still runs
    csat = nps = None
    csat_at: datetime | None = None
    nps_at: datetime | None = None

    for fact in facts:
        at = max(to_utc(fact.at), start)
        if merged_at is not None and not isinstance(fact, SlaOutcome | SurveyAnswer):
            continue  # a merged-away ticket's clocks have stopped
        match fact:
            case StatusChanged(to_status=new_status, reason=reason):
                if reason is not None:
                    deleted = reason == "deleted"
                if new_status == status:
                    continue
                spells.setdefault(status, []).append((spell_start, at))
                if status in RESOLVED and new_status in ACTIVE:
                    if reason != "restored":  # a restore gives back the status, it reopens nothing
                        reopens += 1
                    resolved_at = None
                if new_status in RESOLVED and status not in RESOLVED and reason != "deleted":
                    resolved_at = at
                status, spell_start = new_status, at
            case Assigned(assignee_id=new_assignee, team_id=new_team):
                # a hop is a hand-over from one holder to a different one; a spell in a queue
                # (unassigned) between them does not hide it, and a first assignment is no hop
                if new_assignee is not None:
                    if assignee is not None and new_assignee != assignee:
                        assignee_hops += 1
                    assignee = new_assignee
                if new_team is not None:
                    if team is not None and new_team != team:
                        team_hops += 1
                    team = new_team
            case Message(author="customer", public=True):
                customer_messages += 1
                if awaiting is None:
                    awaiting = at
            case Message(author="agent", public=True):
                replies += 1
                if awaiting is not None:
                    waited = span(awaiting, at, calendar)
                    if first_reply is None:
                        first_reply, first_reply_at = waited, at
                    else:
                        next_replies.append(waited)
                    awaiting = None
            case Merged():
                merged_at = at
            case SlaOutcome(metric=metric, breached=breached, final=final):
                sla[metric] = not breached
                if metric in open_breach:
                    # the fulfilment (or a repeated breach) of a cycle already counted as breached
                    if final:
                        del open_breach[metric]
                    continue
                cycles.append((metric, not breached))
                cycle_at.append(at)
                if not final:
                    open_breach[metric] = len(cycles) - 1
            case SurveyAnswer(kind="csat", value=value):
                csat, csat_at = value, at
            case SurveyAnswer(kind="nps", value=value):
                nps, nps_at = value, at

    stop = merged_at if merged_at is not None else end
    if stop > spell_start:
        spells.setdefault(status, []).append((spell_start, stop))
    resolved = merged_at is None and not deleted and resolved_at is not None and status in RESOLVED

    def in_statuses(names: frozenset[str]) -> Duration:
        return _total((s for name in sorted(names) for s in spells.get(name, ())), calendar)

    return TicketMetrics(
        first_reply=first_reply,
        next_replies=tuple(next_replies),
        full_resolution=span(start, resolved_at, calendar) if resolved and resolved_at is not None else None,
        requester_wait=in_statuses(REQUESTER_WAIT),
        agent_wait=in_statuses(frozenset({"pending"})),
        on_hold=in_statuses(frozenset({"on_hold"})),
        reopens=reopens,
        replies=replies,
        assignee_hops=assignee_hops,
        team_hops=team_hops,
        resolved=resolved,
        one_touch=resolved and replies <= 1,
        first_contact=resolved and customer_messages <= 1,
        merged=merged_at is not None,
        status=status,
        sla=sla,
        sla_outcomes=tuple(cycles),
        csat=csat,
        nps=nps,
        first_reply_at=first_reply_at,
        resolved_at=resolved_at if resolved else None,
        sla_outcome_at=tuple(cycle_at),
        csat_at=csat_at,
        nps_at=nps_at,
        deleted=deleted,
    )


def metric_values(metrics: TicketMetrics) -> dict[str, float | int | bool | str | None]:
    """One ticket's metrics as flat, stable column names (a per-ticket fact row's figures).

    Durations become ``<name>_minutes`` and ``<name>_business_minutes`` (None when absent or
    without a calendar); next replies are summarised by count and total, since a row has no
    lists. Keeping the names here means the read model and the exports cannot drift apart.
    """
    values: dict[str, float | int | bool | str | None] = {}
    durations: dict[str, Duration | None] = {
        "first_reply": metrics.first_reply,
        "full_resolution": metrics.full_resolution,
        "requester_wait": metrics.requester_wait,
        "agent_wait": metrics.agent_wait,
        "on_hold": metrics.on_hold,
    }
    next_total: Duration | None = None
    for waited in metrics.next_replies:
        next_total = waited if next_total is None else next_total + waited
    durations["next_replies_total"] = next_total
    for name, duration in durations.items():
        values[f"{name}_minutes"] = None if duration is None else duration.calendar_minutes
        values[f"{name}_business_minutes"] = None if duration is None else duration.business_minutes
    values.update(
        next_replies=len(metrics.next_replies), reopens=metrics.reopens, replies=metrics.replies,
        assignee_hops=metrics.assignee_hops, team_hops=metrics.team_hops, resolved=metrics.resolved,
        one_touch=metrics.one_touch, first_contact=metrics.first_contact, merged=metrics.merged,
        status=metrics.status, csat=metrics.csat, nps=metrics.nps,
        sla_achieved=sum(1 for _, achieved in metrics.sla_outcomes if achieved),
        sla_breached=sum(1 for _, achieved in metrics.sla_outcomes if not achieved),
    )
    return values


# --------------------------------------------------------------------------- aggregates


def csat_percent(ratings: Iterable[int]) -> float | None:
    """Share of satisfied answers (4 or 5 on the 1-5 scale) among all rated, in percent.
    None when nobody rated: "no data" is not 0 %."""
    values = list(ratings)
    for value in values:
        if not 1 <= value <= 5:
            raise ValueError(f"a CSAT rating is 1..5, got {value}")
    if not values:
        return None
    return 100.0 * sum(1 for v in values if v >= 4) / len(values)


def nps(scores: Iterable[int]) -> float | None:
    """Net Promoter Score: % promoters (9-10) minus % detractors (0-6), from -100 to 100."""
    values = list(scores)
    for value in values:
        if not 0 <= value <= 10:
            raise ValueError(f"an NPS score is 0..10, got {value}")
    if not values:
        return None
    promoters = sum(1 for v in values if v >= 9)
    detractors = sum(1 for v in values if v <= 6)
    return 100.0 * (promoters - detractors) / len(values)


def sla_compliance_percent(achieved: Iterable[bool]) -> float | None:
    """Share of SLA targets achieved among targets with an outcome (achieved or breached), in
    percent; targets still running or cancelled are not in the denominator. None when none."""
    values = list(achieved)
    if not values:
        return None
    return 100.0 * sum(1 for v in values if v) / len(values)


BACKLOG_BUCKETS: tuple[tuple[str, timedelta | None], ...] = (
    ("lt_1h", timedelta(hours=1)),
    ("1h_8h", timedelta(hours=8)),
    ("8h_24h", timedelta(hours=24)),
    ("1d_3d", timedelta(days=3)),
    ("3d_7d", timedelta(days=7)),
    ("7d_30d", timedelta(days=30)),
    ("ge_30d", None),
)
"""Backlog age buckets, lower bound inclusive, upper bound exclusive: an open ticket exactly 1 h
old is in ``1h_8h``. Ages are calendar time since creation (what a customer experiences)."""


def backlog_bucket(age: timedelta) -> str:
    """The bucket name for an open ticket of ``age`` (negative ages, from clock skew, count as 0)."""
    for name, upper in BACKLOG_BUCKETS:
        if upper is None or age < upper:
            return name
    raise AssertionError("unreachable: the last bucket is open-ended")  # pragma: no cover


def backlog_histogram(created_at: Iterable[datetime], now: datetime) -> dict[str, int]:
    """Open tickets per age bucket at ``now``; every bucket present, in order, zeros included."""
    counts = {name: 0 for name, _ in BACKLOG_BUCKETS}
    moment = to_utc(now)
    for created in created_at:
        counts[backlog_bucket(moment - to_utc(created))] += 1
    return counts


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0-100) by linear interpolation between closest ranks: the rank
    is ``(n - 1) * q / 100`` over the sorted values, and a fractional rank interpolates between
    its neighbours (NumPy's default "linear", Hyndman-Fan type 7). None for no values."""
    if not 0 <= q <= 100:
        raise ValueError("q is a percentage, 0..100")
    ordered = sorted(values)
    if not ordered:
        return None
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    fraction = rank - low
    return ordered[low] + (ordered[high] - ordered[low]) * fraction


def p50(values: Sequence[float]) -> float | None:
    return percentile(values, 50)


def p90(values: Sequence[float]) -> float | None:
    return percentile(values, 90)
