"""The explainable churn-risk score (0-100): pure functions over plain data, no I/O.

Each factor turns its inputs into a *severity* between 0 and 1 (an exact fraction), and
contributes ``round_half_up(weight * severity)`` whole points, so no factor can add more than
its weight. The score is the sum of the contributions, capped at 100. Every contribution is
a non-decreasing function of its own inputs taken in their "worse" direction (fewer recent
orders, more days without one, more open or breached tickets, a lower NPS, ...), and a sum
and a cap keep that, so making any one factor worse never lowers the score.

The reasons are the factors that contributed, each with its points and a sentence in zh-CN
and en; their points add up to the score exactly. Under the cap the points are the
contributions themselves; above it (the default weights add up to 115) 100 points are
shared in proportion to the contributions by the largest-remainder method, in integers, so
the sum is exactly 100 and no factor shows more points than it contributed.

Factors (``settings`` names the numbers; the defaults in brackets):

- ``order_frequency_drop`` - orders in the recent window (90 days) against the customer's
  own rate over the baseline before it (365 days): ``expected = baseline * 90 / 365``,
  ``severity = max(0, 1 - recent / expected)``; nothing below ``min_baseline_orders`` (2)
  baseline orders, where there is no habit to fall from.
- ``order_overdue`` - days since the last order in usual gaps (the mean gap between all
  their orders; ``default_gap_days`` (90) for a single order; at least one day):
  ``severity = clamp((days / gap - 1) / (full_ratio - 1), 0, 1)``, full at 3 gaps. Nothing for
  a customer who never ordered.
- ``unresolved_tickets`` - ``min(open, 3) / 3``.
- ``sla_breaches`` - tickets that breached an SLA in the recent window: ``min(n, 2) / 2``.
- ``bad_csat`` - CSAT answers of 1 or 2 in the recent window: ``min(n, 2) / 2``.
- ``detractor_nps`` - the last NPS answer, when 0-6: ``(7 - score) / 7``.
- ``repeat_contacts`` - tickets in the recent window on the same type or tag as one at most
  14 days before them, plus times a ticket was reopened: ``min(n, 3) / 3``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from fractions import Fraction
from typing import Literal

from customer_svc.insights.settings import ChurnSettings

MAX_SCORE = 100
NPS_DETRACTOR_MAX = 6

FactorKey = Literal[
    "order_frequency_drop",
    "order_overdue",
    "unresolved_tickets",
    "sla_breaches",
    "bad_csat",
    "detractor_nps",
    "repeat_contacts",
]
#: the order reasons with equal points are listed in, and the order leftover points go in
FACTORS: tuple[FactorKey, ...] = (
    "order_frequency_drop",
    "order_overdue",
    "sla_breaches",
    "unresolved_tickets",
    "bad_csat",
    "detractor_nps",
    "repeat_contacts",
)
Band = Literal["low", "medium", "high"]

Severity = tuple[int, int]
"""An exact fraction ``(numerator, denominator)`` between 0 and 1: plain ints are several times
cheaper than ``Fraction`` objects, and the nightly run scores every customer."""
_NONE: Severity = (0, 1)
_ONE = Fraction(1)
_DAY = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class ChurnInputs:
    """What the score is computed from, aggregated per customer (the nightly run does it in SQL,
    :func:`order_history` and :func:`repeated_contacts` are the pure definitions)."""

    orders_recent: int = 0
    """Orders in the recent window."""
    orders_baseline: int = 0
    """Orders in the baseline window before the recent one."""
    days_since_last_order: int | None = None
    """None: never ordered."""
    usual_gap_days: float | None = None
    """Mean days between orders; None with fewer than two orders."""
    open_tickets: int = 0
    breached_tickets_recent: int = 0
    bad_csat_recent: int = 0
    last_nps: int | None = None
    repeat_contacts_recent: int = 0

    def __post_init__(self) -> None:
        counts = (self.orders_recent, self.orders_baseline, self.open_tickets, self.breached_tickets_recent,
                  self.bad_csat_recent, self.repeat_contacts_recent)
        if min(counts) < 0:
            raise ValueError("counts cannot be negative")
        if self.days_since_last_order is not None and self.days_since_last_order < 0:
            raise ValueError("days_since_last_order cannot be negative")
        if self.usual_gap_days is not None and not self.usual_gap_days >= 0:
            raise ValueError("usual_gap_days must be a non-negative number")
        if self.last_nps is not None and not 0 <= self.last_nps <= 10:
            raise ValueError("last_nps is 0-10")


@dataclass(frozen=True, slots=True)
class Reason:
    factor: FactorKey
    contribution: int
    message_en: str
    message_zh: str

    def as_dict(self) -> dict[str, object]:
        """The stored and served shape: ``{"factor", "contribution", "message": {"en", "zh-CN"}}``."""
        return {"factor": self.factor, "contribution": self.contribution,
                "message": {"en": self.message_en, "zh-CN": self.message_zh}}


@dataclass(frozen=True, slots=True)
class ChurnRisk:
    score: int
    band: Band
    reasons: tuple[Reason, ...]
    """Largest contribution first; the contributions sum to ``score``."""


# --------------------------------------------------------------------------- severities


def frequency_drop_severity(recent: int, baseline: int, *, recent_days: int, baseline_days: int,
                            min_baseline_orders: int) -> Severity:
    """``1 - recent / expected`` with ``expected = baseline * recent_days / baseline_days``, at least 0."""
    if baseline < min_baseline_orders:
        return _NONE
    expected_scaled = baseline * recent_days  # expected * baseline_days
    return max(0, expected_scaled - recent * baseline_days), expected_scaled


def effective_gap(usual_gap_days: float | None, *, default_gap_days: int) -> Fraction:
    """The gap the overdue factor divides by: the usual one, the default for a single order, at least a day."""
    gap = Fraction(default_gap_days) if usual_gap_days is None else Fraction(usual_gap_days)
    return max(gap, _ONE)


def overdue_severity(days_since: int | None, usual_gap_days: float | None, *, default_gap_days: int,
                     full_ratio: float) -> Severity:
    """``(days / gap - 1) / (full_ratio - 1)`` clamped to 0..1; 0 for a customer who never ordered."""
    if days_since is None:
        return _NONE
    gap = effective_gap(usual_gap_days, default_gap_days=default_gap_days)
    if days_since <= gap:
        return _NONE
    severity = min((days_since / gap - 1) / (Fraction(full_ratio) - 1), _ONE)
    return severity.numerator, severity.denominator


def count_severity(count: int, saturation: int) -> Severity:
    """Linear up to ``saturation``, full beyond."""
    return min(count, saturation), saturation


def nps_severity(last_nps: int | None) -> Severity:
    """A detractor's answer (0-6) scaled so that 0 is full and 6 is a seventh; promoters, passives
    and customers never asked add nothing."""
    if last_nps is None or last_nps > NPS_DETRACTOR_MAX:
        return _NONE
    return NPS_DETRACTOR_MAX + 1 - last_nps, NPS_DETRACTOR_MAX + 1


def points(weight: int, severity: Severity) -> int:
    """``weight * severity`` rounded half up, exactly (integers only)."""
    numerator, denominator = severity
    return (2 * weight * numerator + denominator) // (2 * denominator)


def severities(inputs: ChurnInputs, settings: ChurnSettings) -> dict[FactorKey, Severity]:
    return {
        "order_frequency_drop": frequency_drop_severity(
            inputs.orders_recent, inputs.orders_baseline, recent_days=settings.recent_days,
            baseline_days=settings.baseline_days, min_baseline_orders=settings.min_baseline_orders),
        "order_overdue": overdue_severity(
            inputs.days_since_last_order, inputs.usual_gap_days, default_gap_days=settings.default_gap_days,
            full_ratio=settings.overdue_full_ratio),
        "sla_breaches": count_severity(inputs.breached_tickets_recent, settings.breach_saturation),
        "unresolved_tickets": count_severity(inputs.open_tickets, settings.unresolved_saturation),
        "bad_csat": count_severity(inputs.bad_csat_recent, settings.bad_csat_saturation),
        "detractor_nps": nps_severity(inputs.last_nps),
        "repeat_contacts": count_severity(inputs.repeat_contacts_recent, settings.repeat_contact_saturation),
    }


def weights(settings: ChurnSettings) -> dict[FactorKey, int]:
    return {factor: getattr(settings, f"weight_{factor}") for factor in FACTORS}


def contributions(inputs: ChurnInputs, settings: ChurnSettings) -> dict[FactorKey, int]:
    """Each factor's points before the cap, in :data:`FACTORS` order."""
    weight = weights(settings)
    return {factor: points(weight[factor], severity) for factor, severity in severities(inputs, settings).items()}


