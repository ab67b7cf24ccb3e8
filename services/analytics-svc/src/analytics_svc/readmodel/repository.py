"""All SQL of the metric read model's writes (plain SQL on the consumer's bare asyncpg connection).

Rollup upserts take every row of a delta in one statement (``unnest`` of one array per column),
in key order, so two transactions touching the same rows lock them in the same order. A rollup
row whose sums went back to zero (a ticket moved to another team) stays: it is harmless to every
sum, and deleting it would race with a concurrent upsert of the same key.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson

from .contributions import COUNT_COLUMNS, HIST_COLUMNS, SUM_COLUMNS, Delta, DeltaSum, hist_arrays

# --------------------------------------------------------------------------- the fold's statements
#
# A batch's fold is a constant number of statements (``handlers.refold_many``): each event
# records its facts (one statement); at the end of the batch the dirty tickets' rows are locked
# in id order, all their facts loaded, the customers' dimensions and calendar versions loaded,
# and the summed rollup deltas (hourly, daily, SLA) and the rows written, one statement each.
# The facts are read *after* the lock, so a fold that waited for another one's lock sees its facts.

_INSERT_FACTS = (
    "INSERT INTO ticket_history (ticket_id, fact_key, kind, at, body) "
    "SELECT $1, u.k, u.kind, u.at, u.body::jsonb FROM unnest($2::text[], $3::text[], $4::timestamptz[], $5::text[]) "
    "AS u(k, kind, at, body) ON CONFLICT (ticket_id, fact_key) DO NOTHING RETURNING 1"
)


async def record_facts(conn: Any, owner_id: uuid.UUID, rows: Sequence[tuple[str, str, datetime, dict[str, Any]]]) -> int:
    """Insert facts (of a ticket, or about no ticket, kept under their customer's id only so
    that they count once) without locking anything; the number that were new."""
    new = await conn.fetch(_INSERT_FACTS, owner_id, [r[0] for r in rows], [r[1] for r in rows],
                           [r[2] for r in rows], [orjson.dumps(r[3]).decode() for r in rows])
    return len(new)


_INSERT_TICKET_FACTS = (
    "INSERT INTO ticket_history (ticket_id, fact_key, kind, at, body) "
    "SELECT u.t, u.k, u.kind, u.at, u.body::jsonb FROM unnest($1::uuid[], $2::text[], $3::text[], "
    "$4::timestamptz[], $5::text[]) WITH ORDINALITY AS u(t, k, kind, at, body, ord) ORDER BY u.ord "
    "ON CONFLICT (ticket_id, fact_key) DO NOTHING RETURNING ticket_id"
)


TicketFactRow = tuple[uuid.UUID, str, str, datetime, dict[str, Any]]


async def record_ticket_facts(conn: Any, rows: Sequence[TicketFactRow]) -> set[uuid.UUID]:
    """Insert ``(ticket_id, fact_key, kind, at, body)`` rows of many tickets in one statement
    (in the given order); the tickets that got a new fact."""
    new = await conn.fetch(_INSERT_TICKET_FACTS, [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows],
                           [r[3] for r in rows], [orjson.dumps(r[4]).decode() for r in rows])
    return {r["ticket_id"] for r in new}


async def load_history(conn: Any, ticket_id: uuid.UUID) -> list[Any]:
    return await conn.fetch("SELECT kind, body FROM ticket_history WHERE ticket_id = $1", ticket_id)


async def customer_dims(conn: Any, customer_id: uuid.UUID) -> Any:
    return await conn.fetchrow("SELECT tier, organization_id FROM customer_dims WHERE customer_id = $1", customer_id)


async def calendar_definition(conn: Any, key: str) -> Any:
    return await conn.fetchrow(
        "SELECT md5(calendar::text) AS digest, calendar FROM business_calendars WHERE team_key = $1", key)


#: ticket_metrics columns written by a fold, in this order
TICKET_COLUMNS = (
    "number", "created_at", "status", "first_reply_at", "resolved_at", "team_id", "assignee_id", "channel",
    "ticket_type", "priority", "customer_id", "customer_tier", "organization_id", "brand", "tags", "calendar_id",
    "first_reply_minutes", "first_reply_business_minutes", "full_resolution_minutes",
    "full_resolution_business_minutes", "requester_wait_minutes", "requester_wait_business_minutes",
    "agent_wait_minutes", "agent_wait_business_minutes", "on_hold_minutes", "on_hold_business_minutes",
    "next_replies_total_minutes", "next_replies_total_business_minutes", "next_replies", "reopens", "replies",
    "assignee_hops", "team_hops", "resolved", "one_touch", "first_contact", "merged", "csat", "nps",
    "sla_achieved", "sla_breached", "sla_overdue_at", "sla_at_risk_at", "contributions", "event_at",
)

# --------------------------------------------------------------------------- rollups

_M_COLS = COUNT_COLUMNS + SUM_COLUMNS


def _metric_sql(first: int, table: str = "metric_rollups") -> str:
    """Upsert of ``table`` (metric_rollups or metric_rollups_daily) rows from parameter arrays
    ``$first...`` (unnest, in key order)."""
    types = ["text", "timestamptz", "text"] + ["int8" if c in COUNT_COLUMNS else "float8" for c in _M_COLS] \
        + ["text"] * len(HIST_COLUMNS)
    return (
        f"INSERT INTO {table} (dim, bucket, dim_value, {', '.join(_M_COLS)}, {', '.join(HIST_COLUMNS)}) "
        f"SELECT u.dim, u.bucket, u.dim_value, {', '.join(f'u.{c}' for c in _M_COLS)}, "
        f"{', '.join(f'u.{c}::int[]' for c in HIST_COLUMNS)} "
        f"FROM unnest({', '.join(f'${first + i}::{t}[]' for i, t in enumerate(types))}) "
        f"WITH ORDINALITY AS u(dim, bucket, dim_value, {', '.join(_M_COLS)}, {', '.join(HIST_COLUMNS)}, ord) "
        "ORDER BY u.ord "
        "ON CONFLICT (dim, bucket, dim_value) DO UPDATE SET "
        + ", ".join(f"{c} = {table}.{c} + EXCLUDED.{c}" for c in _M_COLS) + ", "
        + ", ".join(f"{c} = hist_add({table}.{c}, EXCLUDED.{c})" for c in HIST_COLUMNS)
    )


def _sla_sql(first: int) -> str:
    types = ("text", "timestamptz", "text", "text", "text", "int8", "int8")
    return (
        "INSERT INTO sla_rollups (dim, bucket, dim_value, policy, metric, achieved, breached) "
        "SELECT u.dim, u.bucket, u.dim_value, u.policy, u.metric, u.achieved, u.breached "
        f"FROM unnest({', '.join(f'${first + i}::{t}[]' for i, t in enumerate(types))}) "
        "WITH ORDINALITY AS u(dim, bucket, dim_value, policy, metric, achieved, breached, ord) ORDER BY u.ord "
        "ON CONFLICT (dim, bucket, dim_value, policy, metric) DO UPDATE SET "
        "achieved = sla_rollups.achieved + EXCLUDED.achieved, breached = sla_rollups.breached + EXCLUDED.breached"
    )


OPEN_COLUMNS = ("open", "unassigned", "overdue_from", "at_risk_from")
_APPLY_OPEN = (
    f"INSERT INTO open_rollups (dim, bucket, dim_value, {', '.join(OPEN_COLUMNS)}) "
    f"SELECT u.dim, u.bucket, u.dim_value, {', '.join('u.' + c for c in OPEN_COLUMNS)} "
    "FROM unnest($1::text[], $2::timestamptz[], $3::text[], $4::int8[], $5::int8[], $6::int8[], $7::int8[]) "
    f"WITH ORDINALITY AS u(dim, bucket, dim_value, {', '.join(OPEN_COLUMNS)}, ord) ORDER BY u.ord "
    "ON CONFLICT (dim, bucket, dim_value) DO UPDATE SET "
    + ", ".join(f"{c} = open_rollups.{c} + EXCLUDED.{c}" for c in OPEN_COLUMNS)
)
_APPLY_METRIC = _metric_sql(1)
_APPLY_DAILY = _metric_sql(1, "metric_rollups_daily")
_APPLY_SLA = _sla_sql(1)
def _pg_array(values: list[int] | None) -> str | None:
    return None if values is None else "{" + ",".join(str(v) for v in values) + "}"


def _metric_args(delta: Delta) -> list[list[Any]]:
    rows = delta.metric
    columns: list[list[Any]] = [[k[0] for k, _ in rows], [datetime.fromisoformat(k[1]) for k, _ in rows],
                                [k[2] for k, _ in rows]]
    for c in _M_COLS:
        if c in COUNT_COLUMNS:
            columns.append([int(cols.get(c, 0)) for _, cols in rows])
        else:
            columns.append([float(cols.get(c, 0.0)) for _, cols in rows])
    hists = [hist_arrays(cols) for _, cols in rows]
    for h in HIST_COLUMNS:
        columns.append([_pg_array(x[h]) for x in hists])
    return columns


def _sla_args(delta: Delta) -> list[list[Any]]:
    rows = delta.sla
    return [[k[0] for k, _ in rows], [datetime.fromisoformat(k[1]) for k, _ in rows], [k[2] for k, _ in rows],
            [k[3] for k, _ in rows], [k[4] for k, _ in rows], [v[0] for _, v in rows], [v[1] for _, v in rows]]


_LOCK_TICKETS = (
    "INSERT INTO ticket_metrics (ticket_id) SELECT t FROM unnest($1::uuid[]) AS t ORDER BY t "
    "ON CONFLICT (ticket_id) DO UPDATE SET ticket_id = EXCLUDED.ticket_id RETURNING ticket_id, contributions"
)


async def lock_tickets(conn: Any, ticket_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Any]:
    """Lock (creating empty ones) the ticket_metrics rows of ``ticket_ids`` in id order, so two
    transactions folding common tickets wait for each other without deadlock; each row's
    stored contributions."""
    rows = await conn.fetch(_LOCK_TICKETS, list(ticket_ids))
    return {r["ticket_id"]: r["contributions"] for r in rows}


async def load_histories(conn: Any, ticket_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[tuple[str, Any]]]:
    """Every fact of ``ticket_ids``: ticket id -> [(kind, body)], one statement."""
    out: dict[uuid.UUID, list[tuple[str, Any]]] = {}
    for r in await conn.fetch("SELECT ticket_id, kind, body FROM ticket_history WHERE ticket_id = ANY($1::uuid[])",
                              list(ticket_ids)):
        out.setdefault(r["ticket_id"], []).append((r["kind"], r["body"]))
    return out


_CONTEXTS = (
    "SELECT 'calendar' AS src, team_key, md5(calendar::text) AS digest, calendar_id, NULL::uuid AS customer_id, "
    "NULL::text AS tier, NULL::uuid AS organization_id "
    "FROM business_calendars WHERE team_key = ANY($2::text[]) AND calendar IS NOT NULL "
    "UNION ALL SELECT 'customer', NULL, NULL, NULL, customer_id, tier, organization_id FROM customer_dims "
    "WHERE customer_id = ANY($1::uuid[])"
)


async def fold_contexts(conn: Any, customer_ids: Sequence[uuid.UUID],
                        calendar_keys: Sequence[str]) -> tuple[dict[uuid.UUID, Any], list[Any]]:
    """(customer id -> dims row, the digests of the calendars of ``calendar_keys`` that have
    one) in one round trip."""
    rows = await conn.fetch(_CONTEXTS, list(customer_ids), list(calendar_keys))
    return ({r["customer_id"]: r for r in rows if r["src"] == "customer"},
            [r for r in rows if r["src"] == "calendar"])


#: ``t.ticket_id = ANY($2)`` repeats the join's keys as an index condition on ticket_metrics: the
#: function scan is estimated at 100 rows whatever it holds, and while the table's statistics
#: were those of a small one the planner hashed it and scanned every ticket_metrics row per
#: batch (8.3 ms per batch of about 11 tickets at a few thousand tickets, bench/profile.py
#: --statements)
_WRITE_ROWS = (
    "UPDATE ticket_metrics t SET "
    + ", ".join(f"{c} = r.{c}" for c in TICKET_COLUMNS)
    + ", folded_at = clock_timestamp() FROM jsonb_populate_recordset(NULL::ticket_metrics, $1::text::jsonb) AS r "
    "WHERE t.ticket_id = r.ticket_id AND t.ticket_id = ANY($2::uuid[])"
)


async def write_folds(conn: Any, hourly: Delta, daily: Delta, sla: Delta, rows: Sequence[dict[str, Any]],
                      open_rows: Delta | None = None) -> None:
    """Add a batch's summed deltas to metric_rollups, metric_rollups_daily, sla_rollups and
    open_rollups (one statement each, rows in key order) and store the folded ticket_metrics rows
    (locked by ``lock_tickets``) in one statement."""
    if hourly.metric:
        await conn.execute(_APPLY_METRIC, *_metric_args(hourly))
    if daily.metric:
        await conn.execute(_APPLY_DAILY, *_metric_args(daily))
    if sla.sla:
        await conn.execute(_APPLY_SLA, *_sla_args(sla))
    if open_rows is not None and open_rows.open:
        o = open_rows.open
        await conn.execute(_APPLY_OPEN, [k[0] for k, _ in o], [datetime.fromisoformat(k[1]) for k, _ in o],
                           [k[2] for k, _ in o], *([int(c.get(name, 0)) for _, c in o] for name in OPEN_COLUMNS))
    if rows:
        await conn.execute(_WRITE_ROWS, orjson.dumps(
            [{"ticket_id": r["ticket_id"], **{c: r.get(c) for c in TICKET_COLUMNS}} for r in rows],
            default=str).decode(), [r["ticket_id"] for r in rows])


async def apply_delta(conn: Any, delta: Delta) -> None:
    """Add a delta to metric_rollups, metric_rollups_daily and sla_rollups (figures of no
    ticket): rows in key order."""
    if delta.metric:
        await conn.execute(_APPLY_METRIC, *_metric_args(delta))
        total = DeltaSum()
        total.add(delta)
        await conn.execute(_APPLY_DAILY, *_metric_args(total.daily()))
    if delta.sla:
        await conn.execute(_APPLY_SLA, *_sla_args(delta))


# --------------------------------------------------------------------------- projections

_RECORD_SLA_FACTS = (
    "WITH new AS (INSERT INTO ticket_history (ticket_id, fact_key, kind, at, body) "
    "SELECT $1, u.k, u.kind, u.at, u.body::jsonb FROM unnest($2::text[], $3::text[], $4::timestamptz[], $5::text[]) "
    "AS u(k, kind, at, body) ON CONFLICT (ticket_id, fact_key) DO NOTHING RETURNING kind, body) "
    "SELECT true AS new, kind, body FROM new "
    "UNION ALL SELECT false, kind, body FROM ticket_history "
    "WHERE ticket_id = $1 AND kind = 'sla_state' AND body->>'metric' = $6"
)


async def record_sla_facts(conn: Any, ticket_id: uuid.UUID, metric: str,
                           rows: Sequence[tuple[str, str, datetime, dict[str, Any]]]) -> list[Any] | None:
    """``record_facts`` for an ``sla.*`` event, and in the same statement the recorded events of
    its target (facts of kind ``sla_state``, the new ones included); None when none of ``rows``
    was new (a redelivery: nothing to fold). The table part reads the statement's snapshot, which
    does not hold the rows the statement inserts; those come from its RETURNING."""
    found = await conn.fetch(_RECORD_SLA_FACTS, ticket_id, [r[0] for r in rows], [r[1] for r in rows],
                             [r[2] for r in rows], [orjson.dumps(r[3]).decode() for r in rows], metric)
    if not any(r["new"] for r in found):
        return None
    states = []
    for r in found:
        body = orjson.loads(r["body"]) if isinstance(r["body"], str) else r["body"]  # without the pool's codec
        if not r["new"] or (r["kind"] == "sla_state" and body.get("metric") == metric):
            states.append({"kind": r["kind"], "body": body})
    return states


#: a fact to record: (fact key, kind, at, body)
FactRow = tuple[str, str, datetime, dict[str, Any]]

_RECORD_SLA_FACTS_MANY = (
    "WITH new AS (INSERT INTO ticket_history (ticket_id, fact_key, kind, at, body) "
    "SELECT u.t, u.k, u.kind, u.at, u.body::jsonb FROM unnest($1::uuid[], $2::text[], $3::text[], "
    "$4::timestamptz[], $5::text[]) WITH ORDINALITY AS u(t, k, kind, at, body, ord) ORDER BY u.ord "
    "ON CONFLICT (ticket_id, fact_key) DO NOTHING RETURNING ticket_id, fact_key, kind, body) "
    "SELECT true AS new, ticket_id, fact_key, kind, body FROM new "
    "UNION ALL SELECT false, ticket_id, fact_key, kind, body FROM ticket_history "
    "WHERE ticket_id = ANY($6::uuid[]) AND kind = 'sla_state'"
)


async def record_sla_facts_many(
    conn: Any, rows: Sequence[tuple[uuid.UUID, str, str, datetime, dict[str, Any]]], ticket_ids: Sequence[uuid.UUID],
) -> tuple[set[tuple[uuid.UUID, str]], dict[tuple[uuid.UUID, str], list[tuple[str, Any]]]]:
    """``record_sla_facts`` of many events in one statement: ``rows`` are ``(ticket_id, fact
    key, kind, at, body)`` in event order, ``ticket_ids`` their tickets. Returns the (ticket id,
    fact key) pairs that were new, and per (ticket id, metric) the ``(kind, body)`` of its
    recorded target events (facts of kind ``sla_state``, the new ones included)."""
    found = await conn.fetch(_RECORD_SLA_FACTS_MANY, [r[0] for r in rows], [r[1] for r in rows],
                             [r[2] for r in rows], [r[3] for r in rows], [orjson.dumps(r[4]).decode() for r in rows],
                             list(ticket_ids))
    new: set[tuple[uuid.UUID, str]] = set()
    states: dict[tuple[uuid.UUID, str], list[tuple[str, Any]]] = {}
    for r in found:
        if r["new"]:
            new.add((r["ticket_id"], r["fact_key"]))
        if r["kind"] != "sla_state":
            continue
        body = orjson.loads(r["body"]) if isinstance(r["body"], str) else r["body"]  # without the pool's codec
        states.setdefault((r["ticket_id"], body.get("metric")), []).append((r["kind"], body))
    return new, states


_STORE_SLA_TARGETS = (
    "INSERT INTO sla_targets (ticket_id, metric, policy, target_minutes, started_at, due_at, state, colour, "
    "event_at) SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::int4[], $5::timestamptz[], "
    "$6::timestamptz[], $7::text[], $8::text[], $9::timestamptz[]) "
    "ON CONFLICT (ticket_id, metric) DO UPDATE SET "
    "policy = EXCLUDED.policy, target_minutes = EXCLUDED.target_minutes, started_at = EXCLUDED.started_at, "
    "due_at = EXCLUDED.due_at, state = EXCLUDED.state, colour = EXCLUDED.colour, event_at = EXCLUDED.event_at"
)


async def store_sla_targets(conn: Any, rows: Sequence[tuple[uuid.UUID, str, dict[str, Any]]]) -> None:
    """``store_sla_target`` of ``(ticket_id, metric, row)`` rows, each target once, in key order."""
    rows = sorted(rows, key=lambda r: (r[0], r[1]))
    await conn.execute(_STORE_SLA_TARGETS, [r[0] for r in rows], [r[1] for r in rows],
                       *([r[2][c] for r in rows] for c in ("policy", "target_minutes", "started_at", "due_at",
                                                            "state", "colour", "event_at")))


async def store_sla_target(conn: Any, *, ticket_id: uuid.UUID, metric: str, row: dict[str, Any]) -> None:
    """Write the target's row as folded from all its events (``targets.target_row``)."""
    await conn.execute(
        "INSERT INTO sla_targets (ticket_id, metric, policy, target_minutes, started_at, due_at, state, colour, "
        "event_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (ticket_id, metric) DO UPDATE SET "
        "policy = EXCLUDED.policy, target_minutes = EXCLUDED.target_minutes, started_at = EXCLUDED.started_at, "
        "due_at = EXCLUDED.due_at, state = EXCLUDED.state, colour = EXCLUDED.colour, event_at = EXCLUDED.event_at",
        ticket_id, metric, row["policy"], row["target_minutes"], row["started_at"], row["due_at"], row["state"],
        row["colour"], row["event_at"],
    )


