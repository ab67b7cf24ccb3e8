"""RFM values and quintile scores: pure functions over plain data, no I/O.

Values
------
For one customer, as of an instant ``as_of``, over the orders that count (the caller passes
only those, e.g. paid or completed, not cancelled or refunded):

- **recency** ``R``: whole days since the last order, ``floor((as_of - last) / 1 day)``, at
  least 0 (an order stamped in the future counts as today);
- **frequency** ``F``: the number of orders in the window ``(as_of - window_days, ∞)``;
- **monetary** ``M``: their amounts summed in one *base currency*, each converted with a
  given rate (base units per one unit of the order's currency), rounded to 0.01 at the end.

Multiple currencies are converted rather than scored per currency: a customer who pays in
two currencies is one customer, and quintiles per currency would split a small base into
populations too small to rank. An order in a currency without a rate still counts for R and
F; its amount is left out of M and the currency is reported, so the caller can log it.

A customer without any order has no RFM values and no scores (segment "none"), rather than
the worst scores: nothing is known about them as a buyer.

Quintile scores
---------------
A score says where a value stands in the customer base: with ``n`` customers and ``w(v)``
the number of them whose value is strictly *worse* than ``v`` (a smaller F or M, a larger
R),

    score(v) = 1 + |{k in 1..4 : w(v) >= ceil(k * n / 5)}|

so 5 means "better than at least 80 % of the base". Equal values always get equal scores:
a tie takes the lowest quintile it reaches (70 % of customers with one order all score 1,
not some 1 and some 2 as ``ntile`` would deal them out). A base where everyone is equal
scores 1 throughout; nobody is better than anybody.

The same score comes from four cut points: ``c_k`` is the value at rank ``ceil(k * n / 5)``
when the base is sorted worst first, which is exactly what PostgreSQL's
``percentile_disc(k / 5.0) WITHIN GROUP (ORDER BY value)`` returns (``ORDER BY recency_days
DESC`` for R), and

    score(v) = 1 + |{k : v is strictly better than c_k}|

because ``v`` is better than the value at rank ``r`` exactly when at least ``r`` values are
worse than ``v``. So the nightly job computes the cut points over everyone in one SQL
aggregate and the incremental path (one customer's new order) scores the new values against
the stored cut points with :func:`quintile_score`: both are the one function of (cut points,
value), and they agree by construction until the next nightly run moves the cut points.
:func:`quintile_boundaries` is the SQL-independent reference of that aggregate (sort, pick
ranks) that tests hold the SQL to. PostgreSQL computes the rank as ``ceil(fraction * n)`` in
double precision; for the fractions 0.2, 0.4, 0.6 and 0.8 that equals the integer
``ceil(k * n / 5)`` used here (checked for every n up to 10,000,000).

A base smaller than ``min_population`` (default 5: fewer customers cannot fill five
quintiles) gets no cut points and nobody gets scores: ranking three customers into
quintiles would call a customer who ordered yesterday the least recent.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from enum import StrEnum
from typing import Any, Protocol, TypeVar

from customer_svc.insights.settings import QUINTILES

#: the fractions of the four cut points, as they appear in the SQL aggregate
CUT_FRACTIONS = (0.2, 0.4, 0.6, 0.8)
MONETARY_QUANTUM = Decimal("0.01")
_ONE_DAY = timedelta(days=1)


class Direction(StrEnum):
    """Which way a value improves: F and M grow, R (days since the last order) shrinks."""

    HIGHER_IS_BETTER = "higher_is_better"
    LOWER_IS_BETTER = "lower_is_better"


class _Ordered(Protocol):
    def __lt__(self, other: Any, /) -> bool: ...


V = TypeVar("V", bound=_Ordered)


@dataclass(frozen=True, slots=True)
class QuintileBoundaries:
    """The four cut points of one metric over one customer base (what the nightly run stores).

    ``cuts`` run from the worst value's side to the best's: ascending for
    ``HIGHER_IS_BETTER``, descending for ``LOWER_IS_BETTER``."""

    direction: Direction
    cuts: tuple[Any, Any, Any, Any]
    population: int

    def __post_init__(self) -> None:
        if len(self.cuts) != QUINTILES - 1:
            raise ValueError("four cut points are needed")
        ordered = self.cuts if self.direction is Direction.HIGHER_IS_BETTER else self.cuts[::-1]
        if any(ordered[i + 1] < ordered[i] for i in range(len(ordered) - 1)):
            raise ValueError(f"cut points must run from worst to best ({self.direction.value})")
        if self.population < QUINTILES:
            raise ValueError(f"cut points need at least {QUINTILES} values")


def cut_ranks(population: int) -> tuple[int, int, int, int]:
    """1-based ranks (worst first) of the four cut points: ``ceil(k * n / 5)``."""
    ranks = tuple((k * population + QUINTILES - 1) // QUINTILES for k in range(1, QUINTILES))
    return ranks  # type: ignore[return-value]


def quintile_boundaries(values: Iterable[V], *, direction: Direction,
                        min_population: int = QUINTILES) -> QuintileBoundaries | None:
    """Reference implementation of the nightly SQL aggregate (``percentile_disc`` at 0.2, 0.4,
    0.6, 0.8, ordered worst first); None for a base smaller than ``min_population``.

    O(n log n) in Python: tests and small bases use it; the service computes the same in SQL."""
    ordered = sorted(values, reverse=direction is Direction.LOWER_IS_BETTER)
    if len(ordered) < max(min_population, QUINTILES):
        return None
    cuts = tuple(ordered[rank - 1] for rank in cut_ranks(len(ordered)))
    return QuintileBoundaries(direction=direction, cuts=cuts, population=len(ordered))  # type: ignore[arg-type]


def quintile_score(value: Any, boundaries: QuintileBoundaries) -> int:
    """1-5: one plus the number of cut points ``value`` is strictly better than.

    The one scoring function of both paths: the incremental one (a customer's new order,
    scored against the stored cut points) and the nightly one (everyone, against new cut
    points)."""
    c1, c2, c3, c4 = boundaries.cuts
    if boundaries.direction is Direction.HIGHER_IS_BETTER:
        return 1 + (value > c1) + (value > c2) + (value > c3) + (value > c4)
    return 1 + (value < c1) + (value < c2) + (value < c3) + (value < c4)


def quintile_scores(values: Iterable[Any], boundaries: QuintileBoundaries) -> Iterator[int]:
    """The nightly pass: every value scored against the same cut points."""
    return (quintile_score(value, boundaries) for value in values)


# --------------------------------------------------------------------------- values


@dataclass(frozen=True, slots=True)
class OrderFact:
    """One order that counts for RFM (the caller filters out cancelled and refunded ones)."""

    ordered_at: datetime
    amount: Decimal
    currency: str


@dataclass(frozen=True, slots=True)
class RfmValues:
    recency_days: int
    frequency: int
    monetary: Decimal
    unconverted_currencies: frozenset[str] = frozenset()
    """Currencies of window orders left out of M because no rate was given."""


def recency_days(last_order_at: datetime, *, as_of: datetime) -> int:
    """Whole days elapsed since the last order (24-hour periods, zone-independent), never negative."""
    return max(0, (as_of - last_order_at) // _ONE_DAY)


def in_base_currency(amount: Decimal, currency: str, *, base_currency: str,
                     rates: Mapping[str, Decimal]) -> Decimal | None:
    """``amount`` in the base currency, or None when no rate is known for ``currency``."""
    if currency == base_currency:
        return amount
    rate = rates.get(currency)
    return None if rate is None else amount * rate


def rfm_values(orders: Iterable[OrderFact], *, as_of: datetime, window_days: int,
               base_currency: str, rates: Mapping[str, Decimal]) -> RfmValues | None:
    """R, F and M of one customer as of ``as_of``; None without any order (no RFM at all)."""
    window_start = as_of - timedelta(days=window_days)
    last: datetime | None = None
    frequency = 0
    monetary = Decimal(0)
    missing: set[str] = set()
    for order in orders:
        if last is None or order.ordered_at > last:
            last = order.ordered_at
        if order.ordered_at <= window_start:
            continue
        frequency += 1
        converted = in_base_currency(order.amount, order.currency, base_currency=base_currency, rates=rates)
        if converted is None:
            missing.add(order.currency)
        else:
            monetary += converted
    if last is None:
        return None
    return RfmValues(recency_days=recency_days(last, as_of=as_of), frequency=frequency,
                     monetary=monetary.quantize(MONETARY_QUANTUM, rounding=ROUND_HALF_EVEN),
                     unconverted_currencies=frozenset(missing))


# --------------------------------------------------------------------------- the three metrics


@dataclass(frozen=True, slots=True)
class RfmBoundaries:
    """The cut points of R, F and M over one customer base, as the nightly run stores them."""

    recency: QuintileBoundaries
    frequency: QuintileBoundaries
    monetary: QuintileBoundaries


@dataclass(frozen=True, slots=True)
class RfmScores:
    r: int
    f: int
    m: int


def rfm_boundaries(population: Sequence[RfmValues], *, min_population: int = QUINTILES) -> RfmBoundaries | None:
    """Reference cut points of all three metrics; None for a base too small to rank."""
    recency = quintile_boundaries((v.recency_days for v in population), direction=Direction.LOWER_IS_BETTER,
                                  min_population=min_population)
    if recency is None:
        return None
    frequency = quintile_boundaries((v.frequency for v in population), direction=Direction.HIGHER_IS_BETTER,
                                    min_population=min_population)
    monetary = quintile_boundaries((v.monetary for v in population), direction=Direction.HIGHER_IS_BETTER,
                                   min_population=min_population)
    assert frequency is not None and monetary is not None  # same population size
    return RfmBoundaries(recency=recency, frequency=frequency, monetary=monetary)


def rfm_scores(values: RfmValues, boundaries: RfmBoundaries) -> RfmScores:
    """One customer's three scores against stored cut points (both the incremental and the nightly path)."""
    return RfmScores(r=quintile_score(values.recency_days, boundaries.recency),
                     f=quintile_score(values.frequency, boundaries.frequency),
                     m=quintile_score(values.monetary, boundaries.monetary))
