"""The only place with SQL for stored insight scores (bare asyncpg).

Facts are read for a set of customers at once (``customer_id = ANY($1)``), so the incremental
worker (a few hundred dirty customers) and the nightly run (everyone, in batches) share every
query: the two paths cannot disagree about what a customer's facts are.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson

from ..pii.codec import codec

#: orders that count for RFM and churn (docs/customers.md, "Storage for RFM")
_COUNTED = "o.status NOT IN ('cancelled', 'refunded')"
#: tickets that are the customer's own contacts: care and follow-up tasks (channel ``system``)
#: are about the customer, and an open care ticket must not raise the score that opened it
_CONTACT = "t.merged_into IS NULL AND t.deleted_at IS NULL AND t.channel IS DISTINCT FROM 'system'"


# --------------------------------------------------------------------------- the dirty set

#: a customer's dirty mark and its renewal; also written by another table's repository in the
#: statement of the change (``ticket_facts.repository.insert_new``)
MARK = "INSERT INTO insight_dirty (customer_id)"
MARK_AGAIN = "ON CONFLICT (customer_id) DO UPDATE SET since = clock_timestamp(), leased_until = NULL"


async def mark_dirty(conn: Any, customer_id: uuid.UUID) -> None:
    """Note that a customer's facts changed (an order, a ticket, a survey answer...), in the
    transaction of the change: the insight worker rescores them shortly after. Many changes to
    one customer coalesce into one row, so a burst costs one rescoring; ``since`` moves on, so a
    worker scoring the customer right now keeps the row for another pass (it deletes only the
    ``since`` it leased)."""
    await conn.execute(f"{MARK} VALUES ($1) {MARK_AGAIN}", customer_id)


async def mark_many_dirty(conn: Any, customer_ids: Sequence[uuid.UUID]) -> None:
    await conn.execute(f"{MARK} SELECT DISTINCT unnest($1::uuid[]) ORDER BY 1 {MARK_AGAIN}", list(customer_ids))


async def lease_dirty(conn: Any, *, limit: int, lease_s: float) -> list[Any]:
    """Up to ``limit`` dirty customers nobody holds, oldest first, leased to the caller for
    ``lease_s`` (a short statement of its own: the scoring transaction holds no lock on the
    dirty set, so recording an order never waits for a batch)."""
    return await conn.fetch(
        "UPDATE insight_dirty d SET leased_until = clock_timestamp() + make_interval(secs => $2) "
        "WHERE d.customer_id IN (SELECT customer_id FROM insight_dirty "
        "  WHERE leased_until IS NULL OR leased_until < clock_timestamp() ORDER BY since LIMIT $1 "
        "  FOR UPDATE SKIP LOCKED) "
        "RETURNING d.customer_id, d.since", limit, lease_s)


async def release_dirty(conn: Any, leased: Sequence[tuple[uuid.UUID, datetime]]) -> None:
    """Forget the customers just scored, unless they were marked again since the lease (then
    ``since`` differs and the row stays for the next pass)."""
    if not leased:
        return
    await conn.execute(
        "DELETE FROM insight_dirty d USING unnest($1::uuid[], $2::timestamptz[]) AS l(customer_id, since) "
        "WHERE d.customer_id = l.customer_id AND d.since = l.since",
        [c for c, _ in leased], [s for _, s in leased])


async def dirty_count(conn: Any) -> int:
    return int(await conn.fetchval("SELECT count(*) FROM insight_dirty"))


# --------------------------------------------------------------------------- facts


async def customers_of(conn: Any, customer_ids: Sequence[uuid.UUID]) -> list[Any]:
    """The customers still there (a merged one answers through its survivor)."""
    return await conn.fetch(
        "SELECT id, tier, account_owner_id, language FROM customers WHERE id = ANY($1::uuid[]) "
        "AND merged_into IS NULL", list(customer_ids))


async def customer_ids_after(conn: Any, after: uuid.UUID | None, limit: int) -> list[uuid.UUID]:
    """The nightly run's keyset walk over every customer (primary key order)."""
    rows = await conn.fetch(
        "SELECT id FROM customers WHERE merged_into IS NULL AND ($1::uuid IS NULL OR id > $1) ORDER BY id LIMIT $2",
        after, limit)
    return [r["id"] for r in rows]