async def upsert_calendar(conn: Any, *, team_key: str, calendar_id: uuid.UUID | None, calendar: Any,
                          version: int) -> bool:
    """Keep the announced calendar only if its version is newer than the stored one."""
    return bool(await conn.fetchval(
        "INSERT INTO business_calendars (team_key, calendar_id, calendar, version) VALUES ($1, $2, $3, $4) "
        "ON CONFLICT (team_key) DO UPDATE SET calendar_id = EXCLUDED.calendar_id, calendar = EXCLUDED.calendar, "
        "version = EXCLUDED.version WHERE business_calendars.version < EXCLUDED.version RETURNING true",
        team_key, calendar_id, calendar, version,
    ))


async def upsert_customer_dims(conn: Any, *, customer_id: uuid.UUID, event_at: datetime, tier: str | None,
                               organization_id: uuid.UUID | None, fields: frozenset[str]) -> None:
    """A customer's tier / organisation as of ``event_at``: a newer event sets the ``fields`` it
    carries; an older one is ignored (customer-svc's events of one customer are in order, this
    guards against replays of old ones)."""
    await upsert_customer_dims_many(
        conn, [(customer_id, tier, organization_id, event_at, "tier" in fields, "organization_id" in fields)])


#: (customer id, tier, organization id, event_at, sets the tier, sets the organization)
DimsRow = tuple[uuid.UUID, str | None, uuid.UUID | None, datetime, bool, bool]

