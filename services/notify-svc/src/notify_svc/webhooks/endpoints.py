"""Webhook subscriptions and their delivery logs: admins only (they choose where our events go,
and read who gets them). One request, one transaction. The secret is in the answers of create
and rotate-secret, and nowhere else: not in reads, lists, replays of a create, nor logs.

The delivery log is the deliveries domain's rows seen through one subscription (the same shapes
as ``/v1/deliveries``); a replay sends one of them again (deliveries/service.py,
``replay_webhook``)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response

from helpdesk_common.app import runtime_of
from helpdesk_common.concurrency import IfMatch, etag
from helpdesk_common.identity import CurrentPrincipal, Principal, require_user
from helpdesk_common.openapi import problem_responses
from helpdesk_common.pagination import DEFAULT_LIMIT, MAX_LIMIT, decode_cursor, page
from helpdesk_common.responses import JSONBytesResponse

from ..deliveries import repository as deliveries_repository
from ..deliveries import service as deliveries
from ..deliveries.schemas import DeliveryDetail, DeliveryList, DeliveryRead, Status
from . import repository, service
from .schemas import WebhookCreate, WebhookList, WebhookPatch, WebhookRead, WebhookWithSecret

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
Cursor = Annotated[str | None, Query(max_length=512, description="next_cursor of the previous page")]
IdempotencyKey = Annotated[
    str | None,
    Header(alias="Idempotency-Key", min_length=1, max_length=255,
           description="Repeat a create safely: the same key and body answer the subscription created "
                       "first, without its secret (shown once, in the first answer)."),
]
ReplayKey = Annotated[
    str | None,
    Header(alias="Idempotency-Key", min_length=1, max_length=255,
           description="Repeat a replay safely: the same key answers the delivery as it is now and queues "
                       "nothing more."),
]
_NOT_CONFIGURED = problem_responses(503, _503="NOTIFY_SECRET_KEY is not configured (`webhooks-not-configured`).")


def _admin(principal: Principal) -> None:
    require_user(principal, "admin")


@router.post("", response_model=WebhookWithSecret, status_code=201, responses=_NOT_CONFIGURED,
             summary="Subscribe a URL to events (the secret is shown once)")
async def create_webhook(request: Request, body: WebhookCreate, principal: CurrentPrincipal,
                         idempotency_key: IdempotencyKey = None) -> JSONBytesResponse:
    _admin(principal)
    settings = request.app.state.settings
    box = service.secret_box(settings)
    async with runtime_of(request).transaction() as conn:
        replayed = await service.replay(conn, caller=principal.ref, key=idempotency_key, body=body)
        if replayed is None:
            created = await service.create(conn, body=body, box=box, allow=service.allow_networks(settings),
                                           created_by=principal.ref, idempotency_key=idempotency_key)
    if replayed is not None:
        return JSONBytesResponse(replayed, status_code=201, headers={
            "Idempotent-Replayed": "true", "ETag": etag(replayed["version"]),
            "Location": f"/v1/webhooks/{replayed['id']}", "Cache-Control": "no-store"})
    return JSONBytesResponse(created, status_code=201, headers={
        "ETag": etag(created["version"]), "Location": f"/v1/webhooks/{created['id']}", "Cache-Control": "no-store"})


@router.get("", response_model=WebhookList, summary="Webhook subscriptions, newest first")
async def list_webhooks(request: Request, principal: CurrentPrincipal, limit: Limit = DEFAULT_LIMIT,
                        cursor: Cursor = None) -> JSONBytesResponse:
    _admin(principal)
    after = decode_cursor(cursor) if cursor else None
    async with runtime_of(request).engine.connect() as conn:
        rows = await repository.page(conn, after=after, limit=limit)
    rows, next_cursor = page(rows, limit)
    return JSONBytesResponse({"items": [service.as_read(r) for r in rows], "next_cursor": next_cursor})


@router.get("/{subscription_id:uuid}", response_model=WebhookRead, summary="One webhook subscription")
async def get_webhook(request: Request, subscription_id: uuid.UUID, principal: CurrentPrincipal) -> JSONBytesResponse:
    _admin(principal)
    async with runtime_of(request).engine.connect() as conn:
        row = await repository.get(conn, subscription_id)
    if row is None:
        raise service.not_found()
    return JSONBytesResponse(service.as_read(row), headers={"ETag": etag(row["version"])})


@router.patch("/{subscription_id:uuid}", response_model=WebhookRead,
              summary="Change the URL, event types, description, or enable / disable")
async def patch_webhook(request: Request, subscription_id: uuid.UUID, body: WebhookPatch,
                        principal: CurrentPrincipal, if_match: IfMatch = None) -> JSONBytesResponse:
    _admin(principal)
    settings = request.app.state.settings
    async with runtime_of(request).transaction() as conn:
        updated = await service.update(conn, subscription_id=subscription_id, body=body,
                                       allow=service.allow_networks(settings), if_match=if_match)
    return JSONBytesResponse(updated, headers={"ETag": etag(updated["version"])})


@router.delete("/{subscription_id:uuid}", status_code=204, summary="Delete a webhook subscription")
async def delete_webhook(request: Request, subscription_id: uuid.UUID, principal: CurrentPrincipal,
                         if_match: IfMatch = None) -> Response:
    _admin(principal)
    async with runtime_of(request).transaction() as conn:
        await service.delete(conn, subscription_id=subscription_id, if_match=if_match)
    return Response(status_code=204)


@router.post("/{subscription_id:uuid}/rotate-secret", response_model=WebhookWithSecret,
             responses=_NOT_CONFIGURED,
             summary="A new secret (shown once); the old one keeps signing for 24 hours")
async def rotate_webhook_secret(request: Request, subscription_id: uuid.UUID, principal: CurrentPrincipal,
                                if_match: IfMatch = None) -> JSONBytesResponse:
    _admin(principal)
    box = service.secret_box(request.app.state.settings)
    async with runtime_of(request).transaction() as conn:
        rotated = await service.rotate_secret(conn, subscription_id=subscription_id, box=box, if_match=if_match)
    return JSONBytesResponse(rotated, headers={"ETag": etag(rotated["version"]), "Cache-Control": "no-store"})


@router.get("/{subscription_id:uuid}/deliveries", response_model=DeliveryList,
            summary="The subscription's delivery log, newest first")
async def list_webhook_deliveries(request: Request, subscription_id: uuid.UUID, principal: CurrentPrincipal,
                                  status: Status | None = None, limit: Limit = DEFAULT_LIMIT,
                                  cursor: Cursor = None) -> JSONBytesResponse:
    _admin(principal)
    after = decode_cursor(cursor) if cursor else None
    async with runtime_of(request).raw_connection() as conn:
        if await deliveries_repository.subscription_state(conn, subscription_id) is None:
            raise service.not_found()
        rows = await deliveries_repository.page(conn, after=after, limit=limit, ticket_id=None, status=status,
                                                channel=None, kind=None, subscription_id=subscription_id)
    rows, next_cursor = page(rows, limit)
    return JSONBytesResponse({"items": [deliveries.as_read(r) for r in rows], "next_cursor": next_cursor})


@router.get("/{subscription_id:uuid}/deliveries/{delivery_id:uuid}", response_model=DeliveryDetail,
            summary="One delivery of the subscription, with its attempts")
async def get_webhook_delivery(request: Request, subscription_id: uuid.UUID, delivery_id: uuid.UUID,
                               principal: CurrentPrincipal) -> JSONBytesResponse:
    _admin(principal)
    async with runtime_of(request).raw_connection() as conn:
        _, row = await deliveries.webhook_delivery(conn, subscription_id=subscription_id, delivery_id=delivery_id)
        attempts = await deliveries_repository.attempts_of(conn, delivery_id)
    return JSONBytesResponse({**deliveries.as_read(row),
                              "attempts_log": [deliveries.attempt_as_read(a) for a in attempts]})


@router.post("/{subscription_id:uuid}/deliveries/{delivery_id:uuid}/replay", response_model=DeliveryRead,
             status_code=202,
             responses=problem_responses(409, _409="The subscription is disabled (`webhook-disabled`), or the "
                                                   "delivery is queued or in flight (`delivery-in-progress`)."),
             summary="Send the delivery's event again, with the same webhook-id (queued now)")
async def replay_webhook_delivery(request: Request, subscription_id: uuid.UUID, delivery_id: uuid.UUID,
                                  principal: CurrentPrincipal, idempotency_key: ReplayKey = None) -> JSONBytesResponse:
    _admin(principal)
    async with runtime_of(request).raw_transaction() as conn:
        delivery, replayed = await deliveries.replay_webhook(
            conn, subscription_id=subscription_id, delivery_id=delivery_id, caller=principal.ref,
            idempotency_key=idempotency_key)
    if replayed:
        return JSONBytesResponse(delivery, status_code=202, headers={"Idempotent-Replayed": "true"})
    from ..deliveries import dispatcher

    dispatcher.wake_all()
    return JSONBytesResponse(delivery, status_code=202)