def _monetary_sql(base_param: str, currencies_param: str, rates_param: str) -> tuple[str, str]:
    """The amount of an order in the base currency (NULL without a rate), and the join of the rates."""
    amount = f"o.amount * CASE WHEN o.currency = {base_param} THEN 1 ELSE r.rate END"
    join = (f"LEFT JOIN unnest({currencies_param}::text[], {rates_param}::numeric[]) AS r(currency, rate) "
            "ON r.currency = o.currency")
    return amount, join


async def order_facts(conn: Any, customer_ids: Sequence[uuid.UUID], *, window_start: datetime,
                      recent_start: datetime, baseline_start: datetime, as_of: datetime, base_currency: str,
                      rates: dict[str, Decimal]) -> list[Any]:
    """Per customer with counted orders: last and first order, count, F and M over the RFM window
    (M rounded to 0.01 here, once, for both paths), the orders in the churn's recent and
    baseline windows. Read from ``ix_orders_customer_ordered_at`` alone (it includes amount,
    currency and status)."""
    amount, join = _monetary_sql("$5", "$6", "$7")
    return await conn.fetch(
        f"SELECT o.customer_id, max(o.ordered_at) AS last_at, min(o.ordered_at) AS first_at, count(*) AS orders, "
        f"  count(*) FILTER (WHERE o.ordered_at > $2) AS frequency, "
        f"  round(coalesce(sum({amount}) FILTER (WHERE o.ordered_at > $2), 0), 2) AS monetary, "
        f"  count(*) FILTER (WHERE o.ordered_at > $3 AND o.ordered_at <= $8) AS recent, "
        f"  count(*) FILTER (WHERE o.ordered_at > $4 AND o.ordered_at <= $3) AS baseline "
        f"FROM orders o {join} "
        f"WHERE o.customer_id = ANY($1::uuid[]) AND {_COUNTED} GROUP BY o.customer_id",
        list(customer_ids), window_start, recent_start, baseline_start, base_currency, list(rates),
        [rates[c] for c in rates], as_of)


async def ticket_facts(conn: Any, customer_ids: Sequence[uuid.UUID], *, recent_start: datetime) -> list[Any]:
    """Open tickets and tickets breached in the recent window, per customer (the projection
    customer-svc keeps of ticket-svc's tickets)."""
    return await conn.fetch(
        "SELECT t.customer_id, count(*) FILTER (WHERE t.status NOT IN ('solved', 'closed')) AS open, "
        "  count(*) FILTER (WHERE t.last_breached_at > $2) AS breached "
        f"FROM customer_tickets t WHERE t.customer_id = ANY($1::uuid[]) AND {_CONTACT} GROUP BY t.customer_id",
        list(customer_ids), recent_start)


async def recent_tickets(conn: Any, customer_ids: Sequence[uuid.UUID], *, since: datetime) -> list[Any]:
    """The tickets repeated contacts are judged on (created since ``since``: the recent window
    and the repeat window before it)."""
    return await conn.fetch(
        "SELECT t.customer_id, t.created_at, t.type, t.tags, t.reopened FROM customer_tickets t "
        f"WHERE t.customer_id = ANY($1::uuid[]) AND t.created_at > $2 AND {_CONTACT}",
        list(customer_ids), since)


