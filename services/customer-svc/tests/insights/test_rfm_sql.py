"""The nightly cut points as PostgreSQL computes them agree with the Python reference.

This holds the claim of docs/customers.md ("the boundaries are one SQL aggregate") to a real
PostgreSQL: ``percentile_disc`` ranks in double precision, the reference in integers, and the
two must pick the same values, ties and small populations included. The SQL here is the
documented shape; the service's repository will hold its own copy against its own tables."""

from __future__ import annotations

import random
from decimal import Decimal

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from customer_svc.insights.rfm import Direction, QuintileBoundaries, quintile_boundaries, quintile_score

CUTS_SQL = """
SELECT percentile_disc(ARRAY[0.2, 0.4, 0.6, 0.8]) WITHIN GROUP (ORDER BY v) AS higher_is_better,
       percentile_disc(ARRAY[0.2, 0.4, 0.6, 0.8]) WITHIN GROUP (ORDER BY v DESC) AS lower_is_better,
       count(*) AS population
  FROM unnest($1::numeric[]) AS t(v)
"""
SCORE_SQL = """
SELECT 1 + (v > c[1])::int + (v > c[2])::int + (v > c[3])::int + (v > c[4])::int AS up,
       1 + (v < d[1])::int + (v < d[2])::int + (v < d[3])::int + (v < d[4])::int AS down
  FROM unnest($1::numeric[]) WITH ORDINALITY AS t(v, i), (SELECT $2::numeric[] AS c, $3::numeric[] AS d) AS cuts
 ORDER BY i
"""


def populations() -> list[list[Decimal]]:
    rng = random.Random(20261130)
    found: list[list[Decimal]] = [
        [Decimal(7)] * 5,
        [Decimal(v) for v in range(5)],
        [Decimal(1)] * 70 + [Decimal(2)] * 20 + [Decimal(9)] * 10,
    ]
    for size in [*range(5, 64), 99, 100, 101, 997, 10_007]:
        spread = rng.choice([3, 20, 10**6])
        found.append([Decimal(rng.randint(0, spread)) / rng.choice([1, 100]) for _ in range(size)])
    return found


@pytest.fixture
async def conn(infra):
    dsn = make_url(f"{infra.db_base}/postgres").set(drivername="postgresql").render_as_string(hide_password=False)
    connection = await asyncpg.connect(dsn)
    yield connection
    await connection.close()


async def test_percentile_disc_picks_the_reference_cut_points(conn):
    for population in populations():
        row = await conn.fetchrow(CUTS_SQL, population)
        for direction in Direction:
            reference = quintile_boundaries(population, direction=direction)
            assert reference is not None
            assert tuple(row[direction.value]) == reference.cuts, (len(population), direction)
        assert row["population"] == len(population)


async def test_the_sql_score_is_quintile_score(conn):
    for population in populations()[:20]:
        up = quintile_boundaries(population, direction=Direction.HIGHER_IS_BETTER)
        down = quintile_boundaries(population, direction=Direction.LOWER_IS_BETTER)
        assert isinstance(up, QuintileBoundaries) and isinstance(down, QuintileBoundaries)
        probes = [*population, Decimal(-1), Decimal(10**7)]
        rows = await conn.fetch(SCORE_SQL, probes, list(up.cuts), list(down.cuts))
        assert [(r["up"], r["down"]) for r in rows] == [
            (quintile_score(v, up), quintile_score(v, down)) for v in probes]
