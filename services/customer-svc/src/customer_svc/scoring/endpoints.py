"""The insights API: a customer's scores, the segment distribution, the at-risk list, tier rules
(admins write) and full recomputes (admins ask, supervisors and admins follow)."""

from __future__ import annotations

import base64
import uuid
from decimal import Decimal
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request

from helpdesk_common import concurrency
from helpdesk_common.app import runtime_of
from helpdesk_common.concurrency import IfMatch
from helpdesk_common.identity import CurrentPrincipal, Principal, require_user
from helpdesk_common.problems import Problem
from helpdesk_common.responses import JSONBytesResponse

from ..insights.segments import SEGMENTS, SEGMENTS_BY_KEY
from ..insights.tiers import TierRules
from . import repository
from .schemas import (
    AtRiskPage,
    AtRiskQuery,
    CustomerInsights,
    RunCreated,
    RunRead,
    SegmentDistribution,
    TierRulesRead,
    run_read,
)

router = APIRouter(tags=["insights"])
FOLLOW_ROLES = ("admin", "supervisor")


def require_admin(principal: Principal, what: str) -> None:
    if not principal.has_role("admin"):
        raise Problem(403, "forbidden", "Forbidden", f"Only admins {what}.")


def money(value: Decimal | None) -> str:
    """M as stored (two decimals in the base currency)."""
    return f"{(value or Decimal(0)).quantize(Decimal('0.01'))}"


def insights_read(customer_id: uuid.UUID, row: Any) -> dict[str, Any]:
    """A customer's stored scores; nulls before the first scoring."""
    segment = SEGMENTS_BY_KEY.get(row["segment"]) if row is not None and row["segment"] else None
    if row is None:
        return {"customer_id": customer_id,
                "rfm": {"recency_days": None, "frequency": 0, "monetary": money(None), "r": None, "f": None, "m": None,
                        "segment": None, "segment_name": None, "computed_at": None},
                "churn_risk": {"score": None, "band": None, "reasons": [], "episode_active": False,
                               "computed_at": None}}
    return {"customer_id": customer_id,
            "rfm": {"recency_days": row["recency_days"], "frequency": row["frequency"],
                    "monetary": money(row["monetary"]), "r": row["r"], "f": row["f"], "m": row["m"],
                    "segment": row["segment"],
                    "segment_name": {"en": segment.name_en, "zh-CN": segment.name_zh} if segment else None,
                    "computed_at": row["rfm_at"]},
            "churn_risk": {"score": row["churn_score"], "band": row["churn_band"], "reasons": row["churn_reasons"],
                           "episode_active": row["churn_episode_active"], "computed_at": row["churn_at"]}}


def distribution(counts: dict[str, int]) -> tuple[list[dict[str, Any]], int]:
    """Every segment in table order, with its share of the ranked customers (pure)."""
    total = sum(counts.values())
    items = [{"segment": s.key, "name_en": s.name_en, "name_zh": s.name_zh, "count": counts.get(s.key, 0),
              "share": round(counts.get(s.key, 0) / total, 4) if total else 0.0} for s in SEGMENTS]
    return items, total


def encode_risk_cursor(score: int, customer_id: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([score, str(customer_id)])).decode().rstrip("=")


def decode_risk_cursor(cursor: str) -> tuple[int, uuid.UUID]:
    try:
        score, customer_id = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(score, int) or not 0 <= score <= 100:
            raise ValueError("score")
        return score, uuid.UUID(customer_id)
    except Exception as exc:
        raise Problem(400, "invalid-cursor", "Invalid cursor", "The cursor is malformed.") from exc


@router.get("/v1/customers/{customer_id}/insights", response_model=CustomerInsights,
            summary="A customer's RFM scores and segment, churn-risk score and its reasons")
async def customer_insights(request: Request, customer_id: uuid.UUID, principal: CurrentPrincipal) -> JSONBytesResponse:
    require_user(principal)
    async with runtime_of(request).raw_connection() as conn:
        if not await repository.customer_exists(conn, customer_id):
            raise Problem(404, "not-found", "Customer not found", f"No customer {customer_id}.")
        row = await repository.insights_of(conn, customer_id)
    return JSONBytesResponse(insights_read(customer_id, row))


@router.get("/v1/insights/segments", response_model=SegmentDistribution,
            summary="How many ranked customers each RFM segment holds")
