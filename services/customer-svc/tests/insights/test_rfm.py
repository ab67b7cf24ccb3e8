"""RFM values and quintile scores, cases worked out by hand (the arithmetic is in the comments)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from customer_svc.insights.rfm import (
    Direction,
    OrderFact,
    QuintileBoundaries,
    RfmValues,
    cut_ranks,
    quintile_boundaries,
    quintile_score,
    quintile_scores,
    recency_days,
    rfm_boundaries,
    rfm_scores,
    rfm_values,
)

HIGHER = Direction.HIGHER_IS_BETTER
LOWER = Direction.LOWER_IS_BETTER


@pytest.mark.parametrize(("population", "ranks"), [
    (5, (1, 2, 3, 4)),        # ceil(5k/5) = k
    (7, (2, 3, 5, 6)),        # ceil(1.4)=2, ceil(2.8)=3, ceil(4.2)=5, ceil(5.6)=6
    (8, (2, 4, 5, 7)),        # ceil(1.6)=2, ceil(3.2)=4, ceil(4.8)=5, ceil(6.4)=7
    (10, (2, 4, 6, 8)),
    (1_000_000, (200_000, 400_000, 600_000, 800_000)),
    (1_000_001, (200_001, 400_001, 600_001, 800_001)),  # ceil(200000.2) etc.
])
def test_cut_ranks(population, ranks):
    assert cut_ranks(population) == ranks


# (values, direction, cuts, scores of the values in order)
CASES = [
    pytest.param(
        # n=10, ranks 2,4,6,8 -> cuts 200,400,600,800; a value scores 1 + the cuts it exceeds
        [100, 200, 300, 400, 500, 600, 700, 800, 900, 1000], HIGHER, (200, 400, 600, 800),
        [1, 1, 2, 2, 3, 3, 4, 4, 5, 5], id="ten distinct values: two per quintile"),
    pytest.param(
        # n=7, ranks 2,3,5,6 -> cuts 2,3,5,6; 4 exceeds 2 and 3 -> 3
        [1, 2, 3, 4, 5, 6, 7], HIGHER, (2, 3, 5, 6), [1, 1, 2, 3, 3, 4, 5], id="seven values"),
    pytest.param(
        # sorted 1x7, 2, 2, 5; ranks 2,4,6,8 -> cuts 1,1,1,2; 2 exceeds three cuts -> 4, 5 all four -> 5
        [1, 1, 1, 1, 1, 1, 1, 2, 2, 5], HIGHER, (1, 1, 1, 2), [1] * 7 + [4, 4, 5],
        id="ties take the lowest quintile they reach"),
    pytest.param([3] * 6, HIGHER, (3, 3, 3, 3), [1] * 6, id="all equal: nobody better than anybody"),
    pytest.param(
        # recency, best = fewest days; worst first: 365,90,60,30,10,3,3,0; n=8, ranks 2,4,5,7
        # -> cuts 90,30,10,3; 0 is below all four -> 5; 3 below 90,30,10 -> 4; 60 below 90 -> 2
        [0, 3, 3, 10, 30, 60, 90, 365], LOWER, (90, 30, 10, 3), [5, 4, 4, 3, 2, 2, 1, 1],
        id="recency: the most recent scores 5"),
    pytest.param(
        [Decimal("0.01"), Decimal("9.99"), Decimal("10.00"), Decimal("10.01"), Decimal("99999999.99")], HIGHER,
        (Decimal("0.01"), Decimal("9.99"), Decimal("10.00"), Decimal("10.01")), [1, 2, 3, 4, 5],
        id="five decimals: one per quintile"),
]


@pytest.mark.parametrize(("values", "direction", "cuts", "scores"), CASES)
def test_boundaries_and_scores(values, direction, cuts, scores):
    boundaries = quintile_boundaries(values, direction=direction)
    assert boundaries == QuintileBoundaries(direction=direction, cuts=cuts, population=len(values))
    assert [quintile_score(v, boundaries) for v in values] == scores
    assert list(quintile_scores(values, boundaries)) == scores


@pytest.mark.parametrize(("new", "score"), [
    (50, 1), (200, 1), (201, 2), (450, 3), (800, 4), (800.5, 5), (10**9, 5),
])
def test_a_new_value_against_stored_cuts(new, score):
    """The incremental path: one customer's new value, the stored cut points 200,400,600,800."""
    boundaries = QuintileBoundaries(direction=HIGHER, cuts=(200, 400, 600, 800), population=10)
    assert quintile_score(new, boundaries) == score


def test_a_new_value_against_a_base_of_equals():
    boundaries = quintile_boundaries([3] * 6, direction=HIGHER)
    assert [quintile_score(v, boundaries) for v in (2, 3, 4)] == [1, 1, 5]


@pytest.mark.parametrize(("count", "min_population", "ranked"), [
    (0, 5, False), (1, 5, False), (4, 5, False), (5, 5, True), (9, 10, False), (10, 10, True),
])
def test_small_populations_are_not_ranked(count, min_population, ranked):
    boundaries = quintile_boundaries(range(count), direction=HIGHER, min_population=min_population)
    assert (boundaries is not None) is ranked


