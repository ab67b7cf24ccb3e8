"""The report endpoints: trends, breakdown, leaderboard, SLA compliance and the at-risk list.

Each one scopes the caller first (access.py: 403 for channels, 404 for a team or agent outside the
scope, 503 while ticket-svc cannot say who is in which team), validates its parameters into 422
problems that name them, reads the rollups in one or two statements, and answers JSON or, with
``format=csv|xlsx``, the same rows as a formula-safe download.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from helpdesk_common.app import runtime_of
from helpdesk_common.identity import CurrentPrincipal
from helpdesk_common.responses import JSONBytesResponse
from helpdesk_common.validation import AwareUtcDatetime

from .. import access
from ..kpis.service import zone_names
from . import catalogue, formats, schemas, service

router = APIRouter(prefix="/v1/analytics", tags=["analytics"])

MetricParam = Annotated[str, Query(max_length=64, description="a metric of the catalogue (docs/metrics.md, API)",
                                   json_schema_extra={"enum": catalogue.metric_names()})]
TzParam = Annotated[str, Query(min_length=1, max_length=64, description="IANA zone of the buckets, e.g. Asia/Shanghai",
                               json_schema_extra={"enum": zone_names()})]
FromParam = Annotated[AwareUtcDatetime | None, Query(alias="from", description="range start (RFC 3339, inclusive)")]
ToParam = Annotated[AwareUtcDatetime | None, Query(alias="to", description="range end (RFC 3339, exclusive)")]
ByParam = Annotated[str | None, Query(max_length=32, description="split by a dimension",
                                      json_schema_extra={"enum": list(catalogue.DIMENSIONS)})]
FormatParam = Annotated[str, Query(max_length=8, description="json (default), csv or xlsx",
                                   json_schema_extra={"enum": list(formats.FORMATS)})]
TeamParam = Annotated[uuid.UUID | None, Query(description="only this team's figures")]
AgentParam = Annotated[str | None, Query(min_length=1, max_length=128, description="only this agent's figures")]


def _format(value: str) -> str:
    return service.choose("format", value, formats.FORMATS)


def _dimension(by: str | None) -> str | None:
    return None if by is None else service.choose("by", by, catalogue.DIMENSIONS)


def _answer(fmt: str, name: str, body: dict[str, Any], rows: Any) -> Response:
    if fmt == "json":
        return JSONBytesResponse(body)
    header, data = rows(body)
    return formats.download(fmt, name=name, header=header, rows=data)


@router.get("/trends", response_model=schemas.TrendsRead, responses=formats.DOWNLOAD_RESPONSES,
             summary="A metric per time bucket in the caller's zone")
async def get_trends(
    request: Request, principal: CurrentPrincipal, metric: MetricParam,
    interval: Annotated[str, Query(max_length=16, json_schema_extra={"enum": ["hour", "day", "week", "month"]})] = "day",
    tz: TzParam = "UTC", start: FromParam = None, end: ToParam = None, by: ByParam = None,
    top: Annotated[int, Query(ge=1, le=50, description="series kept when split; the rest is 'other'")] = 10,
    compare: Annotated[str | None, Query(max_length=16, description="'previous' adds the previous period",
                                         json_schema_extra={"enum": ["previous"]})] = None,
    team_id: TeamParam = None, agent_id: AgentParam = None, format: FormatParam = "json",
) -> Response:
    scope = await access.caller_scope(request, principal)
    fmt = _format(format)
    chosen = service.parse_metric(metric)
    dim = _dimension(by)
    if compare is not None:
        service.choose("compare", compare, ["previous"])
    win = service.window(start, end, interval, service.parse_zone(tz), now=datetime.now(UTC))
    selection = access.filtered_selection(scope, team_id=team_id, agent_id=agent_id)
    by_values = None
    if dim is not None:
        if team_id is not None or agent_id is not None:
            raise service.invalid("by", "cannot be combined with team_id or agent_id: the rollups hold one "
                                        "dimension at a time", "cross_field")
        by_values = access.visible_values(scope, dim)
    async with runtime_of(request).raw_connection() as conn:
        body = await service.trends(conn, metric=chosen, win=win, selection=selection, by=dim, by_values=by_values,
                                    top=top, compare=compare is not None)
    return _answer(fmt, f"trends-{chosen.name}", body, service.trend_rows)


@router.get("/breakdown", response_model=schemas.BreakdownRead, responses=formats.DOWNLOAD_RESPONSES,
             summary="A metric per value of a dimension")
async def get_breakdown(
    request: Request, principal: CurrentPrincipal, metric: MetricParam,
    by: Annotated[str, Query(max_length=32, json_schema_extra={"enum": list(catalogue.DIMENSIONS)})],
    tz: TzParam = "UTC", start: FromParam = None, end: ToParam = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100, format: FormatParam = "json",
) -> Response:
    scope = await access.caller_scope(request, principal)
    fmt = _format(format)
    chosen = service.parse_metric(metric)
    dim = _dimension(by)
    assert dim is not None
    win = service.window(start, end, "day", service.parse_zone(tz), now=datetime.now(UTC))
    values = access.visible_values(scope, dim)
    async with runtime_of(request).raw_connection() as conn:
        body = await service.breakdown(conn, metric=chosen, by=dim, values=values, start=win.start, end=win.end,
                                       tz=win.zone.key, limit=limit)
    return _answer(fmt, f"breakdown-{chosen.name}-{dim}", body, service.breakdown_rows)


@router.get("/leaderboard", response_model=schemas.LeaderboardRead, responses=formats.DOWNLOAD_RESPONSES,
             summary="Agents or teams ranked by a metric")
async def get_leaderboard(
    request: Request, principal: CurrentPrincipal, metric: MetricParam,
    entity: Annotated[str, Query(max_length=16, json_schema_extra={"enum": ["agent", "team"]})] = "agent",
    period: Annotated[str, Query(max_length=16, json_schema_extra={"enum": list(service.PERIODS)})] = "7d",
    tz: TzParam = "UTC",
    limit: Annotated[int, Query(ge=1, le=500)] = 20,
    min_n: Annotated[int, Query(ge=1, le=1_000_000, description="leave out entities with fewer")] = 1,
    format: FormatParam = "json",
) -> Response:
    scope = await access.caller_scope(request, principal)
    fmt = _format(format)
    chosen = service.parse_metric(metric)
    service.choose("entity", entity, ["agent", "team"])
    zone = service.parse_zone(tz)
    start, end = service.period_range(period, now=datetime.now(UTC), zone=zone)
    values = access.visible_values(scope, entity)
    async with runtime_of(request).raw_connection() as conn:
        body = await service.leaderboard(conn, metric=chosen, entity=entity, values=values, period=period,
                                         start=start, end=end, tz=zone.key, limit=limit, min_n=min_n)
    return _answer(fmt, f"leaderboard-{chosen.name}-{entity}", body, service.leaderboard_rows)


@router.get("/sla", response_model=schemas.SlaRead, responses=formats.DOWNLOAD_RESPONSES,
             summary="SLA compliance per policy, metric and step")
async def get_sla(
    request: Request, principal: CurrentPrincipal, tz: TzParam = "UTC", start: FromParam = None,
    end: ToParam = None, by: ByParam = None, team_id: TeamParam = None, agent_id: AgentParam = None,
    format: FormatParam = "json",
) -> Response:
    scope = await access.caller_scope(request, principal)
    fmt = _format(format)
    dim = _dimension(by)
    win = service.window(start, end, "day", service.parse_zone(tz), now=datetime.now(UTC))
    if dim is not None:
        if team_id is not None or agent_id is not None:
            raise service.invalid("by", "cannot be combined with team_id or agent_id", "cross_field")
        rollup_dim, values = dim, access.visible_values(scope, dim)
    else:
        selection = access.filtered_selection(scope, team_id=team_id, agent_id=agent_id)
        rollup_dim, values = selection.dim, selection.values
    async with runtime_of(request).raw_connection() as conn:
        body = await service.sla(conn, dim=rollup_dim, values=values, by=dim, start=win.start, end=win.end,
                                 tz=win.zone.key)
    return _answer(fmt, "sla-compliance", body, service.sla_rows)


@router.get("/at-risk", response_model=schemas.AtRiskRead, responses=formats.DOWNLOAD_RESPONSES,
             summary="Open tickets about to breach, and overdue")
async def get_at_risk(
    request: Request, principal: CurrentPrincipal, limit: Annotated[int, Query(ge=1, le=500)] = 50,
    team_id: TeamParam = None, agent_id: AgentParam = None, format: FormatParam = "json",
) -> Response:
    scope = await access.caller_scope(request, principal)
    fmt = _format(format)
    tickets = access.ticket_scope(scope, team_id=team_id, agent_id=agent_id)
    async with runtime_of(request).raw_connection() as conn:
        body = await service.at_risk(conn, now=datetime.now(UTC), limit=limit, scope=tickets)
    return _answer(fmt, "at-risk", body, service.at_risk_rows)
