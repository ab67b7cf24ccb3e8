"""Channel intake: ``POST /v1/channels/<kind>/inbound`` for every channel format.

One operation per channel kind takes the channel's native payload (raw MIME e-mail, web form,
chat JSON, WeChat / WeCom XML, DingTalk JSON, phone-call JSON). Answers: 201 with
``created: true`` for a new ticket or ``created: false`` for a message threaded onto one, 200
with the original ids for a duplicate delivery, 202 ``{"ignored": reason}`` for traffic that
must create nothing (auto-replies, bounces, WeChat events), 422 problem+json for payloads that
cannot be understood. Formats: docs/channels/.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Request
from pydantic import BaseModel

from helpdesk_common.app import ACCEPTS_ANY_QUERY, runtime_of
from helpdesk_common.openapi import TEXT_NUL_DROPPED
from helpdesk_common.identity import CurrentPrincipal, Principal
from helpdesk_common.problems import Problem
from helpdesk_common.responses import JSONBytesResponse
from helpdesk_common.validation import EMAIL_PATTERN, NOT_BLANK, WHITESPACE

from ..channels.inbound import Ignored, InboundMessage, InvalidPayload, without_nul
from ..channels.phone import PHONE_PATTERN
from . import parsers, service

router = APIRouter(prefix="/v1/channels", tags=["intake"])

ChannelKind = Literal["email", "web", "chat", "wechat", "wecom", "dingtalk", "phone"]


class IntakeRead(BaseModel):
    ticket_id: str
    message_id: str | None
    created: bool
    #: chat only: the conversation's visitor token, renewed with each message (visitor/)
    visitor_token: str | None = None
    visitor_token_expires_at: datetime | None = None


class IgnoredRead(BaseModel):
    ignored: str


def invalid_payload(exc: InvalidPayload) -> Problem:
    return Problem(422, "invalid-payload", "Invalid payload", str(exc), errors=exc.field_errors)


def may_post(principal: Principal, kind: str) -> bool:
    """A channel key posts only its own channel's format; admins may post any (tests, replays)."""
    if principal.kind == "channel":
        return principal.channel == kind
    return principal.has_role("admin")


_FORM_TEXT = {"type": "string", "maxLength": 65_536}


#: what the form parser strips (str.strip), spelled out: ``\s`` is another set in ECMA-262 (the
#: document's dialect: U+FEFF but not U+0085 or U+001C-U+001F)
_SPACES = f"[{WHITESPACE}]*"
#: one tag of a comma-separated list, as the form parser reads it: at most 64 characters once
#: stripped, or blank
_TAG = f"[{WHITESPACE}]*(?:[^,{WHITESPACE}](?:[^,]{{0,62}}[^,{WHITESPACE}])?)?[{WHITESPACE}]*"


def _web_form(files: bool) -> dict[str, Any]:
    """The fields a web form may carry (channels/webform.py); others are ignored."""
    properties: dict[str, Any] = {
        "subject": {"type": "string", "maxLength": 500, "pattern": NOT_BLANK},
        "description": _FORM_TEXT, "body": _FORM_TEXT, "name": _FORM_TEXT,
        # left empty, these are left out (as a browser sends an empty input)
        "email": {"type": "string", "maxLength": 65_536, "pattern": f"{EMAIL_PATTERN}|^[{WHITESPACE}]*$"},
        "phone": {"type": "string", "maxLength": 65_536, "pattern": f"{PHONE_PATTERN}|^[{WHITESPACE}]*$"},
        "priority": {"type": "string", "pattern": f"^{_SPACES}(?:[lL][oO][wW]|[nN][oO][rR][mM][aA][lL]|[hH][iI][gG][hH]"
                                                  f"|[uU][rR][gG][eE][nN][tT])?{_SPACES}$"},
        "type": {"type": "string", "maxLength": 64},
        "tags": {"type": "string", "maxLength": 65_536, "pattern": f"^{_TAG}(?:,{_TAG})*$",
                 "description": "comma-separated, at most 50 of 1-64 characters (blank ones are left out)"},
        "language": {"type": "string", "pattern": f"^{_SPACES}(?:[A-Za-z]{{2,3}}(-[A-Za-z0-9]{{2,8}})*)?{_SPACES}$"},
        "form_submission_id": {"type": "string", "maxLength": 128,
                               "description": "the dedupe key of a double submit"},
        "kb_suggestion_id": {"type": "string", "pattern": f"^{_SPACES}(?:[0-9A-Fa-f]{{8}}-?[0-9A-Fa-f]{{4}}-?[0-9A-Fa-f]{{4}}-?"
                                                          f"[0-9A-Fa-f]{{4}}-?[0-9A-Fa-f]{{12}})?{_SPACES}$",
                             "description": "the knowledge-base suggestion shown before submitting "
                                            "(POST /v1/kb/suggestions' suggestion_id)"},
    }
    schema: dict[str, Any] = {
        # at most 200 fields (a 422 past them): not stated as maxProperties, which with the anyOf
        # below makes schemathesis 4.32 fail its own health check on the negative cases
        "type": "object", "properties": properties, "required": ["subject"],
        "patternProperties": {r"^custom_fields\[[a-z][a-z0-9_]{0,63}\]$": _FORM_TEXT},
        "additionalProperties": {"type": "string", "maxLength": 65_536},
        "propertyNames": {"not": {"pattern": r"^custom_fields\[(?![a-z][a-z0-9_]{0,63}\]$)"}},
    }
    if files:  # a part with a file name is an attachment, whatever its field name (at most 10)
        # email or phone: said in words here, as this anyOf on a multipart body fails schemathesis
        # 4.32's own health check (the server's answer is a 422 coded cross_field)
        schema["description"] = ("The form's fields, with an email or a phone (or both); each part with a filename "
                                 "is an attachment (at most 10).")
    else:  # someone to answer: an e-mail address or a phone number
        schema["anyOf"] = [{"required": [name], "properties": {name: {"pattern": NOT_BLANK}}}
                           for name in ("email", "phone")]
    return schema


