"""The only place with SQL for the read model. Upserts are order-independent: each event
fills only its own columns, so any arrival order folds to the same row.

Plain SQL on a bare asyncpg connection (the consumer is a raw one): analytics folds every
ticket's events, and SQLAlchemy's statement building cost more CPU than PostgreSQL's work.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

CLOSED_STATUSES = ("solved", "closed")
#: the columns a later event may fill (names never come from events)
PARTIAL_COLUMNS = frozenset({"customer_id", "first_response_due_at", "first_response_at", "ticket_type"})

_CREATED_CONFLICT = (
    "ON CONFLICT (ticket_id) DO UPDATE SET created_at = EXCLUDED.created_at, priority = EXCLUDED.priority, "
    "channel = EXCLUDED.channel, ticket_type = coalesce(ticket_facts.ticket_type, EXCLUDED.ticket_type), "
    # a status folded from ticket.status_changed (versioned) outranks the creation's
    "status = CASE WHEN ticket_facts.status_version IS NULL THEN EXCLUDED.status ELSE ticket_facts.status END, "
    "ingested_at = coalesce(ticket_facts.ingested_at, EXCLUDED.ingested_at), updated_at = clock_timestamp()"
)
_UPSERT_CREATED = (
    "INSERT INTO ticket_facts (ticket_id, created_at, priority, status, channel, ticket_type, ingested_at) "
    "VALUES ($1, $2, $3, $4, $5, $6, clock_timestamp()) " + _CREATED_CONFLICT
)
#: ``_UPSERT_CREATED`` of many tickets (each at most once: ``rounds``), in ticket id order
_UPSERT_CREATED_MANY = (
    "INSERT INTO ticket_facts (ticket_id, created_at, priority, status, channel, ticket_type, ingested_at) "
    "SELECT u.t, u.c, u.p, u.s, u.ch, u.ty, clock_timestamp() FROM unnest($1::uuid[], $2::timestamptz[], "
    "$3::text[], $4::text[], $5::text[], $6::text[]) AS u(t, c, p, s, ch, ty) ORDER BY u.t " + _CREATED_CONFLICT
)
_UPSERT_STATUS = (
    "INSERT INTO ticket_facts (ticket_id, status, status_version, ingested_at) VALUES ($1, $2, $3, NULL) "
    "ON CONFLICT (ticket_id) DO UPDATE SET status = EXCLUDED.status, status_version = EXCLUDED.status_version, "
    "updated_at = clock_timestamp() WHERE coalesce(ticket_facts.status_version, -1) < EXCLUDED.status_version"
)
_KPIS = (
    "SELECT count(*) FILTER (WHERE created_at >= $1 AND created_at < $2) AS tickets_created_today, "
    "count(*) FILTER (WHERE status <> ALL($3::text[])) AS open_tickets, "
    "count(*) AS tickets_total, "
    "count(*) FILTER (WHERE customer_id IS NOT NULL) AS tickets_linked_to_customer, "
    "count(*) FILTER (WHERE first_response_due_at IS NOT NULL) AS tickets_with_sla "
    "FROM ticket_facts WHERE created_at IS NOT NULL"
)
_INSERT_SURVEY_ANSWER = (
    "INSERT INTO survey_answers (survey_id, kind, customer_id, ticket_id, rating, score, answered_at) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (survey_id) DO NOTHING"
)
# NPS bands: promoters 9-10, passives 7-8, detractors 0-6; CSAT "satisfied" is a rating of 4-5
_SURVEY_COUNTS = (
    "SELECT count(*) FILTER (WHERE kind = 'csat' AND rating IS NOT NULL) AS csat_responses, "
    "coalesce(sum(rating) FILTER (WHERE kind = 'csat'), 0) AS csat_rating_sum, "
    "count(*) FILTER (WHERE kind = 'csat' AND rating >= 4) AS csat_satisfied, "
    "count(*) FILTER (WHERE kind = 'nps' AND score IS NOT NULL) AS nps_responses, "
    "count(*) FILTER (WHERE kind = 'nps' AND score >= 9) AS nps_promoters, "
    "count(*) FILTER (WHERE kind = 'nps' AND score BETWEEN 7 AND 8) AS nps_passives, "
    "count(*) FILTER (WHERE kind = 'nps' AND score <= 6) AS nps_detractors "
    "FROM survey_answers WHERE answered_at >= $1 AND answered_at < $2"
)


async def upsert_created(
    conn: Any, *, ticket_id: uuid.UUID, created_at: datetime, priority: str, status: str, channel: str | None,
    ticket_type: str | None = None,
) -> None:
    """The ticket.created columns; ``ingested_at`` is the wall clock of the first fold (kept if
    the creation is ever folded again, e.g. a re-published event with a new id)."""
    await conn.execute(_UPSERT_CREATED, ticket_id, created_at, priority, status, channel, ticket_type)


#: ``upsert_created_many``'s row: ticket id, created_at, priority, status, channel, ticket type
CreatedRow = tuple[uuid.UUID, datetime, str, str, str | None, str | None]


async def upsert_created_many(conn: Any, rows: Sequence[CreatedRow]) -> None:
    """``upsert_created`` of every row, in one statement (each ticket once: ``rounds``)."""
    await conn.execute(_UPSERT_CREATED_MANY, *(list(column) for column in zip(*rows)))


def _checked(names: Iterable[str]) -> tuple[str, ...]:
    names = tuple(names)
    unknown = set(names) - PARTIAL_COLUMNS
    if unknown:
        raise ValueError(f"not a partial column: {sorted(unknown)}")
    return names


_PARTIAL_TYPES = {"customer_id": "uuid", "first_response_due_at": "timestamptz", "first_response_at": "timestamptz",
                  "ticket_type": "text"}


def _partial_conflict(names: Sequence[str]) -> str:
    sets = ", ".join(f"{n} = EXCLUDED.{n}" for n in names)
    return f"ON CONFLICT (ticket_id) DO UPDATE SET {sets}, updated_at = clock_timestamp()"


@functools.cache
def _partial_many_sql(names: tuple[str, ...]) -> str:
    arrays = ", ".join(f"${i + 2}::{_PARTIAL_TYPES[n]}[]" for i, n in enumerate(names))
    return (f"INSERT INTO ticket_facts (ticket_id, ingested_at, {', '.join(names)}) "
            f"SELECT u.t, NULL, {', '.join(f'u.{n}' for n in names)} FROM unnest($1::uuid[], {arrays}) "
            f"AS u(t, {', '.join(names)}) ORDER BY u.t " + _partial_conflict(names))


async def upsert_partial(conn: Any, *, ticket_id: uuid.UUID, **values: Any) -> None:
    """Columns from a later event (link, SLA); creates a partial row if the ticket is not known yet."""
    names = _checked(values)
    placeholders = ", ".join(f"${i + 2}" for i in range(len(names)))
    await conn.execute(
        f"INSERT INTO ticket_facts (ticket_id, ingested_at, {', '.join(names)}) VALUES ($1, NULL, {placeholders}) "
        + _partial_conflict(names), ticket_id, *values.values(),
    )


async def upsert_partial_many(conn: Any, names: Sequence[str], rows: Sequence[tuple[Any, ...]]) -> None:
    """``upsert_partial`` of the same ``names`` for every ``(ticket_id, *values)`` row, in one
    statement (each ticket once: ``rounds``)."""
    names = _checked(names)
    await conn.execute(_partial_many_sql(names), *(list(column) for column in zip(*rows)))


async def upsert_status(conn: Any, *, ticket_id: uuid.UUID, status: str, version: int) -> None:
    """Apply a status only if it comes from a newer ticket version than the one folded so far."""
    await conn.execute(_UPSERT_STATUS, ticket_id, status, version)


async def kpis(conn: Any, *, day_start: datetime, day_end: datetime) -> dict[str, int]:
    """All headline numbers in one scan with FILTER clauses (only tickets whose creation arrived)."""
    row = await conn.fetchrow(_KPIS, day_start, day_end, list(CLOSED_STATUSES))
    return dict(row)


async def insert_survey_answer(
    conn: Any, *, survey_id: uuid.UUID, kind: str, customer_id: uuid.UUID, ticket_id: uuid.UUID | None,
    rating: int | None, score: int | None, answered_at: datetime,
) -> None:
    """The first answer of a survey stays; the same survey again (a redelivery, a re-published
    event with a new id) changes nothing, so each survey is counted once."""
    await conn.execute(_INSERT_SURVEY_ANSWER, survey_id, kind, customer_id, ticket_id, rating, score, answered_at)


async def survey_counts(conn: Any, *, start: datetime, end: datetime) -> dict[str, int]:
    """Raw CSAT and NPS counts of the answers given in [start, end), in one scan (the figures
    derived from them are the service's)."""
    row = await conn.fetchrow(_SURVEY_COUNTS, start, end)
    return {k: int(v) for k, v in row.items()}


# --------------------------------------------------------------------------- the live board (read model)

def _board_statement(scope_sql: str, first_free: int) -> str:
    """The live board in one statement over the metric read model.

    Counts over a period come from the hourly rollups ($1 dim, $2 values, $3-$4 today's hours);
    the all-time counters (tickets, linked to a customer, with an SLA) are the daily rollups'
    ``created`` / ``linked`` / ``with_sla`` summed over every UTC day (written with the hourly
    rows, today's included: ~365 rows per value and year, whatever the ticket volume); "now" figures from the open-ticket partial indexes and the running-target index; today's exact
    percentiles from an index range on first_reply_at / resolved_at ($5-$6 the local day).
    The open backlog (open, unassigned, ages) is summed from ``open_rollups`` (the fold keeps each
    open ticket there at its creation hour): the tickets created after an age bound ($8, youngest
    first) are the rows of the hours from the next whole hour on ($9, the bounds rounded up to the
    hour) plus an exact count of the straddling hour's part after the bound, read on the open-ticket
    partial indexes of ticket_metrics (a few rows each), so the ages are exact to the second.
    Overdue and at risk are open tickets, each counted once (``readmodel.targets.sla_clock``):
    those that became overdue (at risk) before now, i.e. ``open_rollups.overdue_from``
    (``at_risk_from``) of the hours before the current one ($10) plus an exact count of the current
    hour's part up to now ($7) on the open-ticket partial indexes of ``sla_overdue_at`` /
    ``sla_at_risk_at``; at risk excludes the overdue (a ticket at risk stays so until overdue).
    ``scope_sql`` restricts ticket rows (``m``) with arguments from ``$first_free`` on.
    """
    from ..reports.repository import OPEN_TICKET

    del first_free  # the scope's arguments are numbered by the caller
    later = ", ".join(
        f"coalesce(sum(o.open) FILTER (WHERE o.bucket >= ($9::timestamptz[])[{i + 1}]), 0) AS r{i}" for i in range(6))
    edges = ", ".join(
        f"(SELECT count(*) FROM ticket_metrics m WHERE {OPEN_TICKET} AND {scope_sql} "
        f"AND m.created_at > ($8::timestamptz[])[{i + 1}] AND m.created_at < ($9::timestamptz[])[{i + 1}]) AS e{i}"
        for i in range(6))
    # open tickets created after bound i, then each bucket as the difference of two of them
    after = [f"(open.r{i} + edges.e{i})" for i in range(6)]
    backlog = ", ".join([f"{after[0]} AS b0"] + [f"{after[i]} - {after[i - 1]} AS b{i}" for i in range(1, 6)])
    return (
        "WITH today AS (SELECT coalesce(sum(created), 0) AS created, coalesce(sum(csat_n), 0) AS csat_n, "
        "  coalesce(sum(csat_satisfied), 0) AS csat_satisfied, coalesce(sum(sla_n), 0) AS sla_n, "
        "  coalesce(sum(sla_achieved), 0) AS sla_achieved, coalesce(sum(csat_rating_sum), 0) AS csat_rating_sum, "
        "  coalesce(sum(nps_n), 0) AS nps_n, coalesce(sum(nps_promoters), 0) AS nps_promoters, "
        "  coalesce(sum(nps_detractors), 0) AS nps_detractors FROM metric_rollups "
        "  WHERE dim = $1 AND dim_value = ANY($2::text[]) AND bucket >= $3 AND bucket < $4), "
        "total AS (SELECT coalesce(sum(created), 0) AS n, coalesce(sum(linked), 0) AS linked, "
        "  coalesce(sum(with_sla), 0) AS with_sla FROM metric_rollups_daily "
        "  WHERE dim = $1 AND dim_value = ANY($2::text[])), "
        "open AS (SELECT coalesce(sum(o.open), 0) AS n, coalesce(sum(o.unassigned), 0) AS unassigned, "
        f"  {later}, "
        "  coalesce(sum(o.overdue_from) FILTER (WHERE o.bucket < $10), 0) AS overdue_before, "
        "  coalesce(sum(o.at_risk_from) FILTER (WHERE o.bucket < $10), 0) AS at_risk_before "
        "  FROM open_rollups o WHERE o.dim = $1 AND o.dim_value = ANY($2::text[])), "
        f"edges AS (SELECT {edges}, "
        f"  (SELECT count(*) FROM ticket_metrics m WHERE {OPEN_TICKET} AND {scope_sql} "
        "    AND m.sla_overdue_at >= $10 AND m.sla_overdue_at <= $7) AS overdue_now, "
        f"  (SELECT count(*) FROM ticket_metrics m WHERE {OPEN_TICKET} AND {scope_sql} "
        "    AND m.sla_at_risk_at >= $10 AND m.sla_at_risk_at <= $7) AS at_risk_now), "
        "first_replies AS (SELECT array_agg(m.first_reply_minutes) AS v FROM ticket_metrics m "
        f"  WHERE m.first_reply_at >= $5 AND m.first_reply_at < $6 AND m.first_reply_minutes IS NOT NULL AND {scope_sql}), "
        "resolutions AS (SELECT array_agg(m.full_resolution_minutes) AS v FROM ticket_metrics m "
        f"  WHERE m.resolved_at >= $5 AND m.resolved_at < $6 AND m.resolved AND m.full_resolution_minutes IS NOT NULL "
        f"  AND {scope_sql}), "
        "newest AS (SELECT max(event_at) AS at FROM ticket_metrics) "
        "SELECT today.*, total.n AS tickets_total, total.linked, total.with_sla, open.n, open.unassigned, "
        f"  {backlog}, "
        "  open.overdue_before + edges.overdue_now AS overdue, "
        "  open.at_risk_before + edges.at_risk_now - open.overdue_before - edges.overdue_now AS at_risk, "
        "  first_replies.v AS first_replies, resolutions.v AS resolutions, newest.at AS as_of "
        "FROM today, total, open, edges, first_replies, resolutions, newest"
    )


async def board(conn: Any, *, dim: str, values: list[str], hour_start: datetime, hour_end: datetime,
                day_start: datetime, day_end: datetime, now: datetime, age_thresholds: list[datetime],
                age_edges: list[datetime], scope_sql: str, scope_args: list[Any]) -> dict[str, Any]:
    """The read model's figures for the live board (one round trip); ``as_of`` is None while the
    read model is empty. ``age_edges``: each age threshold rounded up to the next whole UTC hour."""
    now_hour = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)  # the buckets are UTC hours
    row = await conn.fetchrow(_board_statement(scope_sql, 11), dim, values, hour_start, hour_end, day_start, day_end,
                              now, age_thresholds, age_edges, now_hour, *scope_args)
    return dict(row)


async def legacy_as_of(conn: Any) -> datetime | None:
    """When the old ticket_facts table last folded an event (the board's as_of until the read model fills)."""
    return await conn.fetchval("SELECT max(updated_at) FROM ticket_facts")
