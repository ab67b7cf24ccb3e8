"""Channel intake: ``POST /v1/channels/{kind}/inbound`` for every channel format.

One endpoint per channel kind takes the channel's native payload (raw MIME e-mail, web form,
chat JSON, WeChat / WeCom XML, DingTalk JSON, phone-call JSON). Answers: 201 with
``created: true`` for a new ticket or ``created: false`` for a message threaded onto one, 200
with the original ids for a duplicate delivery, 202 ``{"ignored": reason}`` for traffic that
must create nothing (auto-replies, bounces, WeChat events), 422 problem+json for payloads that
cannot be understood. Formats: docs/channels/.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Path, Request
from pydantic import BaseModel

from helpdesk_common.app import ACCEPTS_ANY_QUERY, runtime_of
from helpdesk_common.identity import CurrentPrincipal, Principal
from helpdesk_common.problems import Problem
from helpdesk_common.responses import JSONBytesResponse

from ..channels.inbound import Ignored, InboundMessage, InvalidPayload, without_nul
from . import parsers, service

router = APIRouter(prefix="/v1/channels", tags=["intake"])

ChannelKind = Literal["email", "web", "chat", "wechat", "wecom", "dingtalk", "phone"]


class IntakeRead(BaseModel):
    ticket_id: str
    message_id: str | None
    created: bool


class IgnoredRead(BaseModel):
    ignored: str


def invalid_payload(exc: InvalidPayload) -> Problem:
    return Problem(422, "invalid-payload", "Invalid payload", str(exc), errors=exc.field_errors)


def may_post(principal: Principal, kind: str) -> bool:
    """A channel key posts only its own channel's format; admins may post any (tests, replays)."""
    if principal.kind == "channel":
        return principal.channel == kind
    return principal.has_role("admin")


@router.post(
    "/{kind}/inbound",
    status_code=201,
    response_model=IntakeRead,
    responses={200: {"model": IntakeRead, "description": "duplicate delivery: the original result"},
               202: {"model": IgnoredRead, "description": "auto-reply, bounce, bulk mail or platform event"}},
    summary="Take a message from a channel in its native format",
    # platforms sign callbacks with query parameters of their own (WeChat / WeCom: timestamp, nonce,
    # signature, msg_signature, echostr; DingTalk and others may add more): any query is accepted
    openapi_extra={**ACCEPTS_ANY_QUERY, "requestBody": {"required": True, "content": {
        "message/rfc822": {"schema": {"type": "string", "format": "binary"}},
        "application/x-www-form-urlencoded": {"schema": {"type": "object"}},
        "multipart/form-data": {"schema": {"type": "object"}},
        "application/json": {"schema": {"type": "object"}},
        "application/xml": {"schema": {"type": "string"}},
    }}},
)
async def inbound(
    request: Request,
    kind: Annotated[ChannelKind, Path()],
    principal: CurrentPrincipal,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", min_length=1, max_length=255)] = None,
) -> JSONBytesResponse:
    if not may_post(principal, kind):
        raise Problem(403, "forbidden", "Forbidden", f"This key may not post {kind} messages.")
    body = await request.body()
    settings = runtime_of(request).settings
    try:
        parsed = parsers.parse(kind, body, content_type=request.headers.get("content-type", ""),
                               query=dict(request.query_params), headers=dict(request.headers), settings=settings)
    except InvalidPayload as exc:
        raise invalid_payload(exc) from exc
    if isinstance(parsed, Ignored):
        return JSONBytesResponse({"ignored": parsed.reason}, status_code=202)
    message: InboundMessage = without_nul(parsed)
    if message.external_id is None and idempotency_key is not None:
        message = dataclasses.replace(message, external_id=f"idempotency:{principal.ref}:{idempotency_key}")
    try:
        async with runtime_of(request).raw_transaction() as conn:
            result = await service.receive(conn, principal=principal, message=message)
    except InvalidPayload as exc:
        raise invalid_payload(exc) from exc
    payload: dict[str, Any] = {
        "ticket_id": str(result.ticket_id),
        "message_id": str(result.message_id) if result.message_id else None,
        "created": result.created,
    }
    headers = {"Location": f"/v1/tickets/{result.ticket_id}"}
    if result.duplicate:
        headers["Idempotent-Replayed"] = "true"
    return JSONBytesResponse(payload, status_code=200 if result.duplicate else 201, headers=headers)
