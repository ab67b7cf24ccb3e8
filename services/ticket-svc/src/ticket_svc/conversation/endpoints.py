"""Conversation API: post and read messages, download attachments."""

from __future__ import annotations

import base64
import binascii
import time
import uuid
from typing import Annotated

from fastapi import APIRouter, Header, Path, Query, Request
from starlette.responses import Response

from helpdesk_common.app import runtime_of
from helpdesk_common.concurrency import IfMatch
from helpdesk_common.identity import CurrentPrincipal
from helpdesk_common.pagination import decode_cursor, encode_cursor
from helpdesk_common.problems import Problem
from helpdesk_common.responses import JSONBytesResponse

from ..channels.inbound import InboundAttachment, InvalidPayload
from ..intake.endpoints import invalid_payload
from ..tickets import repository as ticket_repository
from ..tickets import service as tickets
from ..tickets.changes import jsonable
from . import outbound, repository, service
from .attachments import content_disposition, safe_content_type
from .schemas import MessageCreated, MessageIn, MessagePage

router = APIRouter(prefix="/v1/tickets", tags=["conversation"])

IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", min_length=1, max_length=255)]


def _attachments(body: MessageIn) -> list[InboundAttachment]:
    items = []
    for index, a in enumerate(body.attachments):
        try:
            content = base64.b64decode(a.content_base64, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise Problem(422, "validation-error", "Invalid attachment", "content_base64 is not base64.",
                          errors=[{"field": f"attachments[{index}].content_base64", "message": "not base64"}]) from exc
        items.append(InboundAttachment(filename=a.filename, content_type=a.content_type, content=content))
    return items


@router.post("/{ticket_id}/messages", status_code=201, response_model=MessageCreated,
             summary="Reply, add an internal note (agents) or a customer message (channel keys)")
async def post_message(request: Request, ticket_id: uuid.UUID, body: MessageIn, principal: CurrentPrincipal,
                       idempotency_key: IdempotencyKey = None, if_match: IfMatch = None) -> JSONBytesResponse:
    if principal.kind == "channel" and not body.public:
        raise Problem(403, "forbidden", "Forbidden", "Channels post customer messages, which are always public.")
    try:
        attachments = _attachments(body)
    except InvalidPayload as exc:
        raise invalid_payload(exc) from exc
    async with runtime_of(request).raw_transaction() as conn:
        original = await tickets.claim_key(conn, principal=principal, key=idempotency_key,
                                           digest=tickets.request_hash(body), scope=f"message:{ticket_id}",
                                           ticket_id=ticket_id)
        if original is not None and original[1] is not None:
            return JSONBytesResponse(original[1], status_code=201, headers={"Idempotent-Replayed": "true"})
        ticket = await tickets.get_writable(conn, principal=principal, ticket_id=ticket_id)
        tickets.check_version(ticket, if_match)  # optional: the ticket's version the reply was written against
        try:
            result = await service.post(conn, ticket=ticket, principal=principal, body=body, attachments=attachments,
                                        settings=runtime_of(request).settings)
        except InvalidPayload as exc:
            raise invalid_payload(exc) from exc
        response = service.to_created(result, to_customer=not principal.is_user)
        if idempotency_key is not None:
            await ticket_repository.store_idempotent_response(
                conn, principal=principal.ref, key=idempotency_key, response=jsonable(response))
    return JSONBytesResponse(response, status_code=201)


@router.get("/{ticket_id}/messages", response_model=MessagePage, summary="The conversation, oldest first")
async def list_messages(
    request: Request, ticket_id: uuid.UUID, principal: CurrentPrincipal,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> JSONBytesResponse:
    async with runtime_of(request).raw_connection() as conn:
        await tickets.get_visible(conn, principal=principal, ticket_id=ticket_id)
        rows = await repository.list_messages(
            conn, ticket_id=ticket_id, public_only=not principal.is_user, limit=limit + 1,
            after=decode_cursor(cursor) if cursor else None,
        )
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor(rows[-1]["created_at"], rows[-1]["id"]) if more and rows else None
    return JSONBytesResponse({"items": [service.to_read(r, to_customer=not principal.is_user) for r in rows], "next_cursor": next_cursor})


@router.get("/{ticket_id}/attachments/{attachment_id}", summary="Download an attachment",
            response_class=Response,
            responses={200: {"description": "the file, with the media type it was stored with",
                             "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}}}})
async def download_attachment(request: Request, ticket_id: uuid.UUID, attachment_id: uuid.UUID,
                              principal: CurrentPrincipal) -> Response:
    async with runtime_of(request).raw_connection() as conn:
        await tickets.get_visible(conn, principal=principal, ticket_id=ticket_id)
        found = await repository.find_attachment(conn, ticket_id=ticket_id, attachment_id=str(attachment_id))
        if found is None or (not found["public"] and not principal.is_user):
            raise Problem(404, "not-found", "Attachment not found", f"No attachment {attachment_id} on this ticket.")
        meta = found["attachment"]
        content = await repository.blob(conn, meta["sha256"])
    if content is None:  # pragma: no cover - blobs are written with their message
        raise Problem(404, "not-found", "Attachment not found", "The attachment content is gone.")
    # both headers come from stored metadata: sanitised again here, for rows stored before
    # upload-time sanitising (a non-Latin-1 type was a 500, CR/LF an injected header)
    return Response(content, media_type="application/octet-stream", headers={
        "Content-Disposition": content_disposition(meta.get("filename") or ""),
        "X-Content-Type-Options": "nosniff",
        "X-Attachment-Content-Type": safe_content_type(meta.get("content_type"), meta.get("filename") or ""),
    })


# --- notify-svc fetches a reply's attachments -------------------------------------------------
#: not under /v1: the gateway forwards /v1/<prefix> paths only, so no client reaches this, and it
#: is absent from the API document. The capability in the URL is the credential: ticket-svc
#: minted it for ``ticket.reply_requested`` (conversation/outbound.py) and alone verifies it.
internal_router = APIRouter(prefix="/internal/attachments", include_in_schema=False)


@internal_router.get("/{sha256}")
async def fetch_attachment(
    request: Request, sha256: Annotated[str, Path(pattern=r"^[0-9a-f]{64}$")],
    type_: Annotated[str, Query(alias="type", max_length=255)] = "",
    exp: Annotated[int, Query(ge=0, lt=2**53)] = 0,
    sig: Annotated[str, Query(max_length=128)] = "",
) -> Response:
    """The bytes of one stored file for an unexpired, correctly signed capability: 403 otherwise
    (a tampered hash, type or expiry is a bad signature), 404 when no file has that hash."""
    settings = runtime_of(request).settings
    key = settings.attachment_url_key
    if key is None or not outbound.verify_attachment(key.get_secret_value().encode(), sha256=sha256,
                                                     content_type=type_, expires=exp, sig=sig, now=time.time()):
        raise Problem(403, "forbidden", "Forbidden", "The attachment link is invalid or has expired.")
    async with runtime_of(request).raw_connection() as conn:
        content = await repository.blob(conn, sha256)
    if content is None:
        raise Problem(404, "not-found", "Attachment not found", "No file with this checksum.")
    return Response(content, media_type=safe_content_type(type_, ""), headers={"X-Content-Type-Options": "nosniff"})