async def survey_facts(conn: Any, customer_ids: Sequence[uuid.UUID], *, recent_start: datetime,
                       as_of: datetime) -> list[Any]:
    """Bad CSAT answers (1-2) in the recent window and the last NPS score, per customer."""
    return await conn.fetch(
        "SELECT customer_id, "
        "  count(*) FILTER (WHERE kind = 'csat' AND rating <= 2 AND answered_at > $2 AND answered_at <= $3) AS bad_csat, "
        "  (array_agg(score ORDER BY answered_at DESC) FILTER (WHERE kind = 'nps' AND score IS NOT NULL "
        "     AND answered_at <= $3))[1] AS last_nps "
        "FROM surveys WHERE customer_id = ANY($1::uuid[]) AND answered_at IS NOT NULL GROUP BY customer_id",
        list(customer_ids), recent_start, as_of)


# --------------------------------------------------------------------------- boundaries


async def compute_boundaries(conn: Any, *, as_of: datetime, window_start: datetime, base_currency: str,
                             rates: dict[str, Decimal]) -> Any:
    """The cut points of R, F and M over every customer with counted orders, in one aggregate
    (one pass, three sorts; docs/customers.md "Quintile scores"). The per-customer values are
    the expressions :func:`order_facts` computes, so stored cuts and scored values agree."""
    amount, join = _monetary_sql("$3", "$4", "$5")
    return await conn.fetchrow(
        "WITH per AS ("
        "  SELECT greatest(0, floor(extract(epoch FROM ($1 - max(o.ordered_at))) / 86400))::int AS recency_days, "
        "    count(*) FILTER (WHERE o.ordered_at > $2) AS frequency, "
        f"    round(coalesce(sum({amount}) FILTER (WHERE o.ordered_at > $2), 0), 2) AS monetary "
        f"  FROM orders o {join} WHERE {_COUNTED} GROUP BY o.customer_id) "
        "SELECT percentile_disc(ARRAY[0.2, 0.4, 0.6, 0.8]) WITHIN GROUP (ORDER BY recency_days DESC) AS r_cuts, "
        "  percentile_disc(ARRAY[0.2, 0.4, 0.6, 0.8]) WITHIN GROUP (ORDER BY frequency) AS f_cuts, "
        "  percentile_disc(ARRAY[0.2, 0.4, 0.6, 0.8]) WITHIN GROUP (ORDER BY monetary) AS m_cuts, "
        "  count(*) AS population FROM per",
        as_of, window_start, base_currency, list(rates), [rates[c] for c in rates])


async def stored_boundaries(conn: Any) -> Any:
    return await conn.fetchrow("SELECT boundaries, population, as_of, computed_at FROM rfm_boundaries WHERE id = 1")


async def store_boundaries(conn: Any, *, boundaries: dict[str, Any] | None, population: int, as_of: datetime) -> None:
    """Keep the cut points of a full run (or of the first need); a base too small to rank keeps none."""
    if boundaries is None:
        await conn.execute("DELETE FROM rfm_boundaries WHERE id = 1")
        return
    await conn.execute(
        "INSERT INTO rfm_boundaries (id, boundaries, population, as_of, computed_at) VALUES (1, $1, $2, $3, now()) "
        "ON CONFLICT (id) DO UPDATE SET boundaries = EXCLUDED.boundaries, population = EXCLUDED.population, "
        "as_of = EXCLUDED.as_of, computed_at = now()", boundaries, population, as_of)


# --------------------------------------------------------------------------- stored scores


async def lock_insights(conn: Any, customer_ids: Sequence[uuid.UUID]) -> list[Any]:
    """The stored scores of these customers, row-locked in id order (rows created when missing):
    two replicas scoring one customer take turns, and the second sees the episode the first
    opened, so an event is never emitted twice."""
    ids = sorted(set(customer_ids))
    await conn.execute("INSERT INTO customer_insights (customer_id) SELECT unnest($1::uuid[]) "
                       "ON CONFLICT (customer_id) DO NOTHING", ids)
    return await conn.fetch(
        "SELECT customer_id, segment, r, f, m, churn_score, churn_episode_active, churn_at FROM customer_insights "
        "WHERE customer_id = ANY($1::uuid[]) ORDER BY customer_id FOR UPDATE", ids)


