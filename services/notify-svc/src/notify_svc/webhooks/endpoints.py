"""Webhook subscriptions: admins only (they choose where our events go, and read who gets
them). One request, one transaction. The secret is in the answers of create and rotate-secret,
and nowhere else: not in reads, lists, replays of a create, nor logs."""

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
