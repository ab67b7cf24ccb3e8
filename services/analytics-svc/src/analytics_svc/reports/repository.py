"""The only place with SQL for the reports: reads of the rollups, sla_targets and ticket_metrics.

Plain SQL on a bare asyncpg connection, like the KPI repository. Ranges are read from the
rollups (``metric_rollups``, ``sla_rollups``) through their primary key ``(dim, bucket,
dim_value)``, never from the per-ticket rows: a 90-day daily trend of a team is 2,160 rows
whatever the ticket volume. Where a range's groups do not split UTC days (a leaderboard, a
breakdown; a trend whose buckets start at UTC midnights) its whole UTC days are read from
``metric_rollups_daily`` (the same sums per UTC day) and only the hours at its two ends from
``metric_rollups``: a 30-day agent leaderboard reads ~30 rows per agent instead of ~720. Hours are grouped into the caller's buckets in the database with
``width_bucket(bucket, thresholds)`` (a binary search per row over the buckets' starts, each
floored to its UTC hour), so only one row per bucket and series comes back.

Column names in these statements come from the metric catalogue (``reports.catalogue``), never
from a request; :func:`_checked` refuses anything else.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from ..access import TicketFilter
from . import catalogue

_ROLLUP_COLUMNS = frozenset(catalogue.SUM_COLUMNS)
_HIST_COLUMNS = frozenset({"first_reply_hist", "resolution_hist"})


def _checked(columns: Sequence[str]) -> list[str]:
    unknown = [c for c in columns if c not in _ROLLUP_COLUMNS]
    if unknown:
        raise ValueError(f"not a rollup column: {unknown}")
    return list(columns)


def _key_expression(split: str) -> str:
    """How rows are grouped by dimension value: not at all, by the top-N values (the rest is the
    NULL group, "other"), or by given keys (the previous period keeps the current period's keys)."""
    if split == "none":
        return "NULL::text"
    if split == "top":
        return "CASE WHEN r.dim_value IN (SELECT dim_value FROM top) THEN r.dim_value END"
    if split == "keys":
        return "CASE WHEN r.dim_value = ANY($8::text[]) THEN r.dim_value END"
    if split == "each":
        return "r.dim_value"
    raise ValueError(split)


def _rollup_statement(*, columns: list[str], hist_column: str | None, split: str, n_column: str) -> str:
    """Sums (or one histogram) per (bucket index, key) over the selected rollup rows.

    $1 dim, $2 first hour, $3 end hour (exclusive), $4 values (NULL: all), $5 bucket thresholds
    (NULL: one group), $6-$7 the whole UTC days read from the daily rollups (midnights; equal when
    none: every hour is read from the hourly ones), $8 top N or keys.
    """
    needed = sorted(set(columns) | {n_column})
    selected = ", ".join(needed + ([hist_column] if hist_column else []))
    # materialised only when read twice (the top-N pick and the grouping); otherwise inlined
    materialized = "MATERIALIZED " if split == "top" else "NOT MATERIALIZED "
    values = "($4::text[] IS NULL OR dim_value = ANY($4::text[]))"
    base = (
        f"WITH r AS {materialized}(SELECT bucket, dim_value, {selected} FROM metric_rollups "
        f"WHERE dim = $1 AND bucket >= $2 AND bucket < $6 AND {values} "
        f"UNION ALL SELECT bucket, dim_value, {selected} FROM metric_rollups "
        f"WHERE dim = $1 AND bucket >= greatest($7, $2) AND bucket < $3 AND {values} "
        f"UNION ALL SELECT bucket, dim_value, {selected} FROM metric_rollups_daily "
        f"WHERE dim = $1 AND bucket >= $6 AND bucket < $7 AND {values})"
    )
    if split == "top":
        base += (f", top AS (SELECT dim_value FROM r GROUP BY dim_value ORDER BY sum({n_column}) DESC, dim_value "
                 "LIMIT $8::int)")
    group = "coalesce(width_bucket(r.bucket, $5::timestamptz[]), 0)"
    key = _key_expression(split)
    if hist_column is None:
        sums = ", ".join(f"sum(r.{c}) AS {c}" for c in needed)
        return f"{base} SELECT {group} AS g, {key} AS key, {sums} FROM r GROUP BY 1, 2"
    # element-wise histogram sums: one row per (group, key, bin), folded back into an array
    return (
        f"{base}, bins AS (SELECT {group} AS g, {key} AS key, u.i, sum(u.x) AS x "
        f"FROM r CROSS JOIN LATERAL unnest(r.{hist_column}) WITH ORDINALITY AS u(x, i) GROUP BY 1, 2, 3) "
        f"SELECT g, key, array_agg(x::bigint ORDER BY i) AS {hist_column} FROM bins GROUP BY 1, 2"
    )


def _utc_midnight(instant: datetime, *, up: bool) -> datetime:
    floor = instant.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return floor + timedelta(days=1) if up and floor != instant else floor


def daily_span(start: datetime, end: datetime, thresholds: Sequence[datetime] | None) -> tuple[datetime, datetime]:
    """The whole UTC days of ``[start, end)`` that may be read from the daily rollups, as
    ``[first midnight, last midnight)``; an empty span (both ``end``) when there is none or when a
    bucket threshold falls inside a UTC day (the day's sum would belong to two groups)."""
    if thresholds is not None and any(t != _utc_midnight(t, up=False) for t in thresholds):
        return end, end
    first, last = _utc_midnight(start, up=True), _utc_midnight(end, up=False)
    return (first, last) if first < last else (end, end)


async def rollup_groups(
    conn: Any, *, dim: str, values: Sequence[str] | None, start: datetime, end: datetime,
    thresholds: Sequence[datetime] | None, metric: catalogue.Metric, split: str = "none",
    top_n: int | None = None, keys: Sequence[str] | None = None, daily: bool = True,
) -> list[dict[str, Any]]:
    """Rows ``{g, key, <sums>}``: ``g`` the 1-based bucket index (0 without thresholds), ``key`` the
    dimension value (None: everything, or "other" when split by top-N / keys). ``start`` and
    ``end`` are UTC hours; whole UTC days come from the daily rollups unless ``daily`` is false
    (the same sums: tests compare both ways)."""
    columns = _checked(metric.columns)
    extra: Any = top_n if split == "top" else (list(keys or ()) if split == "keys" else None)
    first_day, end_day = daily_span(start, end, thresholds) if daily else (end, end)
    args: list[Any] = [dim, start, end, None if values is None else list(values),
                       None if thresholds is None else list(thresholds), first_day, end_day]
    if split in ("top", "keys"):
        args.append(extra)
    statement = _rollup_statement(columns=columns, hist_column=None, split=split, n_column=metric.n_column)
    if not metric.hist_column:
        return [dict(r) for r in await conn.fetch(statement, *args)]
    if metric.hist_column not in _HIST_COLUMNS:
        raise ValueError(metric.hist_column)
    hist_statement = _rollup_statement(columns=columns, hist_column=metric.hist_column, split=split,
                                       n_column=metric.n_column)
    # one snapshot for both reads, so the sums and the histograms (and a top-N pick) agree
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        rows = [dict(r) for r in await conn.fetch(statement, *args)]
        hists = {(r["g"], r["key"]): list(r[metric.hist_column]) for r in await conn.fetch(hist_statement, *args)}
    for row in rows:
        row[metric.hist_column] = hists.get((row["g"], row["key"]))
    return rows


_SLA = (
    "SELECT {key} AS key, policy, metric, sum(achieved) AS achieved, sum(breached) AS breached "
    "FROM sla_rollups WHERE dim = $1 AND bucket >= $2 AND bucket < $3 "
    "AND ($4::text[] IS NULL OR dim_value = ANY($4::text[])) GROUP BY 1, 2, 3 ORDER BY 1 NULLS FIRST, 2, 3"
)


async def sla_outcomes(conn: Any, *, dim: str, values: Sequence[str] | None, start: datetime, end: datetime,
                       by_value: bool) -> list[dict[str, Any]]:
    """Achieved and breached SLA cycles per policy and SLA metric (and dimension value when asked)."""
    statement = _SLA.format(key="dim_value" if by_value else "NULL::text")
    rows = await conn.fetch(statement, dim, start, end, None if values is None else list(values))
    return [dict(r) for r in rows]


def ticket_scope_sql(scope: TicketFilter, alias: str, first: int) -> tuple[str, list[Any]]:
    """The WHERE part restricting ticket_metrics rows to a :class:`TicketFilter`, and its arguments
    (numbered from ``$first``). The text differs per shape rather than ``$n IS NULL OR ...``, so a
    prepared statement's generic plan can still use the open-ticket indexes."""
    conditions: list[str] = []
    args: list[Any] = []
    if scope.team_ids is not None:
        conditions.append(f"{alias}.team_id = ANY(${first + len(args)}::uuid[])")
        args.append(list(scope.team_ids))
    if scope.assignee_ids is not None:
        conditions.append(f"{alias}.assignee_id = ANY(${first + len(args)}::text[])")
        args.append(list(scope.assignee_ids))
    return (" AND ".join(conditions) or "true"), args


_TARGET_COLUMNS = (
    "t.ticket_id, t.metric, t.policy, t.target_minutes, t.started_at, t.due_at, t.colour, "
    "m.number, m.status, m.priority, m.channel, m.team_id, m.assignee_id, m.created_at"
)
OPEN_TICKET = "m.created_at IS NOT NULL AND NOT m.resolved AND NOT m.merged"
#: at-risk (docs/metrics.md): running, not yet due nor breached, and warned (yellow/red) or in the
#: last quarter of its target ($1 = now; a quarter of N minutes is N * 15 seconds)
AT_RISK_TARGET = (
    "t.state = 'running' AND t.due_at > $1 AND t.colour <> 'breached' AND (t.colour IN ('yellow', 'red') "
    "OR t.due_at - $1 <= make_interval(secs => coalesce(t.target_minutes, 0) * 15))"
)
OVERDUE_TARGET = "t.state = 'running' AND (t.colour = 'breached' OR t.due_at <= $1)"


def at_risk_statements(scope: TicketFilter) -> tuple[str, str, list[Any]]:
    """The at-risk and overdue lists ($1 now, $2 limit), walked in due order on the partial index
    of running targets and joined to the open ticket rows for the scope."""
    where, args = ticket_scope_sql(scope, "m", 3)
    head = f"SELECT {_TARGET_COLUMNS} FROM sla_targets t JOIN ticket_metrics m ON m.ticket_id = t.ticket_id WHERE "
    at_risk_sql = (f"{head}{AT_RISK_TARGET} AND {OPEN_TICKET} AND {where} "
                   "ORDER BY t.due_at, t.ticket_id, t.metric LIMIT $2")
    overdue_sql = (f"{head}{OVERDUE_TARGET} AND {OPEN_TICKET} AND {where} "
                   "ORDER BY t.due_at NULLS LAST, t.ticket_id, t.metric LIMIT $2")
    return at_risk_sql, overdue_sql, args


async def at_risk(conn: Any, *, now: datetime, limit: int, scope: TicketFilter) -> dict[str, list[dict[str, Any]]]:
    """The open tickets' running SLA targets about to breach (soonest due first) and those overdue."""
    at_risk_sql, overdue_sql, args = at_risk_statements(scope)
    return {"at_risk": [dict(r) for r in await conn.fetch(at_risk_sql, now, limit, *args)],
            "overdue": [dict(r) for r in await conn.fetch(overdue_sql, now, limit, *args)]}


async def explain(conn: Any, statement: str, *args: Any) -> str:
    """The plan of a report statement (tests and docs check that ranges read the rollups' key)."""
    rows = await conn.fetch("EXPLAIN " + statement, *args)
    return "\n".join(r[0] for r in rows)


def team_uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None