async def scored_at(conn: Any, customer_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, datetime | None]:
    """When each customer was last scored (the full run's read-ahead compares it under the lock)."""
    rows = await conn.fetch("SELECT customer_id, churn_at FROM customer_insights WHERE customer_id = ANY($1::uuid[])",
                            list(customer_ids))
    return {r["customer_id"]: r["churn_at"] for r in rows}


async def write_insights(conn: Any, rows: Sequence[dict[str, Any]], *, at: datetime) -> None:
    """One statement for a batch of results (the nightly run writes a million)."""
    if not rows:
        return
    col = {name: [row[name] for row in rows] for name in rows[0]}
    await conn.execute(
        "UPDATE customer_insights ci SET recency_days = v.recency_days, frequency = v.frequency, "
        "  monetary = v.monetary, r = v.r, f = v.f, m = v.m, segment = v.segment, rfm_at = $13, "
        "  churn_score = v.churn_score, churn_band = v.churn_band, churn_reasons = v.churn_reasons::jsonb, "
        "  churn_episode_active = v.churn_episode_active, churn_at = $13 "
        "FROM unnest($1::uuid[], $2::int[], $3::int[], $4::numeric[], $5::smallint[], $6::smallint[], "
        "  $7::smallint[], $8::text[], $9::smallint[], $10::text[], $11::text[], $12::boolean[]) "
        "  AS v(customer_id, recency_days, frequency, monetary, r, f, m, segment, churn_score, churn_band, "
        "       churn_reasons, churn_episode_active) "
        "WHERE ci.customer_id = v.customer_id",
        col["customer_id"], col["recency_days"], col["frequency"], col["monetary"], col["r"], col["f"], col["m"],
        col["segment"], col["churn_score"], col["churn_band"],
        [orjson.dumps(reasons).decode() for reasons in col["churn_reasons"]], col["churn_episode_active"], at)


async def insights_of(conn: Any, customer_id: uuid.UUID) -> Any:
    return await conn.fetchrow(
        "SELECT customer_id, recency_days, frequency, monetary, r, f, m, segment, rfm_at, churn_score, churn_band, "
        "churn_reasons, churn_episode_active, churn_at FROM customer_insights WHERE customer_id = $1", customer_id)


async def customer_exists(conn: Any, customer_id: uuid.UUID) -> bool:
    return bool(await conn.fetchval("SELECT EXISTS (SELECT 1 FROM customers WHERE id = $1)", customer_id))


async def segment_counts(conn: Any) -> list[Any]:
    """Scored customers per segment, from ``ix_customer_insights_segment`` alone (a merge deletes
    the merged customer's scores, so no join with customers is needed)."""
    return await conn.fetch(
        "SELECT segment, count(*) AS n FROM customer_insights WHERE segment IS NOT NULL GROUP BY segment")


async def at_risk(conn: Any, *, band: str | None, limit: int, after: tuple[int, uuid.UUID] | None) -> list[Any]:
    """Scored customers by churn score, highest first, keyset on (score, id)."""
    box = codec()
    return [box.customer(r) for r in await conn.fetch(
        "SELECT ci.customer_id, c.name, c.name_enc, c.tier, c.account_owner_id, ci.churn_score, ci.churn_band, ci.churn_reasons, "
        "  ci.churn_episode_active, ci.segment, ci.churn_at "
        "FROM customer_insights ci JOIN customers c ON c.id = ci.customer_id "
        "WHERE ci.churn_score IS NOT NULL AND c.merged_into IS NULL AND ($1::text IS NULL OR ci.churn_band = $1) "
        "  AND ($2::int IS NULL OR (ci.churn_score, ci.customer_id) < ($2, $3::uuid)) "
        "ORDER BY ci.churn_score DESC, ci.customer_id DESC LIMIT $4",
        band, after[0] if after else None, after[1] if after else None, limit)]


