"""The only place with SQL for the 360 view (bare asyncpg). Every query is bounded by one
customer's rows on an index that starts with the customer id; the caller runs them in one
read-only REPEATABLE READ transaction, so the parts agree with each other.

Plans checked with EXPLAIN (docs/customers.md, "The 360 view"): the customer, its organisation
and insights by primary key; tickets on ``ix_customer_tickets_customer_created`` (and the
partial ``ix_customer_tickets_customer_open`` for the open list); surveys on
``ix_surveys_customer``; orders on the covering ``ix_orders_customer_ordered_at`` (index-only).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from ..customers.repository import COLUMNS
from ..pii.codec import codec

#: a ticket the system opened about the customer (care, follow-up: channel ``system``, as the churn
#: score's contact rule says) rather than one they raised
_TASK = "(t.channel IS NOT DISTINCT FROM 'system' OR (t.type IS NOT NULL AND t.type = ANY($3::text[])))"


async def customer(conn: Any, customer_id: uuid.UUID) -> Any:
    """The customer with its organisation (id, name, tier) and stored insight scores, or None."""
    columns = ", ".join(f"c.{name}" for name in COLUMNS.split(", "))
    return codec().customer_optional(await conn.fetchrow(
        f"SELECT {columns}, o.name AS organization_name, o.tier AS organization_tier, "
        "i.r, i.f, i.m, i.segment, i.recency_days, i.frequency, i.monetary, i.rfm_at, "
        "i.churn_score, i.churn_band, i.churn_reasons, i.churn_at "
        "FROM customers c LEFT JOIN organizations o ON o.id = c.organization_id "
        "LEFT JOIN customer_insights i ON i.customer_id = c.id WHERE c.id = $1", customer_id))


async def ticket_figures(conn: Any, customer_id: uuid.UUID, *, since: datetime, task_types: list[str]) -> Any:
    """Counts, timings over ``since`` and the last contact over the customer's tickets (merged
    and soft-deleted tickets left out; system tasks counted apart). Minutes as doubles; the median is continuous."""
    return await conn.fetchrow(
        "WITH t AS (SELECT t.*, NOT " + _TASK + " AS own, COALESCE(t.solved_at, t.closed_at) AS resolved_at, "
        "GREATEST(t.last_customer_message_at, CASE WHEN NOT " + _TASK + " THEN t.created_at END) AS contact_at "
        "FROM customer_tickets t WHERE t.customer_id = $1 AND t.merged_into IS NULL AND t.deleted_at IS NULL) "
        "SELECT count(*) FILTER (WHERE own) AS total, "
        "count(*) FILTER (WHERE own AND status NOT IN ('solved', 'closed')) AS open, "
        "count(*) FILTER (WHERE own AND status IN ('solved', 'closed') AND resolved_at >= $2) AS solved_recent, "
        "count(*) FILTER (WHERE NOT own AND status NOT IN ('solved', 'closed')) AS open_tasks, "
        "percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM first_response_at - created_at) / 60) "
        "  FILTER (WHERE own AND created_at >= $2 AND first_response_at IS NOT NULL) AS first_response_median, "
        "avg(extract(epoch FROM first_response_at - created_at) / 60) "
        "  FILTER (WHERE own AND created_at >= $2 AND first_response_at IS NOT NULL) AS first_response_average, "
        "percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM resolved_at - created_at) / 60) "
        "  FILTER (WHERE own AND status IN ('solved', 'closed') AND resolved_at >= $2) AS resolution_median, "
        "avg(extract(epoch FROM resolved_at - created_at) / 60) "
        "  FILTER (WHERE own AND status IN ('solved', 'closed') AND resolved_at >= $2) AS resolution_average, "
        "max(contact_at) AS last_contact_at, "
        "(array_agg(CASE WHEN last_customer_message_at = contact_at THEN last_customer_channel ELSE channel END "
        "  ORDER BY contact_at DESC) FILTER (WHERE contact_at IS NOT NULL))[1] AS last_contact_channel "
        "FROM t", customer_id, since, task_types)


_TICKET_COLUMNS = ("ticket_id, number, subject, status, priority, type, channel, created_at, solved_at, closed_at, "
                   "first_response_at")


async def recent_tickets(conn: Any, customer_id: uuid.UUID, *, each: int) -> list[Any]:
    """The newest ``each`` open tickets (the partial index of open tickets), then the ``each``
    last solved or closed ones, by when they were solved or closed."""
    return await conn.fetch(
        f"(SELECT {_TICKET_COLUMNS}, true AS open FROM customer_tickets WHERE customer_id = $1 "
        "AND status NOT IN ('solved', 'closed') AND merged_into IS NULL AND deleted_at IS NULL ORDER BY created_at DESC, ticket_id DESC "
        "LIMIT $2) UNION ALL "
        f"(SELECT {_TICKET_COLUMNS}, false AS open FROM customer_tickets WHERE customer_id = $1 "
        "AND status IN ('solved', 'closed') AND merged_into IS NULL AND deleted_at IS NULL "
        "ORDER BY COALESCE(closed_at, solved_at, created_at) DESC, ticket_id DESC LIMIT $2)", customer_id, each)


async def survey_figures(conn: Any, customer_id: uuid.UUID, *, csat_since: datetime) -> Any:
    """The CSAT average and count since ``csat_since``, the last CSAT answer and the last NPS answer
    (each a tuple whose second item is the comment, decrypted here)."""
    row = await conn.fetchrow(
        "SELECT (SELECT avg(rating) FROM surveys WHERE customer_id = $1 AND kind = 'csat' AND status = 'answered' "
        "        AND answered_at >= $2) AS csat_average, "
        "       (SELECT count(*) FROM surveys WHERE customer_id = $1 AND kind = 'csat' AND status = 'answered' "
        "        AND answered_at >= $2) AS csat_count, "
        "       (SELECT row(rating, comment, answered_at, ticket_id, comment_enc) FROM surveys WHERE customer_id = $1 "
        "        AND kind = 'csat' AND status = 'answered' ORDER BY answered_at DESC LIMIT 1) AS csat_last, "
        "       (SELECT row(score, comment, answered_at, comment_enc) FROM surveys WHERE customer_id = $1 "
        "        AND kind = 'nps' AND status = 'answered' ORDER BY answered_at DESC LIMIT 1) AS nps_last",
        customer_id, csat_since)
    out = dict(row)
    box = codec()
    for name in ("csat_last", "nps_last"):
        last = None if out[name] is None else tuple(out[name])
        if last is not None:  # (..., comment, ..., comment_enc): the comment in plaintext, no comment_enc
            out[name] = (last[0], box.comment_of(last[1], last[-1]), *last[2:-1])
    return out


async def order_totals(conn: Any, customer_id: uuid.UUID, *, scan_limit: int, excluded: list[str]) -> list[Any]:
    """Per currency: the orders that count (not ``excluded`` statuses), their amount and the last
    one's time, over the customer's ``scan_limit`` newest orders, and how many orders of the
    currency were scanned. An index-only range of the covering index, read in its own order (the
    ``customer_id`` in the ORDER BY lets the planner see that, instead of sorting a heavy buyer's
    orders); measured at ~12 ms for a customer at the limit, ~0.1 ms for ten orders."""
    return await conn.fetch(
        "SELECT currency, count(*) FILTER (WHERE counts) AS count, "
        "       COALESCE(sum(amount) FILTER (WHERE counts), 0) AS amount, "
        "       max(ordered_at) FILTER (WHERE counts) AS last_at, count(*) AS scanned "
        "FROM (SELECT currency, amount, ordered_at, status <> ALL($3::text[]) AS counts FROM orders "
        "      WHERE customer_id = $1 ORDER BY customer_id, ordered_at DESC, id DESC LIMIT $2) o "
        "GROUP BY currency ORDER BY currency", customer_id, scan_limit, excluded)


async def last_order(conn: Any, customer_id: uuid.UUID) -> Any:
    return await conn.fetchrow(
        "SELECT id, source, external_id, ordered_at, amount, currency, status FROM orders WHERE customer_id = $1 "
        "ORDER BY ordered_at DESC, id DESC LIMIT 1", customer_id)