async def segments(request: Request, principal: CurrentPrincipal) -> JSONBytesResponse:
    require_user(principal)
    async with runtime_of(request).raw_connection() as conn:
        counts = {r["segment"]: r["n"] for r in await repository.segment_counts(conn)}
        stored = await repository.stored_boundaries(conn)
    items, total = distribution(counts)
    return JSONBytesResponse({"items": items, "total": total,
                              "computed_at": stored["computed_at"] if stored else None})


@router.get("/v1/insights/churn", response_model=AtRiskPage,
            summary="Customers by churn-risk score, highest first (band filter), with their top reasons")
async def at_risk(request: Request, principal: CurrentPrincipal,
                  query: Annotated[AtRiskQuery, Query()]) -> JSONBytesResponse:
    require_user(principal)
    after = decode_risk_cursor(query.cursor) if query.cursor else None
    async with runtime_of(request).raw_connection() as conn:
        rows = await repository.at_risk(conn, band=query.band, limit=query.limit + 1, after=after)
    more = len(rows) > query.limit
    rows = rows[:query.limit]
    items = [{"customer_id": r["customer_id"], "name": r["name"], "tier": r["tier"],
              "account_owner_id": r["account_owner_id"], "score": r["churn_score"], "band": r["churn_band"],
              "episode_active": r["churn_episode_active"], "segment": r["segment"],
              "reasons": (r["churn_reasons"] or [])[:3], "computed_at": r["churn_at"]} for r in rows]
    cursor = encode_risk_cursor(rows[-1]["churn_score"], rows[-1]["customer_id"]) if more and rows else None
    return JSONBytesResponse({"items": items, "next_cursor": cursor})


def rules_read(row: Any) -> dict[str, Any]:
    return {"rules": row["tier_rules"], "version": row["version"], "updated_at": row["updated_at"]}


@router.get("/v1/insights/tier-rules", response_model=TierRulesRead,
            summary="The ordered tier rules (first match sets the tier; none keeps it)")
async def get_tier_rules(request: Request, principal: CurrentPrincipal) -> JSONBytesResponse:
    require_user(principal)
    async with runtime_of(request).raw_connection() as conn:
        row = await repository.insight_settings(conn)
    return JSONBytesResponse(rules_read(row), headers={"ETag": concurrency.etag(row["version"])})


@router.put("/v1/insights/tier-rules", response_model=TierRulesRead,
            summary="Replace the tier rules (admins); they apply at each customer's next scoring and "
                    "at the next full run")
async def put_tier_rules(request: Request, body: TierRules, principal: CurrentPrincipal,
                         if_match: IfMatch = None) -> JSONBytesResponse:
    require_admin(principal, "change tier rules")
    async with runtime_of(request).raw_transaction() as conn:
        current = await repository.insight_settings(conn, lock=True)
        concurrency.check_version(current["version"], if_match, what="tier rules")
        row = await repository.store_tier_rules(conn, body.model_dump(mode="json", exclude_none=True)["rules"])
    return JSONBytesResponse(rules_read(row), headers={"ETag": concurrency.etag(row["version"])})


@router.post("/v1/insights/recompute", response_model=RunCreated, status_code=202,
             summary="Recompute the quintile cut points and rescore every customer now (admins)")
async def recompute(request: Request, principal: CurrentPrincipal) -> JSONBytesResponse:
    require_admin(principal, "start a full recompute")
    async with runtime_of(request).raw_transaction() as conn:
        row = await repository.queued_manual_run(conn)
        if row is None:
            row = await repository.insert_run(conn, run_id=uuid.uuid4(), trigger="manual", requested_by=principal.ref)
    worker = getattr(request.app.state, "insight_worker", None)
    if worker is not None:
        worker.wake_runs.set()
    return JSONBytesResponse({"id": row["id"], "status": row["status"]}, status_code=202,
                             headers={"Location": f"/v1/insights/recompute/{row['id']}"})


@router.get("/v1/insights/recompute/{run_id}", response_model=RunRead,
            summary="A full recompute's status (supervisors and admins)")
async def get_run(request: Request, run_id: uuid.UUID, principal: CurrentPrincipal) -> JSONBytesResponse:
    if not principal.has_role(*FOLLOW_ROLES):
        raise Problem(403, "forbidden", "Forbidden", "Only supervisors and admins follow recomputes.")
    async with runtime_of(request).raw_connection() as conn:
        row = await repository.get_run(conn, run_id)
    if row is None:
        raise Problem(404, "not-found", "Run not found", f"No recompute {run_id}.")
    return JSONBytesResponse(run_read(row))
