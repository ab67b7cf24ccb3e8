"""The chat visitor's read of its conversation, and visitor tokens for the widget's backend.

- ``GET /v1/chat/conversations/{conversation_id}/messages?after=&wait=``: the visitor's
  browser, with ``Authorization: Bearer <visitor token>`` (the gateway forwards it and marks the
  caller a visitor; only this service can verify the token). Long-poll: with nothing after
  ``after`` it parks up to ``wait`` seconds (waiters.py) and answers as soon as a message is
  committed, else an empty page with the same cursor.
- ``POST /v1/channels/chat/conversations/{conversation_id}/visitor-token``: the chat channel's
  key mints a token for a conversation it already posted to (a new page load, an expired
  token). Chat intake answers one with every message too (intake/endpoints.py).

docs/channels/outbound.md, "Chat widget".
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.engine import make_url

from helpdesk_common.app import runtime_of
from helpdesk_common.identity import CurrentPrincipal, current_visitor
from helpdesk_common.openapi import authenticates, problem_responses
from helpdesk_common.pagination import decode_cursor, encode_cursor
from helpdesk_common.problems import Problem
from helpdesk_common.responses import JSONBytesResponse

from . import repository, tokens
from .schemas import VisitorMessagePage, VisitorTokenRead
from .waiters import ConversationWaiters

#: the widget's conversation id (channels/chat.py ``Id``)
ConversationId = Annotated[str, Path(min_length=1, max_length=128, pattern=r"^[!-~]+$",
                                     description="the widget's `conversation_id`, as posted to chat intake")]
MAX_WAIT_S = 25.0

_bearer = HTTPBearer(scheme_name="visitorToken", auto_error=False,
                     description="A chat visitor token (hvt1....) from chat intake or POST "
                                 "/v1/channels/chat/conversations/{conversation_id}/visitor-token.")


def _unauthorized(detail: str) -> Problem:
    return Problem(401, "unauthorized", "Unauthorized", detail, headers={"WWW-Authenticate": "Bearer"})


def mint_for(settings: Any, conversation_key: str, *, now: float | None = None) -> tuple[str, datetime] | None:
    """A fresh token for the conversation and its expiry; None without TICKET_VISITOR_TOKEN_KEY."""
    key = settings.visitor_token_key
    if key is None:
        return None
    expires = int(now if now is not None else time.time()) + settings.visitor_token_ttl_s
    token = tokens.mint(key.get_secret_value().encode(), conversation_key=conversation_key, expires=expires)
    return token, datetime.fromtimestamp(expires, UTC)


@authenticates
async def visitor_grant(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> tokens.VisitorGrant:
    """The conversation the caller's visitor token grants (401 for a missing, malformed,
    forged or expired token; which one is not said)."""
    await current_visitor(request)
    if credentials is None:
        raise _unauthorized("Use 'Authorization: Bearer <visitor token>'.")
    key = runtime_of(request).settings.visitor_token_key
    if key is None:
        raise _unauthorized("Visitor tokens are not enabled on this server.")
    try:
        return tokens.verify(key.get_secret_value().encode(), credentials.credentials, now=time.time())
    except tokens.InvalidToken:
        raise _unauthorized("Invalid or expired visitor token.") from None


VisitorGrant = Annotated[tokens.VisitorGrant, Depends(visitor_grant)]

router = APIRouter(prefix="/v1/chat", tags=["chat visitor"])


def _to_visitor(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"], "author_kind": row["author_kind"], "author_name": row["author_name"],
        "body_text": row["body_text"], "body_html": row["body_html"],
        "attachments": [{"filename": a.get("filename") or "", "content_type": a.get("content_type") or "",
                         "size": a.get("size") or 0} for a in row["attachments"] or ()],
        "created_at": row["created_at"],
    }


@router.get(
    "/conversations/{conversation_id}/messages", response_model=VisitorMessagePage,
    summary="A chat visitor reads its conversation (long-poll)",
    description="The conversation's public customer and agent messages after `after`, oldest first. With "
                "nothing new it waits up to `wait` seconds for the next one. Authenticated by the "
                "conversation's visitor token; another conversation's token is a 403.",
    responses=problem_responses(400, 503, _400="`after` is not a cursor this API issued (`invalid-cursor`).",
                                _403="The visitor token is for another conversation.",
                                _503="Too many visitors are waiting on this server: retry after `Retry-After`."),
)
async def visitor_messages(
    request: Request, conversation_id: ConversationId, grant: VisitorGrant,
    after: Annotated[str | None, Query(max_length=512, description="the `cursor` of the previous answer")] = None,
    wait: Annotated[float, Query(ge=0, le=MAX_WAIT_S, allow_inf_nan=False,
                                 description="seconds to wait for a new message when there is none (0-25)")] = 0,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
) -> JSONBytesResponse:
    conversation_key = f"chat:{conversation_id}"
    if grant.conversation_key != conversation_key:
        raise Problem(403, "forbidden", "Forbidden", "This visitor token is for another conversation.")
    position = decode_cursor(after) if after else None
    runtime = runtime_of(request)
    waiters: ConversationWaiters = request.app.state.visitor_waiters
    deadline = time.monotonic() + wait

    async def read() -> list[Any]:
        async with runtime.raw_connection() as conn:
            return await repository.public_messages(conn, conversation_key=conversation_key, after=position,
                                                    limit=limit)

    rows = await read()
    if not rows and wait > 0:
        async with waiters.waiting(conversation_key) as event:
            poll_s = runtime.settings.visitor_poll_s
            while not rows and (remaining := deadline - time.monotonic()) > 0:
                with contextlib.suppress(TimeoutError):
                    # while LISTEN is up a read happens only when woken; the periodic read is
                    # the fallback for a lost connection and a bound on a missed NOTIFY
                    async with asyncio.timeout(min(remaining, poll_s if not waiters.listening else 5 * poll_s)):
                        await event.wait()
                event.clear()
                if await request.is_disconnected():
                    break
                rows = await read()
    cursor = encode_cursor(rows[-1]["created_at"], rows[-1]["id"]) if rows else after
    return JSONBytesResponse({"items": [_to_visitor(r) for r in rows], "cursor": cursor},
                             headers={"Cache-Control": "no-store"})


channel_router = APIRouter(prefix="/v1/channels/chat", tags=["intake"])


@channel_router.post(
    "/conversations/{conversation_id}/visitor-token", response_model=VisitorTokenRead,
    summary="A visitor token for an existing chat conversation (the chat channel's key)",
    responses=problem_responses(503, _503="Visitor tokens are not enabled (TICKET_VISITOR_TOKEN_KEY is not set)."),
)
async def mint_visitor_token(request: Request, conversation_id: ConversationId,
                             principal: CurrentPrincipal) -> JSONBytesResponse:
    """Nothing is stored (the token is a signed capability), so this is not a creation and
    answers 200; each call gives a token with a full lifetime."""
    if not (principal.kind == "channel" and principal.channel == "chat") and not principal.has_role("admin"):
        raise Problem(403, "forbidden", "Forbidden", "Only the chat channel's key may mint visitor tokens.")
    conversation_key = f"chat:{conversation_id}"
    async with runtime_of(request).raw_connection() as conn:
        exists = await repository.conversation_exists(conn, conversation_key)
    if not exists:
        raise Problem(404, "not-found", "Conversation not found", "No chat message was taken on this conversation.")
    minted = mint_for(runtime_of(request).settings, conversation_key)
    if minted is None:
        raise Problem(503, "unavailable", "Unavailable", "Visitor tokens are not enabled on this server.",
                      headers={"Retry-After": "3600"})
    return JSONBytesResponse({"conversation_id": conversation_id, "visitor_token": minted[0],
                              "expires_at": minted[1]}, headers={"Cache-Control": "no-store"})


def visitor_waiters(settings: Any):  # type: ignore[no-untyped-def]
    """The per-process waiters hub and its LISTEN connection (``app.state.visitor_waiters``)."""

    @contextlib.asynccontextmanager
    async def hook(app: FastAPI) -> AsyncIterator[None]:
        dsn = make_url(settings.database_url).set(drivername="postgresql").render_as_string(hide_password=False)
        hub = ConversationWaiters(dsn=dsn, max_waiters=settings.visitor_max_waiters)
        app.state.visitor_waiters = hub
        await hub.start()
        try:
            yield
        finally:
            await hub.stop()

    return hook
