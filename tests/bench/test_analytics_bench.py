"""The analytics benchmarks' own rules (bench/analytics_freshness.py, bench/analytics_scale.py):
when a sample counts as reflected by the board, when the phase fails, and that the generated
rollup SQL reads every measure from the scan's own columns. Pure: no database, no stack."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from bench.analytics_freshness import FreshnessResult, Sample, kpis_reflect
from bench.analytics_scale import BRANCHES, HIST_BRANCHES, HELPERS, hist_pass_sql, pass_sql
from analytics_svc.readmodel.histogram import HIST_EDGES_MINUTES

CREATED = datetime(2026, 11, 30, 8, 0, 0, 500_000, tzinfo=UTC)


def sample(needed: int = 120) -> Sample:
    return Sample(ticket_id="t", sent=0.0, accepted=0.0, created_at=CREATED, needed=needed)


@pytest.mark.parametrize(
    ("as_of", "count", "reflected"),
    [
        ("2026-11-30T08:00:00.500000Z", 120, True),  # exactly at its creation, exactly its count
        ("2026-11-30T16:00:01+08:00", 500, True),  # another offset, later, more tickets
        ("2026-11-30T08:00:00.499999+00:00", 500, False),  # the board has not reached its instant
        ("2026-11-30T09:00:00+00:00", 119, False),  # newer events folded, but not every ticket up to it
    ],
)
def test_a_sample_is_reflected_only_when_the_board_has_its_instant_and_its_count(as_of, count, reflected):
    body = {"as_of": as_of, "tickets_created_today": count}
    assert kpis_reflect(body, sample()) is reflected


def test_the_phase_fails_on_a_slow_p99_a_timeout_an_error_or_no_sample():
    clean = FreshnessResult(seconds=[0.2] * 99 + [1.9], accepted_seconds=[0.1] * 99 + [1.8])
    assert clean.problems() == []
    slow = FreshnessResult(seconds=[0.2] * 90 + [2.6] * 10, accepted_seconds=[0.1] * 90 + [2.5] * 10)
    assert slow.problems() == ["p99 from posted 2.50 s > 2 s"]
    # a slow intake (the POST itself) is the intake's figure: judged from the 201
    assert FreshnessResult(seconds=[3.0] * 100, accepted_seconds=[0.5] * 100).problems() == []
    assert "1 samples not reflected in time" in FreshnessResult(seconds=[0.2], timeouts=1).problems()
    assert "request errors" in FreshnessResult(seconds=[0.2], post_errors={"503": 1}).problems()
    assert FreshnessResult().problems() == ["no sample reflected"]
    assert FreshnessResult(seconds=[0.1], failure="boom").problems() == ["sampler failed: boom"]


def test_quantiles_interpolate_between_ranks():
    result = FreshnessResult(seconds=[4.0, 1.0, 3.0, 2.0])
    assert result.quantile(0.5) == 2.5
    assert result.quantile(1.0) == 4.0
    keys = result.keys(rate=5, poll_hz=20)
    assert keys["freshness_samples"] == 4 and keys["freshness_max_s"] == 4.0


@pytest.mark.parametrize("tag", [False, True])
def test_every_scan_reads_its_measures_from_its_own_source_columns(tag):
    # the aggregates sit above a subquery that exposes m_* columns: a leftover "t." reference in
    # the aggregate part would read a column the subquery does not have (or re-evaluate a row)
    for i in range(len(BRANCHES)):
        sql = pass_sql(i, tag=tag)
        aggregate_part = sql.split(" FROM (SELECT date_trunc")[0]
        assert not re.search(r"\bt\.\w+", aggregate_part), aggregate_part
        assert ("GROUPING SETS" in sql) is not tag
    for i in range(len(HIST_BRANCHES)):
        assert hist_pass_sql(i, tag=tag).count("FILTER (WHERE bin = ") == len(HIST_EDGES_MINUTES)


def test_the_sql_bins_use_the_read_models_edges():
    edges = re.search(r"ARRAY\[([^\]]*)\]::float8\[\]", HELPERS).group(1)
    assert [float(e) for e in edges.split(",")] == [float(e) for e in HIST_EDGES_MINUTES]


@pytest.fixture
def analytics_dsn(infra):
    from bench.run import raw_dsn

    return raw_dsn(infra.new_database("analytics_svc"))


async def test_the_bulk_load_adds_up_and_the_check_catches_a_rollup_that_does_not(analytics_dsn):
    import asyncpg

    from analytics_svc.readmodel.histogram import hist_bin
    from bench.analytics_scale import bulk_load, consistency

    now = datetime.now(UTC).replace(microsecond=0)
    _seconds, steps = await bulk_load(analytics_dsn, 3000, now=now, jobs=2)
    assert {"ticket_metrics", "rollup_scans", "rollup_finals", "indexes"} <= steps.keys()
    assert await consistency(analytics_dsn, now=now) == []
    conn = await asyncpg.connect(analytics_dsn)
    try:
        # every dimension the fold writes is there, tags in Chinese too, and the SQL bins are
        # the read model's (hist_bin) for the first reply times actually loaded
        dims = {r["dim"] for r in await conn.fetch("SELECT DISTINCT dim FROM metric_rollups")}
        assert dims == {"all", "team", "agent", "channel", "type", "priority", "tier", "tag", "brand", "organization"}
        assert await conn.fetchval("SELECT count(*) FROM metric_rollups WHERE dim = 'tag' AND dim_value = '退款'") > 0
        hours = await conn.fetch(
            "SELECT date_trunc('hour', first_reply_at) AS h, array_agg(first_reply_minutes) AS v FROM ticket_metrics "
            "WHERE first_reply_at IS NOT NULL GROUP BY 1 ORDER BY 1 LIMIT 20")
        for row in hours:
            expected = [0] * len(HIST_EDGES_MINUTES)
            for minutes in row["v"]:
                expected[hist_bin(minutes)] += 1
            stored = await conn.fetchval(
                "SELECT first_reply_hist FROM metric_rollups WHERE dim = 'all' AND dim_value = '' AND bucket = $1",
                row["h"])
            assert list(stored) == expected
        assert await conn.fetchval("SELECT count(*) FROM pg_proc WHERE proname LIKE 'bench\\_%'") == 0
        # the daily rows: every dimension, and a day's first-reply histogram is its hours' bin by bin
        daily_dims = {r["dim"] for r in await conn.fetch("SELECT DISTINCT dim FROM metric_rollups_daily")}
        assert daily_dims == dims
        day = await conn.fetchval("SELECT max(bucket) FROM metric_rollups_daily WHERE dim = 'all' "
                                  "AND first_reply_n > 0")
        hourly = await conn.fetch("SELECT first_reply_hist FROM metric_rollups WHERE dim = 'all' AND bucket >= $1 "
                                  "AND bucket < $1 + interval '1 day' AND first_reply_hist IS NOT NULL", day)
        summed = [sum(col) for col in zip(*(r["first_reply_hist"] for r in hourly))]
        assert summed and list(await conn.fetchval(
            "SELECT first_reply_hist FROM metric_rollups_daily WHERE dim = 'all' AND bucket = $1", day)) == summed
        # linked / with_sla: tickets with a customer, tickets with an SLA target
        assert await conn.fetchval("SELECT sum(linked) FROM metric_rollups_daily WHERE dim = 'all'") == \
            await conn.fetchval("SELECT count(customer_id) FROM ticket_metrics")
        assert await conn.fetchval("SELECT sum(with_sla) FROM metric_rollups WHERE dim = 'all'") == \
            await conn.fetchval("SELECT count(DISTINCT ticket_id) FROM sla_targets") > 0
        # the open backlog: every dimension has open_rollups rows (tags in Chinese too)
        open_dims = {r["dim"] for r in await conn.fetch("SELECT DISTINCT dim FROM open_rollups")}
        assert open_dims == dims
        assert await conn.fetchval("SELECT sum(unassigned) FROM open_rollups WHERE dim = 'all'") == \
            await conn.fetchval("SELECT count(*) FROM ticket_metrics WHERE NOT resolved AND NOT merged "
                                "AND assignee_id IS NULL")
        # overdue / at risk on the loaded board: the open tickets with such a running target, each once
        from analytics_svc.access import Selection
        from analytics_svc.kpis import service as kpis_service
        from analytics_svc.reports.repository import AT_RISK_TARGET, OPEN_TICKET, OVERDUE_TARGET

        overdue = f"EXISTS (SELECT 1 FROM sla_targets t WHERE t.ticket_id = m.ticket_id AND {OVERDUE_TARGET})"
        at_risk = f"EXISTS (SELECT 1 FROM sla_targets t WHERE t.ticket_id = m.ticket_id AND {AT_RISK_TARGET})"
        for at in (now, now + timedelta(hours=3, minutes=17)):
            expected = await conn.fetchrow(
                f"SELECT count(*) FILTER (WHERE {overdue}) AS overdue, count(*) FILTER (WHERE {at_risk} "
                f"AND NOT {overdue}) AS at_risk FROM ticket_metrics m WHERE {OPEN_TICKET}", at)
            board = await kpis_service.kpis(conn, now=at, tz_name="UTC", selection=Selection("all", ("",)))
            assert (board["overdue_tickets"], board["at_risk_tickets"]) == tuple(expected) and expected[0] > 0
        # one created ticket too many in one hour of one team, one linked too few in one day of
        # the daily table, an open ticket moved to another hour: the check must say so
        await conn.execute(
            "UPDATE metric_rollups SET created = created + 1 WHERE (dim, bucket, dim_value) = "
            "(SELECT dim, bucket, dim_value FROM metric_rollups WHERE dim = 'team' AND created > 0 LIMIT 1)")
        await conn.execute(
            "UPDATE metric_rollups_daily SET linked = linked - 1 WHERE (dim, bucket, dim_value) = "
            "(SELECT dim, bucket, dim_value FROM metric_rollups_daily WHERE dim = 'all' AND linked > 0 LIMIT 1)")
        await conn.execute(
            "UPDATE open_rollups SET bucket = bucket - interval '1 hour' WHERE (dim, bucket, dim_value) = "
            "(SELECT dim, bucket, dim_value FROM open_rollups WHERE dim = 'all' AND open > 0 "
            "AND bucket - interval '1 hour' NOT IN (SELECT bucket FROM open_rollups WHERE dim = 'all') LIMIT 1)")
    finally:
        await conn.close()
    problems = await consistency(analytics_dsn, now=now)
    assert any(p.startswith("open_rollups:") for p in problems), problems
    assert any(p.startswith("team:") for p in problems), problems
    assert any(p.startswith("linked:") for p in problems), problems
