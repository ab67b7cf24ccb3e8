"""Deliveries: read by admins and supervisors (they see where every message went, webhooks
included, across all tickets; agents see the status of their messages on the ticket, in
ticket-svc, which checks their access to it), retried by the same roles. Channel keys: 403."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request

from helpdesk_common.app import runtime_of
from helpdesk_common.identity import CurrentPrincipal, Principal, require_user
from helpdesk_common.openapi import problem_responses
from helpdesk_common.pagination import DEFAULT_LIMIT, MAX_LIMIT, decode_cursor, page
from helpdesk_common.responses import JSONBytesResponse

from . import repository, service
from .schemas import DeliveryDetail, DeliveryList, DeliveryRead, Kind, Status

router = APIRouter(prefix="/v1/deliveries", tags=["deliveries"])

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
Cursor = Annotated[str | None, Query(max_length=512, description="next_cursor of the previous page")]
Channel = Annotated[str | None, Query(min_length=1, max_length=40, pattern=r"^[a-z][a-z0-9_-]*$")]


def _staff(principal: Principal) -> None:
    require_user(principal, "admin", "supervisor")


@router.get("", response_model=DeliveryList, summary="Deliveries, newest first")
async def list_deliveries(request: Request, principal: CurrentPrincipal, ticket_id: uuid.UUID | None = None,
                          status: Status | None = None, channel: Channel = None, kind: Kind | None = None,
                          subscription_id: uuid.UUID | None = None, limit: Limit = DEFAULT_LIMIT,
                          cursor: Cursor = None) -> JSONBytesResponse:
    _staff(principal)
    after = decode_cursor(cursor) if cursor else None
    async with runtime_of(request).raw_connection() as conn:
        rows = await repository.page(conn, after=after, limit=limit, ticket_id=ticket_id, status=status,
                                     channel=channel, kind=kind, subscription_id=subscription_id)
    rows, next_cursor = page(rows, limit)
    return JSONBytesResponse({"items": [service.as_read(r) for r in rows], "next_cursor": next_cursor})


@router.get("/{delivery_id:uuid}", response_model=DeliveryDetail, summary="One delivery with its attempts")
async def get_delivery(request: Request, delivery_id: uuid.UUID, principal: CurrentPrincipal) -> JSONBytesResponse:
    _staff(principal)
    async with runtime_of(request).raw_connection() as conn:
        row = await repository.get(conn, delivery_id)
        if row is None:
            raise service.not_found()
        attempts = await repository.attempts_of(conn, delivery_id)
    return JSONBytesResponse({**service.as_read(row), "attempts_log": [service.attempt_as_read(a) for a in attempts]})


@router.post("/{delivery_id:uuid}/retry", response_model=DeliveryRead,
             responses=problem_responses(409, _409="The delivery is queued, in flight or sent (`delivery-not-dead`)."),
             summary="Queue a failed or undeliverable delivery again (a fresh budget of attempts)")
async def retry_delivery(request: Request, delivery_id: uuid.UUID, principal: CurrentPrincipal) -> JSONBytesResponse:
    _staff(principal)
    runtime = runtime_of(request)
    async with runtime.raw_transaction() as conn:
        delivery = await service.retry(conn, delivery_id=delivery_id, settings=request.app.state.settings,
                                       outbox=runtime.parts.outbox)
    from . import dispatcher

    dispatcher.wake_all()
    return JSONBytesResponse(delivery)
