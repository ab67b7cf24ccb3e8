"""The report statements' plans on a populated read model: ranges read the rollups' primary key,
the board reads ticket rows only through the open-ticket partial indexes and today's index ranges,
and nothing scans ticket_metrics whole. (Timings belong to `make bench`; this pins the shape.)"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

from analytics_svc.access import TicketFilter
from analytics_svc.kpis import repository as kpis_repository
from analytics_svc.kpis.service import age_edges, age_thresholds
from analytics_svc.reports import catalogue, repository

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)
TEAMS = [uuid.UUID(int=i + 1) for i in range(20)]


async def populate(conn) -> None:
    """A year of hourly rollups for 20 teams and 30 agents, 60,000 tickets (3 % open), then fresh statistics."""
    await conn.execute(
        "INSERT INTO metric_rollups (dim, bucket, dim_value, created, first_reply_n, first_reply_sum) "
        "SELECT 'team', $1::timestamptz - h * interval '1 hour', t::text, 3, 2, 40 "
        "FROM generate_series(0, 24 * 365) AS h, unnest($2::uuid[]) AS t", NOW, TEAMS)
    await conn.execute(  # other dimensions share the table, as in production
        "INSERT INTO metric_rollups (dim, bucket, dim_value, created) "
        "SELECT 'agent', $1::timestamptz - h * interval '1 hour', 'agent-' || a, 1 "
        "FROM generate_series(0, 24 * 365) AS h, generate_series(1, 30) AS a", NOW)
    await conn.execute(
        "INSERT INTO metric_rollups (dim, bucket, dim_value, created) "
        "SELECT 'all', $1::timestamptz - h * interval '1 hour', '', 60 FROM generate_series(0, 24 * 365) AS h", NOW)
    await conn.execute(
        "INSERT INTO ticket_metrics (ticket_id, created_at, team_id, assignee_id, resolved, resolved_at, "
        "first_reply_at, first_reply_minutes, full_resolution_minutes, event_at, customer_id) "
        "SELECT gen_random_uuid(), $1::timestamptz - i * interval '9 minutes', ($2::uuid[])[1 + i % 20], "
        "'agent-' || (i % 200), i % 33 <> 0, CASE WHEN i % 33 <> 0 THEN $1::timestamptz - i * interval '8 minutes' END, "
        "$1::timestamptz - i * interval '8 minutes', 30, 60, $1::timestamptz - i * interval '8 minutes', "
        "CASE WHEN i % 40 <> 0 THEN gen_random_uuid() END "
        "FROM generate_series(1, 60000) AS i", NOW, TEAMS)
    await conn.execute(  # the open tickets' backlog rows, as the fold keeps them
        "INSERT INTO open_rollups (dim, bucket, dim_value, open, unassigned) "
        "SELECT d.dim, date_trunc('hour', m.created_at, 'UTC'), d.value, count(*), count(*) FILTER (WHERE m.assignee_id IS NULL) "
        "FROM ticket_metrics m, LATERAL (VALUES ('all', ''), ('team', m.team_id::text), ('agent', m.assignee_id)) "
        "AS d(dim, value) WHERE NOT m.resolved AND NOT m.merged AND d.value IS NOT NULL GROUP BY 1, 2, 3")
    await conn.execute(
        "INSERT INTO metric_rollups_daily (dim, bucket, dim_value, created) "
        "SELECT 'agent', date_trunc('day', $1::timestamptz, 'UTC') - d * interval '1 day', 'agent-' || a, 24 "
        "FROM generate_series(0, 365) AS d, generate_series(1, 30) AS a", NOW)
    await conn.execute("ANALYZE metric_rollups; ANALYZE metric_rollups_daily; ANALYZE ticket_metrics; "
                       "ANALYZE sla_targets; ANALYZE open_rollups")


async def test_report_plans_use_the_keys(raw):
    await populate(raw)
    metric = catalogue.METRICS["first_reply_minutes"]
    thresholds = [NOW - timedelta(days=90 - d) for d in range(90)]
    trend = repository._rollup_statement(columns=list(metric.columns), hist_column=None, split="top",
                                         n_column=metric.n_column)
    plan = await repository.explain(raw, trend, "team", NOW - timedelta(days=90), NOW, None, thresholds, NOW, NOW, 10)
    assert "pk_metric_rollups" in plan, plan
    assert "Seq Scan" not in plan, plan
    # a leaderboard's whole UTC days come from the daily rollups' key, its edge hours from the hourly one
    board = repository._rollup_statement(columns=list(metric.columns), hist_column=None, split="each",
                                         n_column=metric.n_column)
    start = NOW - timedelta(days=30)
    first_day, end_day = repository.daily_span(start, NOW, None)
    assert (first_day, end_day) == (start.replace(hour=0) + timedelta(days=1), NOW.replace(hour=0))
    plan = await repository.explain(raw, board, "agent", start, NOW, None, None, first_day, end_day)
    assert "pk_metric_rollups_daily" in plan and re.search(r"pk_metric_rollups\b(?!_daily)", plan), plan
    assert "Seq Scan" not in plan, plan

    # the open backlog, overdue and at risk are summed from open_rollups' key; only the hours
    # straddling an age bound, and the current hour of the SLA clocks, are counted on open-ticket
    # partial indexes; sla_targets is not read at all
    everyone = kpis_repository._board_statement("true", 11)
    day = NOW.replace(hour=0)
    args = ["all", [""], day, day + timedelta(days=1), day, day + timedelta(days=1), NOW, age_thresholds(NOW),
            age_edges(age_thresholds(NOW)), NOW.replace(minute=0, second=0, microsecond=0)]
    plan = await repository.explain(raw, everyone, *args)
    assert "Seq Scan on ticket_metrics" not in plan, plan
    assert "open_rollups" in plan and "sla_targets" not in plan, plan
    assert "ix_ticket_metrics_open_created" in plan and "ix_ticket_metrics_first_reply_at" in plan, plan
    assert "ix_ticket_metrics_open_overdue" in plan and "ix_ticket_metrics_open_at_risk" in plan, plan

    scoped_sql, scoped_args = repository.ticket_scope_sql(TicketFilter(tuple(TEAMS[:2]), None), "m", 11)
    plan = await repository.explain(raw, kpis_repository._board_statement(scoped_sql, 11),
                                    "team", [str(t) for t in TEAMS[:2]], *args[2:], *scoped_args)
    assert "Seq Scan on ticket_metrics" not in plan, plan
    assert "ix_ticket_metrics_open_" in plan and "open_rollups" in plan and "sla_targets" not in plan, plan

    at_risk_sql, overdue_sql, extra = repository.at_risk_statements(TicketFilter(None, None))
    for statement in (at_risk_sql, overdue_sql):
        plan = await repository.explain(raw, statement, NOW, 50, *extra)
        assert "Seq Scan on ticket_metrics" not in plan, plan
