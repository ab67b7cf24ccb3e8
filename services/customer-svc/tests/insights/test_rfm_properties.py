"""Hypothesis properties of quintile scoring, held against a counting oracle that shares no code
with the implementation (no sorting, no cut points)."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from fractions import Fraction
from math import ceil

from hypothesis import given, settings
from hypothesis import strategies as st

from customer_svc.insights.rfm import Direction, quintile_boundaries, quintile_score, quintile_scores

FEW = settings(max_examples=300, deadline=None)
directions = st.sampled_from(list(Direction))
# narrow ranges make ties common, which is where quintile rules usually go wrong
small_ints = st.integers(min_value=0, max_value=12)
populations = st.lists(small_ints, min_size=5, max_size=60)
wide_populations = st.lists(st.integers(min_value=-(10**6), max_value=10**6), min_size=5, max_size=200)
money = st.decimals(min_value=0, max_value=10**9, places=2, allow_nan=False, allow_infinity=False)


def oracle(value, population, direction: Direction) -> int:
    """score = 1 + |{k in 1..4 : (customers strictly worse than value) >= ceil(k n / 5)}|."""
    n = len(population)
    if direction is Direction.HIGHER_IS_BETTER:
        worse = sum(1 for x in population if x < value)
    else:
        worse = sum(1 for x in population if x > value)
    return 1 + sum(1 for k in range(1, 5) if worse >= ceil(Fraction(k * n, 5)))


@FEW
@given(populations | wide_populations, directions, st.integers(min_value=-20, max_value=20))
def test_scores_match_the_counting_definition(population, direction, new):
    boundaries = quintile_boundaries(population, direction=direction)
    for value in [*population, new]:
        assert quintile_score(value, boundaries) == oracle(value, population, direction)


@FEW
@given(st.lists(money, min_size=5, max_size=40), money)
def test_decimal_amounts_match_the_counting_definition(population, new):
    boundaries = quintile_boundaries(population, direction=Direction.HIGHER_IS_BETTER)
    for value in [*population, new]:
        assert quintile_score(value, boundaries) == oracle(value, population, Direction.HIGHER_IS_BETTER)


@FEW
@given(populations, directions, st.integers(min_value=-(10**9), max_value=10**9))
def test_every_score_is_a_quintile(population, direction, value):
    boundaries = quintile_boundaries(population, direction=direction)
    assert 1 <= quintile_score(value, boundaries) <= 5


@FEW
@given(populations, directions, small_ints)
def test_incremental_and_full_recompute_agree_against_fixed_boundaries(population, direction, new):
    """A new customer scored alone against the stored cut points gets what the nightly pass gives
    it against the same cut points, and nobody else's score moves."""
    stored = quintile_boundaries(population, direction=direction)
    nightly = list(quintile_scores([*population, new], stored))
    assert nightly[-1] == quintile_score(new, stored)
    assert nightly[:-1] == list(quintile_scores(population, stored))


@FEW
@given(populations, small_ints, small_ints)
def test_a_better_value_never_scores_lower(population, a, b):
    low, high = sorted((a, b))
    up = quintile_boundaries(population, direction=Direction.HIGHER_IS_BETTER)
    down = quintile_boundaries(population, direction=Direction.LOWER_IS_BETTER)
    assert quintile_score(low, up) <= quintile_score(high, up)
    assert quintile_score(low, down) >= quintile_score(high, down)


@FEW
@given(populations, small_ints)
def test_recency_is_the_mirror_of_higher_is_better(population, value):
    days = quintile_boundaries(population, direction=Direction.LOWER_IS_BETTER)
    negated = quintile_boundaries([-x for x in population], direction=Direction.HIGHER_IS_BETTER)
    assert quintile_score(value, days) == quintile_score(-value, negated)


@FEW
@given(st.sets(st.integers(min_value=-(10**6), max_value=10**6), min_size=5, max_size=200), directions)
def test_distinct_values_fill_five_balanced_quintiles(values, direction):
    population = list(values)
    boundaries = quintile_boundaries(population, direction=direction)
    sizes = Counter(quintile_scores(population, boundaries))
    n = len(population)
    assert set(sizes) == {1, 2, 3, 4, 5}
    assert all(n // 5 <= size <= -(-n // 5) for size in sizes.values())


@FEW
@given(small_ints, st.integers(min_value=5, max_value=50), directions)
def test_a_base_of_equals_scores_one(value, count, direction):
    boundaries = quintile_boundaries([value] * count, direction=direction)
    assert set(quintile_scores([value] * count, boundaries)) == {1}


@FEW
@given(st.lists(small_ints, max_size=4), directions)
def test_fewer_than_five_are_not_ranked(population, direction):
    assert quintile_boundaries(population, direction=direction) is None


def test_decimal_and_int_compare_as_numbers():
    boundaries = quintile_boundaries([Decimal(v) for v in (10, 20, 30, 40, 50)], direction=Direction.HIGHER_IS_BETTER)
    assert quintile_score(45, boundaries) == 5