def _json_model(model: type[BaseModel]) -> dict[str, Any]:
    """A pydantic model's schema for an operation's body; its ``$defs`` become components
    (helpdesk_common.openapi.finish)."""
    return model.model_json_schema(ref_template="#/components/schemas/{model}")


def _bodies() -> dict[str, dict[str, Any]]:
    from ..channels.chat import ChatMessage
    from ..channels.dingtalk import Callback
    from ..channels.phone import CallRecord

    raw = {"type": "string", "format": "binary"}
    return {
        "email": {"message/rfc822": {"schema": {**raw, "description": "the raw message (RFC 5322, MIME)"}}},
        "web": {"application/x-www-form-urlencoded": {"schema": _web_form(files=False)},
                "multipart/form-data": {"schema": _web_form(files=True)}},
        "chat": {"application/json": {"schema": _json_model(ChatMessage)}},
        "wechat": {"application/xml": {"schema": {"type": "string", "description": "the platform's XML callback"}}},
        "wecom": {"application/xml": {"schema": {"type": "string", "description": "the encrypted XML envelope"}}},
        "dingtalk": {"application/json": {"schema": _json_model(Callback)}},
        "phone": {"application/json": {"schema": _json_model(CallRecord)}},
    }


#: channels whose parsers drop U+0000 from the text they read rather than refuse it (a customer's
#: message is never lost to it); the others refuse it like every JSON body
_NUL_DROPPED = frozenset({"dingtalk"})
#: channels whose platforms sign callbacks with query parameters of their own (WeChat / WeCom:
#: timestamp, nonce, signature, msg_signature, echostr): any query is accepted there
_SIGNED_IN_QUERY = frozenset({"wechat", "wecom"})


async def inbound(request: Request, kind: ChannelKind, principal: Principal, idempotency_key: str | None,
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
    if kind == "chat" and message.conversation_key:
        from ..visitor.endpoints import mint_for

        if (minted := mint_for(settings, message.conversation_key)) is not None:
            payload["visitor_token"], payload["visitor_token_expires_at"] = minted
    headers = {"Location": f"/v1/tickets/{result.ticket_id}"}
    if result.duplicate:
        headers["Idempotent-Replayed"] = "true"
    return JSONBytesResponse(payload, status_code=200 if result.duplicate else 201, headers=headers)


def _route(kind: ChannelKind) -> Any:
    async def receive(
        request: Request,
        principal: CurrentPrincipal,
        idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", min_length=1, max_length=255)] = None,
    ) -> JSONBytesResponse:
        return await inbound(request, kind, principal, idempotency_key)

    receive.__name__ = f"inbound_{kind}"
    return receive


# one operation per channel: each takes its own format (a kind in the path would leave the
# document unable to say which body goes where), and an unknown channel is a 404
for _kind, _content in _bodies().items():
    router.add_api_route(
        f"/{_kind}/inbound", _route(_kind), methods=["POST"], status_code=201, response_model=IntakeRead,
        responses={200: {"model": IntakeRead, "description": "duplicate delivery: the original result"},
                   202: {"model": IgnoredRead, "description": "auto-reply, bounce, bulk mail or platform event"}},
        summary=f"Take a {_kind} message in the channel's native format (docs/channels/)",
        openapi_extra={**(ACCEPTS_ANY_QUERY if _kind in _SIGNED_IN_QUERY else {}),
                       **(TEXT_NUL_DROPPED if _kind in _NUL_DROPPED else {}),
                       "requestBody": {"required": True, "content": _content}},
    )