def test_min_population_below_five_still_needs_five():
    assert quintile_boundaries(range(4), direction=HIGHER, min_population=1) is None


@pytest.mark.parametrize("cuts", [(1, 2, 3), (4, 3, 2, 1)])
def test_boundaries_refuse_unordered_or_missing_cuts(cuts):
    with pytest.raises(ValueError):
        QuintileBoundaries(direction=HIGHER, cuts=cuts, population=10)


def test_boundaries_refuse_a_population_below_five():
    with pytest.raises(ValueError):
        QuintileBoundaries(direction=LOWER, cuts=(4, 3, 2, 1), population=4)


AS_OF = datetime(2026, 6, 30, 12, 0, tzinfo=UTC)
RATES = {"USD": Decimal("7.1"), "JPY": Decimal("0.047")}


def test_rfm_values_of_one_customer():
    orders = [
        OrderFact(datetime(2026, 6, 20, 8, 0, tzinfo=UTC), Decimal("100"), "CNY"),
        OrderFact(datetime(2026, 3, 1, tzinfo=UTC), Decimal("50"), "USD"),               # 50 x 7.1 = 355
        OrderFact(datetime(2025, 12, 24, tzinfo=UTC), Decimal("1000"), "JPY"),           # 1000 x 0.047 = 47
        OrderFact(datetime(2025, 7, 1, 12, 0, 1, tzinfo=UTC), Decimal("10"), "EUR"),     # no rate: F only
        OrderFact(datetime(2025, 6, 30, 12, 0, tzinfo=UTC), Decimal("999"), "CNY"),      # the window's open start
    ]
    # R: 2026-06-30 12:00 - 2026-06-20 08:00 = 10 days 4 hours -> 10
    # F: the four orders after 2025-06-30 12:00; M: 100 + 355 + 47 = 502.00
    assert rfm_values(orders, as_of=AS_OF, window_days=365, base_currency="CNY", rates=RATES) == RfmValues(
        recency_days=10, frequency=4, monetary=Decimal("502.00"), unconverted_currencies=frozenset({"EUR"}))


def test_rfm_values_round_the_converted_sum_once():
    orders = [OrderFact(datetime(2026, 6, 1, tzinfo=UTC), Decimal("3.333"), "USD")] * 2
    # 2 x 3.333 x 7.1 = 47.3286 -> 47.33 (rounding each order first would give 2 x 23.66 = 47.32)
    values = rfm_values(orders, as_of=AS_OF, window_days=365, base_currency="CNY", rates=RATES)
    assert values is not None and values.monetary == Decimal("47.33")


def test_rfm_values_outside_the_window_keep_recency():
    orders = [OrderFact(datetime(2024, 6, 30, 12, 0, tzinfo=UTC), Decimal("80"), "CNY")]
    # 2024-06-30 -> 2026-06-30 = 365 + 365 = 730 days (no 29 February in between)
    assert rfm_values(orders, as_of=AS_OF, window_days=365, base_currency="CNY", rates={}) == RfmValues(
        recency_days=730, frequency=0, monetary=Decimal("0.00"))


def test_no_orders_no_rfm():
    assert rfm_values([], as_of=AS_OF, window_days=365, base_currency="CNY", rates={}) is None


@pytest.mark.parametrize(("last", "days"), [
    (datetime(2026, 6, 30, 12, 0, tzinfo=UTC), 0),
    (datetime(2026, 6, 29, 12, 0, 1, tzinfo=UTC), 0),   # 23:59:59 ago
    (datetime(2026, 6, 29, 12, 0, tzinfo=UTC), 1),
    (datetime(2026, 7, 3, tzinfo=UTC), 0),              # stamped in the future: today
])
def test_recency_days(last, days):
    assert recency_days(last, as_of=AS_OF) == days


def test_three_metrics_over_a_base():
    base = [RfmValues(recency_days=d, frequency=f, monetary=Decimal(m))
            for d, f, m in [(1, 9, 900), (5, 1, 50), (40, 3, 300), (200, 1, 20), (2, 5, 5000)]]
    # n=5: the cut points are the four worst values of each metric
    # R worst first 200,40,5,2,1; F 1,1,3,5,9; M 20,50,300,900,5000
    boundaries = rfm_boundaries(base)
    assert boundaries is not None
    assert boundaries.recency.cuts == (200, 40, 5, 2)
    assert boundaries.frequency.cuts == (1, 1, 3, 5)
    assert boundaries.monetary.cuts == (20, 50, 300, 900)
    scores = [rfm_scores(v, boundaries) for v in base]
    # (1 day, 9, 900): R below 200,40,5,2 -> 5; F above 1,1,3,5 -> 5; M above 20,50,300 -> 4
    assert [(s.r, s.f, s.m) for s in scores] == [(5, 5, 4), (3, 1, 2), (2, 3, 3), (1, 1, 1), (4, 4, 5)]
    assert rfm_boundaries(base[:4]) is None