# the set flags travel as a column of the inserted row's source, read back in the update through
# a join on the key: EXCLUDED holds only the table's columns
_UPSERT_CUSTOMER_DIMS = (
    "WITH u AS (SELECT * FROM unnest($1::uuid[], $2::text[], $3::uuid[], $4::timestamptz[], $5::bool[], $6::bool[]) "
    "AS u(customer_id, tier, organization_id, event_at, set_tier, set_organization)) "
    "INSERT INTO customer_dims AS c (customer_id, tier, organization_id, event_at) "
    "SELECT customer_id, tier, organization_id, event_at FROM u ORDER BY customer_id "
    "ON CONFLICT (customer_id) DO UPDATE SET "
    "tier = CASE WHEN (SELECT set_tier FROM u WHERE u.customer_id = EXCLUDED.customer_id) "
    "  THEN EXCLUDED.tier ELSE c.tier END, "
    "organization_id = CASE WHEN (SELECT set_organization FROM u WHERE u.customer_id = EXCLUDED.customer_id) "
    "  THEN EXCLUDED.organization_id ELSE c.organization_id END, "
    "event_at = EXCLUDED.event_at WHERE c.event_at <= EXCLUDED.event_at"
)


async def upsert_customer_dims_many(conn: Any, rows: Sequence[DimsRow]) -> None:
    """``upsert_customer_dims`` of every row in one statement (each customer once: ``rounds``)."""
    await conn.execute(_UPSERT_CUSTOMER_DIMS, *(list(column) for column in zip(*rows)))


