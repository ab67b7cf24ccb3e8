"""Assembling the 360 view from one consistent read.

The reads run in one read-only REPEATABLE READ transaction: a few statements on one snapshot, each
bounded by the customer's own rows on an index. Order totals are summed over the customer's
newest ``ORDER_SCAN_LIMIT`` orders on the covering index (an index-only range scan of ~10 entries
for a typical customer) rather than kept as a running aggregate: an aggregate would have to be
corrected by every order update, currency change and merge (and by bulk loads), while the scan
costs ~0.1 ms for a customer with ten orders and ~12 ms for one at the limit (EXPLAIN ANALYZE,
docs/customers.md). A customer beyond the limit is shown with ``complete: false``: the figures
are those of their newest orders.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from helpdesk_common.identity import Principal

from ..customers import service as customers
from ..identities import repository as identities
from ..insights.segments import SEGMENTS_BY_KEY
from ..pii import access
from ..orders.money import MINOR_UNITS, format_amount
from ..ticket_facts.service import TASK_TYPES
from . import repository

#: open tickets and last solved or closed ones listed (each)
RECENT_EACH = 5
#: the window of "solved recently" and of the timings
RECENT_DAYS = 90
#: the window of the CSAT average
CSAT_DAYS = 365
#: the most orders summed for the totals (the customer's newest)
ORDER_SCAN_LIMIT = 10_000
#: orders that do not count for totals (as for RFM)
EXCLUDED_ORDER_STATUSES = ("cancelled", "refunded")


def minutes(value: float | Decimal | None) -> float | None:
    return None if value is None else round(float(value), 1)


def ticket_item(row: Mapping[str, Any]) -> dict[str, Any]:
    return {"id": row["ticket_id"], "number": row["number"], "subject": row["subject"], "status": row["status"],
            "priority": row["priority"], "type": row["type"], "channel": row["channel"],
            "created_at": row["created_at"], "first_response_at": row["first_response_at"],
            "solved_at": row["solved_at"], "closed_at": row["closed_at"]}


def tickets_part(figures: Mapping[str, Any], recent: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    return {
        "open": figures["open"], "total": figures["total"], "solved_recently": figures["solved_recent"],
        "open_tasks": figures["open_tasks"],
        "recent": [ticket_item(r) for r in recent],
        "first_response_minutes": {"median": minutes(figures["first_response_median"]),
                                   "average": minutes(figures["first_response_average"])},
        "resolution_minutes": {"median": minutes(figures["resolution_median"]),
                               "average": minutes(figures["resolution_average"])},
        "window_days": RECENT_DAYS,
    }


def csat_part(figures: Mapping[str, Any]) -> dict[str, Any]:
    average = figures["csat_average"]
    last = figures["csat_last"]
    return {"average": None if average is None else round(float(average), 2), "count": figures["csat_count"],
            "window_days": CSAT_DAYS,
            "last": None if last is None else {"rating": last[0], "comment": last[1], "at": last[2], "ticket_id": last[3]}}


def nps_part(figures: Mapping[str, Any]) -> dict[str, Any]:
    last = figures["nps_last"]
    return {"last": None if last is None else {"score": last[0], "comment": last[1], "at": last[2]}}


def rfm_part(row: Mapping[str, Any]) -> dict[str, Any]:
    segment = SEGMENTS_BY_KEY.get(row["segment"]) if row["segment"] else None
    return {"r": row["r"], "f": row["f"], "m": row["m"], "segment": segment.key if segment else None,
            "segment_name": {"en": segment.name_en, "zh-CN": segment.name_zh} if segment else None,
            "recency_days": row["recency_days"], "frequency": row["frequency"],
            "monetary": None if row["monetary"] is None else str(row["monetary"]), "at": row["rfm_at"]}


def churn_part(row: Mapping[str, Any]) -> dict[str, Any]:
    """The stored score and its reasons as the insight worker wrote them."""
    reasons = row["churn_reasons"]
    return {"score": row["churn_score"], "band": row["churn_band"],
            "reasons": reasons if isinstance(reasons, list) else [], "at": row["churn_at"]}


def orders_part(totals: Sequence[Mapping[str, Any]], last: Mapping[str, Any] | None, *, base_currency: str,
                rates: Mapping[str, Decimal]) -> dict[str, Any]:
    """Counts and amounts per currency; the total in the base currency, converting what has a
    rate (base units per unit), the currencies without one named rather than guessed."""
    scanned = sum(item["scanned"] for item in totals)
    totals = [item for item in totals if item["count"]]
    total = Decimal(0)
    unconverted = []
    for item in totals:
        rate = Decimal(1) if item["currency"] == base_currency else rates.get(item["currency"])
        if rate is None:
            unconverted.append(item["currency"])
        else:
            total += item["amount"] * rate
    return {
        "count": sum(item["count"] for item in totals),
        "total_amount": format_amount(total, base_currency) if base_currency in MINOR_UNITS else str(total),
        "currency": base_currency,
        "by_currency": [{"currency": i["currency"], "count": i["count"],
                         "amount": format_amount(i["amount"], i["currency"])} for i in totals],
        "unconverted_currencies": unconverted,
        "last_at": max((item["last_at"] for item in totals), default=None),
        "last": None if last is None else {
            "id": last["id"], "source": last["source"], "external_id": last["external_id"],
            "ordered_at": last["ordered_at"], "amount": format_amount(last["amount"], last["currency"]),
            "currency": last["currency"], "status": last["status"]},
        "complete": scanned < ORDER_SCAN_LIMIT,
    }


async def view(conn: Any, *, customer_id: uuid.UUID, principal: Principal, base_currency: str,
               rates: Mapping[str, Decimal], now: datetime | None = None) -> dict[str, Any]:
    now = now or datetime.now(UTC)
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        row = customers.live(await repository.customer(conn, customer_id), customer_id)
        identity_rows = (await identities.identities_of(conn, [customer_id]))[customer_id]
        figures = await repository.ticket_figures(conn, customer_id, since=now - timedelta(days=RECENT_DAYS),
                                                  task_types=list(TASK_TYPES))
        recent = await repository.recent_tickets(conn, customer_id, each=RECENT_EACH)
        surveys = await repository.survey_figures(conn, customer_id, csat_since=now - timedelta(days=CSAT_DAYS))
        totals = await repository.order_totals(conn, customer_id, scan_limit=ORDER_SCAN_LIMIT,
                                               excluded=list(EXCLUDED_ORDER_STATUSES))
        last = await repository.last_order(conn, customer_id)
        decided = await access.decide(conn, principal, {customer_id: identity_rows})
    await access.record(conn, principal, decided.revealed, route="customers.overview")  # after the read-only part
    return {
        "customer": customers.to_read(row, decided.identities[customer_id]),
        "organization": None if row["organization_id"] is None else {
            "id": row["organization_id"], "name": row["organization_name"], "tier": row["organization_tier"]},
        "tier": row["tier"],
        "account_owner_id": row["account_owner_id"],
        "tickets": tickets_part(figures, recent),
        "csat": csat_part(surveys),
        "nps": nps_part(surveys),
        "rfm": rfm_part(row),
        "churn_risk": churn_part(row),
        "orders": orders_part(totals, last, base_currency=base_currency, rates=rates),
        "last_contact": {"at": figures["last_contact_at"], "channel": figures["last_contact_channel"]},
    }
