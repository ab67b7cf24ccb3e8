"""Business calendars: admins write, users read and compute due times, channels get 403."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request, Response

from helpdesk_common.app import runtime_of
from helpdesk_common.identity import CurrentPrincipal
from helpdesk_common.problems import Problem
from helpdesk_common.responses import JSONBytesResponse

from ..calendars.schemas import CalendarIn, DueIn, DueOut
from ..http import (DEFAULT, Cursor, IdempotencyKey, Limit, decode_time_cursor, encode_cursor, etag,
                    expected_versions, require_admin, require_reader)
from ..timers import repository as timers
from ..idempotency import service as idempotency
from . import publishing, repository, service
from .schemas import CalendarList, CalendarRead, TeamCalendarIn, TeamCalendarRead

router = APIRouter(prefix="/v1/sla/calendars", tags=["sla calendars"])
teams_router = APIRouter(prefix="/v1/sla/teams", tags=["sla calendars"])


@router.post("", response_model=CalendarRead, status_code=201, summary="Create a business calendar")
async def create_calendar(request: Request, body: CalendarIn, principal: CurrentPrincipal,
                          idempotency_key: IdempotencyKey = None) -> JSONBytesResponse:
    require_admin(principal)
    async with runtime_of(request).transaction() as conn:
        replayed = await idempotency.replay_or_claim(conn, caller=principal.ref, key=idempotency_key,
                                                     scope="calendar.create", body=body)
        if replayed is not None:
            return JSONBytesResponse(replayed, status_code=201, headers={
                "Idempotent-Replayed": "true", "ETag": etag(replayed["version"]),
                "Location": f"{request.url.path}/{replayed['id']}"})
        calendar = await service.create(conn, body=body)
        await publishing.publish_default_once(conn)
        await idempotency.remember(conn, caller=principal.ref, key=idempotency_key, response=calendar)
    return JSONBytesResponse(calendar, status_code=201, headers={"ETag": etag(calendar["version"]),
                                                                  "Location": f"/v1/sla/calendars/{calendar['id']}"})


@router.get("", response_model=CalendarList, summary="Calendars, oldest first")
async def list_calendars(request: Request, principal: CurrentPrincipal, limit: Limit = DEFAULT,
                         cursor: Cursor = None) -> JSONBytesResponse:
    require_reader(principal)
    after = decode_time_cursor(cursor) if cursor else None
    async with runtime_of(request).engine.connect() as conn:
        rows = await repository.page(conn, after=after, limit=limit)
    more = len(rows) > limit
    rows = rows[:limit]
    return JSONBytesResponse({"items": [service.as_read(r) for r in rows],
                              "next_cursor": encode_cursor(rows[-1].created_at, rows[-1].id) if more else None})


@router.get("/{calendar_id}", response_model=CalendarRead, summary="One calendar")
async def get_calendar(request: Request, calendar_id: uuid.UUID, principal: CurrentPrincipal) -> JSONBytesResponse:
    require_reader(principal)
    async with runtime_of(request).engine.connect() as conn:
        row = await repository.get(conn, calendar_id)
    if row is None:
        raise service.not_found()
    return JSONBytesResponse(service.as_read(row), headers={"ETag": etag(row.version)})


@router.put("/{calendar_id}", response_model=CalendarRead, summary="Replace a calendar (If-Match: its version); timers on it are recalculated")
async def replace_calendar(request: Request, calendar_id: uuid.UUID, body: CalendarIn,
                           principal: CurrentPrincipal) -> JSONBytesResponse:
    require_admin(principal)
    async with runtime_of(request).transaction() as conn:
        row = await service.replace(conn, calendar_id=calendar_id, body=body,
                                    expected_versions=expected_versions(request))
        await publishing.publish_users_of(conn, calendar_id)
        await timers.bump_generation(conn)
    return JSONBytesResponse(service.as_read(row), headers={"ETag": etag(row.version)})


@router.post("/{calendar_id}/due", response_model=DueOut, summary="When N business minutes from a start end")
async def due(request: Request, calendar_id: uuid.UUID, body: DueIn, principal: CurrentPrincipal) -> JSONBytesResponse:
    require_reader(principal)
    async with runtime_of(request).engine.connect() as conn:
        row = await repository.get(conn, calendar_id)
    if row is None:
        raise service.not_found()
    return JSONBytesResponse({"due_at": service.due(row, start=body.start, minutes=body.minutes)})


@teams_router.put("/{team_id}/calendar", response_model=TeamCalendarRead,
                  summary="Set the calendar a team's business-time targets count in; its live timers re-target")
async def set_team_calendar(request: Request, team_id: uuid.UUID, body: TeamCalendarIn,
                            principal: CurrentPrincipal) -> JSONBytesResponse:
    require_admin(principal)
    async with runtime_of(request).transaction() as conn:
        answer = await service.set_team_calendar(conn, team_id=team_id, calendar_id=body.calendar_id)
        await publishing.publish_default_once(conn)
        await publishing.publish_team(conn, team_id)
        await timers.bump_generation(conn)
    return JSONBytesResponse(answer)


@teams_router.get("/{team_id}/calendar", response_model=TeamCalendarRead, summary="A team's calendar")
async def get_team_calendar(request: Request, team_id: uuid.UUID, principal: CurrentPrincipal) -> JSONBytesResponse:
    require_reader(principal)
    async with runtime_of(request).engine.connect() as conn:
        row = await repository.get_team_calendar(conn, team_id)
    if row is None:
        raise Problem(404, "not-found", "Not found", "The team has no calendar of its own.")
    return JSONBytesResponse({"team_id": row.team_id, "calendar_id": row.calendar_id, "updated_at": row.updated_at})


@teams_router.delete("/{team_id}/calendar", status_code=204,
                     summary="Remove a team's calendar (its business targets without a calendar count 24x7)")
async def delete_team_calendar(request: Request, team_id: uuid.UUID, principal: CurrentPrincipal) -> Response:
    require_admin(principal)
    async with runtime_of(request).transaction() as conn:
        if not await repository.delete_team_calendar(conn, team_id):
            raise Problem(404, "not-found", "Not found", "The team has no calendar of its own.")
        await publishing.publish_team(conn, team_id)
        await timers.bump_generation(conn)
    return Response(status_code=204)