async def copy_customer_dims(conn: Any, *, survivor_id: uuid.UUID, merged_id: uuid.UUID, event_at: datetime) -> None:
    """After a customer merge, tickets still pointing at the merged customer take the survivor's
    tier and organisation."""
    await conn.execute(
        "INSERT INTO customer_dims AS c (customer_id, tier, organization_id, event_at) "
        "SELECT $2, s.tier, s.organization_id, $3 FROM customer_dims s WHERE s.customer_id = $1 "
        "ON CONFLICT (customer_id) DO UPDATE SET tier = EXCLUDED.tier, organization_id = EXCLUDED.organization_id, "
        "event_at = EXCLUDED.event_at WHERE c.event_at <= EXCLUDED.event_at",
        survivor_id, merged_id, event_at,
    )


async def insert_delivery_failure(conn: Any, *, delivery_id: uuid.UUID, ticket_id: uuid.UUID | None, channel: str,
                                  kind: str, at: datetime) -> bool:
    """Record one failed delivery; False when it was already recorded (a redelivery, a retry by
    hand that failed again keeps its first failure)."""
    return bool(await conn.fetchval(
        "INSERT INTO delivery_failures (delivery_id, ticket_id, channel, kind, at) VALUES ($1, $2, $3, $4, $5) "
        "ON CONFLICT (delivery_id) DO NOTHING RETURNING true",
        delivery_id, ticket_id, channel, kind, at,
    ))


async def record_suggestion_outcome(conn: Any, *, suggestion_id: uuid.UUID, deflected: bool, channel: str,
                                    at: datetime) -> tuple[bool, Any]:
    """Keep a suggestion's latest outcome (by ``at``); ``(changed, previous row or None)``: an
    outcome at or before the kept one changes nothing."""
    previous = await conn.fetchrow(
        "SELECT deflected, channel, at FROM kb_suggestion_outcomes WHERE suggestion_id = $1 FOR UPDATE",
        suggestion_id)
    if previous is not None and (previous["at"] >= at or
                                 (previous["deflected"], previous["channel"]) == (deflected, channel)):
        return False, previous
    await conn.execute(
        "INSERT INTO kb_suggestion_outcomes (suggestion_id, deflected, channel, at) VALUES ($1, $2, $3, $4) "
        "ON CONFLICT (suggestion_id) DO UPDATE SET deflected = EXCLUDED.deflected, channel = EXCLUDED.channel, "
        "at = EXCLUDED.at", suggestion_id, deflected, channel, at)
    return True, previous