# --------------------------------------------------------------------------- settings and runs


async def insight_settings(conn: Any, *, lock: bool = False) -> Any:
    return await conn.fetchrow("SELECT tier_rules, version, updated_at, last_full_run_at FROM insight_settings "
                               "WHERE id = 1" + (" FOR UPDATE" if lock else ""))


async def store_tier_rules(conn: Any, rules: list[dict[str, Any]]) -> Any:
    return await conn.fetchrow(
        "UPDATE insight_settings SET tier_rules = $1, version = version + 1, updated_at = now() WHERE id = 1 "
        "RETURNING tier_rules, version, updated_at, last_full_run_at", rules)


async def note_full_run(conn: Any, at: datetime) -> None:
    await conn.execute("UPDATE insight_settings SET last_full_run_at = $1 WHERE id = 1", at)


_RUN_COLUMNS = ("id, status, trigger, scheduled_for, requested_by, as_of, created_at, started_at, finished_at, "
                "customers_scored, failure")


async def insert_run(conn: Any, *, run_id: uuid.UUID, trigger: str, requested_by: str | None = None,
                     scheduled_for: datetime | None = None) -> Any:
    """A queued run; None when the scheduled instant has its run already (one per night across replicas)."""
    return await conn.fetchrow(
        "INSERT INTO insight_runs (id, trigger, requested_by, scheduled_for) VALUES ($1, $2, $3, $4) "
        f"ON CONFLICT (scheduled_for) DO NOTHING RETURNING {_RUN_COLUMNS}",
        run_id, trigger, requested_by, scheduled_for)


async def get_run(conn: Any, run_id: uuid.UUID) -> Any:
    return await conn.fetchrow(f"SELECT {_RUN_COLUMNS} FROM insight_runs WHERE id = $1", run_id)


async def claim_run(conn: Any, *, lease_s: float) -> Any:
    """The oldest queued run, or a running one whose replica stopped renewing it."""
    return await conn.fetchrow(
        "UPDATE insight_runs r SET status = 'running', started_at = coalesce(r.started_at, clock_timestamp()), "
        "  leased_until = clock_timestamp() + make_interval(secs => $1) "
        "WHERE r.id = (SELECT id FROM insight_runs WHERE status = 'queued' "
        "  OR (status = 'running' AND leased_until < clock_timestamp()) ORDER BY created_at LIMIT 1 "
        "  FOR UPDATE SKIP LOCKED) "
        f"RETURNING {', '.join('r.' + c for c in _RUN_COLUMNS.split(', '))}", lease_s)


async def renew_run(conn: Any, run_id: uuid.UUID, *, scored: int, lease_s: float, as_of: datetime) -> None:
    await conn.execute(
        "UPDATE insight_runs SET customers_scored = $2, as_of = $4, "
        "leased_until = clock_timestamp() + make_interval(secs => $3) WHERE id = $1", run_id, scored, lease_s, as_of)


async def finish_run(conn: Any, run_id: uuid.UUID, *, status: str, scored: int, failure: str | None) -> None:
    await conn.execute(
        "UPDATE insight_runs SET status = $2, customers_scored = $3, failure = $4, finished_at = clock_timestamp(), "
        "leased_until = NULL WHERE id = $1", run_id, status, scored, failure)


async def last_scheduled_run(conn: Any) -> datetime | None:
    return await conn.fetchval("SELECT max(scheduled_for) FROM insight_runs")


async def queued_manual_run(conn: Any) -> Any:
    """A manual run still waiting: asking again joins it rather than queueing a second."""
    return await conn.fetchrow(f"SELECT {_RUN_COLUMNS} FROM insight_runs WHERE status = 'queued' AND trigger = 'manual' "
                               "ORDER BY created_at LIMIT 1")