# --------------------------------------------------------------------------- the cap


def share_capped(contribution: Sequence[int], cap: int = MAX_SCORE) -> list[int]:
    """``contribution`` unchanged when it sums to at most ``cap``; else ``cap`` points shared in
    proportion by the largest-remainder method (leftover points to the largest remainders, ties
    to the larger contribution, then to the earlier one), so the shares sum to ``cap`` exactly
    and none exceeds its contribution."""
    total = sum(contribution)
    if total <= cap:
        return list(contribution)
    shares = [c * cap // total for c in contribution]
    leftover = cap - sum(shares)
    by_remainder = sorted(range(len(contribution)),
                          key=lambda i: (-(contribution[i] * cap % total), -contribution[i], i))
    for i in by_remainder[:leftover]:
        shares[i] += 1
    return shares


# --------------------------------------------------------------------------- sentences


def _plural(count: int, singular: str, plural: str | None = None) -> str:
    return f"{count} {singular if count == 1 else plural or singular + 's'}"


def _number(value: Fraction | float) -> str:
    """One decimal, without a trailing ``.0``: 2, 2.5, 0.7."""
    text = f"{float(value):.1f}"
    return text[:-2] if text.endswith(".0") else text


def _sentences(factor: FactorKey, inputs: ChurnInputs, settings: ChurnSettings) -> tuple[str, str]:
    recent = settings.recent_days
    if factor == "order_frequency_drop":
        expected = Fraction(inputs.orders_baseline * recent, settings.baseline_days)
        return (f"{_plural(inputs.orders_recent, 'order')} in the last {recent} days, about {_number(expected)} "
                f"expected from {_plural(inputs.orders_baseline, 'order')} in the {settings.baseline_days} days before",
                f"近{recent}天下单{inputs.orders_recent}次，按此前{settings.baseline_days}天的"
                f"{inputs.orders_baseline}单应约{_number(expected)}次")
    if factor == "order_overdue":
        days = inputs.days_since_last_order or 0
        gap = effective_gap(inputs.usual_gap_days, default_gap_days=settings.default_gap_days)
        ratio = _number(days / gap)
        if inputs.usual_gap_days is None:
            return (f"No order for {days} days after a single order ({ratio} times the {_number(gap)} days "
                    f"a customer usually waits)",
                    f"仅下过一单，已{days}天未再下单（为一般间隔{_number(gap)}天的{ratio}倍）")
        return (f"No order for {days} days, {ratio} times their usual gap of {_number(gap)} days",
                f"已{days}天未下单，为其平均下单间隔{_number(gap)}天的{ratio}倍")
    if factor == "sla_breaches":
        n = inputs.breached_tickets_recent
        return (f"{_plural(n, 'ticket')} breached the SLA in the last {recent} days",
                f"近{recent}天有{n}个工单超出SLA时限")
    if factor == "unresolved_tickets":
        n = inputs.open_tickets
        return (f"{_plural(n, 'unresolved ticket')}", f"{n}个工单尚未解决")
    if factor == "bad_csat":
        n = inputs.bad_csat_recent
        return (f"{_plural(n, 'bad satisfaction rating')} (1-2 of 5) in the last {recent} days",
                f"近{recent}天有{n}次满意度差评（1-2分）")
    if factor == "detractor_nps":
        return (f"Last NPS answer {inputs.last_nps} of 10 (a detractor)",
                f"最近一次NPS评分为{inputs.last_nps}分（贬损者）")
    n = inputs.repeat_contacts_recent
    return (f"{_plural(n, 'repeated contact')} about the same issue in the last {recent} days",
            f"近{recent}天就同一问题重复联系{n}次")


# --------------------------------------------------------------------------- score, band, episodes


def risk_band(score: int, settings: ChurnSettings) -> Band:
    if score >= settings.band_high_from:
        return "high"
    if score >= settings.band_medium_from:
        return "medium"
    return "low"


def churn_risk(inputs: ChurnInputs, settings: ChurnSettings) -> ChurnRisk:
    """The score, its band and its reasons (largest first, summing to the score)."""
    raw = contributions(inputs, settings)
    shares = share_capped([raw[factor] for factor in FACTORS])
    # largest first, equal shares in FACTORS order; sentences only for the factors shown
    ranked = sorted((i for i, share in enumerate(shares) if share > 0), key=lambda i: (-shares[i], i))
    reasons = tuple(Reason(FACTORS[i], shares[i], *_sentences(FACTORS[i], inputs, settings)) for i in ranked)
    score = sum(shares)
    return ChurnRisk(score=score, band=risk_band(score, settings), reasons=reasons)


class EpisodeChange(StrEnum):
    STARTED = "started"
    ENDED = "ended"


@dataclass(frozen=True, slots=True)
class EpisodeStep:
    active: bool
    """Whether a risk episode is open after this score (store it beside the score)."""
    change: EpisodeChange | None
    """Started or ended by this score: what ``insight.churn_risk_changed`` and the care task act on."""


def episode_step(*, active: bool, new_score: int, settings: ChurnSettings) -> EpisodeStep:
    """Hysteresis: an episode starts when the score reaches ``episode_enter_at`` and ends only
    when it falls below ``episode_leave_below``.

    It takes the stored episode flag rather than the previous score, because inside the band
    the previous score cannot tell: 65 after 75 is inside an episode, 65 after 50 is not. A
    customer scored for the first time is not active."""
    if not active and new_score >= settings.episode_enter_at:
        return EpisodeStep(active=True, change=EpisodeChange.STARTED)
    if active and new_score < settings.episode_leave_below:
        return EpisodeStep(active=False, change=EpisodeChange.ENDED)
    return EpisodeStep(active=active, change=None)


# --------------------------------------------------------------------------- input definitions


@dataclass(frozen=True, slots=True)
class OrderHistory:
    orders_recent: int
    orders_baseline: int
    days_since_last_order: int | None
    usual_gap_days: float | None


def order_history(order_times: Iterable[datetime], *, as_of: datetime, recent_days: int,
                  baseline_days: int) -> OrderHistory:
    """The order inputs of the score from one customer's order times (the definition the SQL
    aggregate follows): counts in ``(as_of - recent, as_of]`` and in the ``baseline`` days
    before that, whole days since the last order (at least 0), and the mean gap between all
    orders, ``(last - first) / (count - 1)`` in days."""
    recent_start = as_of - timedelta(days=recent_days)
    baseline_start = recent_start - timedelta(days=baseline_days)
    recent = baseline = count = 0
    first: datetime | None = None
    last: datetime | None = None
    for moment in order_times:
        count += 1
        first = moment if first is None or moment < first else first
        last = moment if last is None or moment > last else last
        if recent_start < moment <= as_of:
            recent += 1
        elif baseline_start < moment <= recent_start:
            baseline += 1
    if first is None or last is None:
        return OrderHistory(0, 0, None, None)
    gap = (last - first) / _DAY / (count - 1) if count > 1 else None
    return OrderHistory(recent, baseline, max(0, (as_of - last) // _DAY), gap)


@dataclass(frozen=True, slots=True)
class TicketFact:
    created_at: datetime
    type: str | None = None
    tags: frozenset[str] = frozenset()
    reopened: int = 0
    """Times the ticket was reopened."""


def _topics(ticket: TicketFact) -> set[tuple[str, str]]:
    found = {("tag", tag.casefold()) for tag in ticket.tags}
    if ticket.type:
        found.add(("type", ticket.type.casefold()))
    return found


def repeated_contacts(tickets: Iterable[TicketFact], *, as_of: datetime, recent_days: int,
                      window_days: int) -> int:
    """Contacts about an issue the customer already raised, among tickets created in the recent
    window: a ticket sharing its type or a tag with one created at most ``window_days`` before
    it counts once, and each reopening counts once (the customer came back on the same issue)."""
    recent_start = as_of - timedelta(days=recent_days)
    window = timedelta(days=window_days)
    last_seen: dict[tuple[str, str], datetime] = {}
    count = 0
    for ticket in sorted(tickets, key=lambda t: t.created_at):
        topics = _topics(ticket)
        if recent_start < ticket.created_at <= as_of:
            repeat = any(ticket.created_at - last_seen[topic] <= window for topic in topics if topic in last_seen)
            count += int(repeat) + ticket.reopened
        for topic in topics:
            last_seen[topic] = ticket.created_at
    return count
