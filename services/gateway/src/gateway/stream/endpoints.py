"""``GET /v1/stream``: Server-Sent Events of the ticket and SLA events the caller may see, and
the live KPI board for supervisors and admins."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from pydantic import BaseModel
from starlette.responses import Response

from helpdesk_common.identity import AGENT_ROLES
from helpdesk_common.openapi import problem_responses
from helpdesk_common.problems import Problem

from ..deps import Caller, ClientAddress, authenticated
from .kpis import check_tz
from .service import Stream, start_point

log = logging.getLogger(__name__)

router = APIRouter(prefix="/v1", tags=["stream"])


class StreamTicket(BaseModel):
    ticket: str
    expires_in: int

_MAX_SEQ = 2**63 - 1


class EventStreamResponse(Response):
    """A plain ASGI response for one stream.

    Written by hand rather than with StreamingResponse so the two ways a stream ends are
    explicit: a disconnect seen on ``receive`` closes the stream at once (even while it
    sleeps between keep-alives), and a stream closed by the server (shutdown, maximum
    duration) finishes the chunked body properly, so the client sees a clean end and
    reconnects with ``Last-Event-ID``.
    """

    media_type = "text/event-stream"

    def __init__(self, stream: Stream) -> None:  # noqa: D107 (no body, no headers to render)
        self.stream = stream
        self.status_code = 200
        self.background = None
        self.raw_headers: list[tuple[bytes, bytes]] = []  # FastAPI may add dependency headers

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        stream = self.stream
        hub = stream.hub

        async def watch_disconnect() -> None:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    stream.close("client-disconnect")
                    return

        hub.register(stream)
        watcher = asyncio.create_task(watch_disconnect(), name="stream-disconnect")
        try:
            await send({
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"text/event-stream; charset=utf-8"),
                    (b"cache-control", b"no-cache, no-store"),
                    (b"x-accel-buffering", b"no"),  # no buffering in nginx-style proxies
                    *self.raw_headers,
                ],
            })
            async with contextlib.aclosing(stream.frames()) as frames:
                async for chunk in frames:
                    if stream.closed and stream.close_reason == "client-disconnect":
                        break
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            if stream.close_reason != "client-disconnect":
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        except OSError:  # the client went away mid-write
            stream.close("client-disconnect")
        finally:
            hub.unregister(stream)
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await watcher


def _last_event_id(header: str | None, query: int | None) -> int | None:
    """The header wins: a browser's EventSource sends it on every reconnect, while a
    ``?last_event_id=`` in the URL stays what it was when the stream was first opened."""
    if header is not None and header.strip():
        value = header.strip()
        if not value.isdigit() or len(value) > 19 or int(value) > _MAX_SEQ:
            raise Problem(422, "invalid-last-event-id", "Invalid Last-Event-ID",
                          "Last-Event-ID must be an event id received from this stream.")
        return int(value)
    return query


@router.get(
    "/stream",
    summary="Live stream (Server-Sent Events) of the ticket and SLA events you may see",
    response_class=EventStreamResponse,
    status_code=200,
    responses={
        200: {"description": "text/event-stream; see docs/stream.md", "content": {"text/event-stream": {}}},
        **problem_responses(401, 403, 429, 503, _403="channel API keys cannot stream",
                            _503="too many open streams, or the stream cannot start now"),
    },
    # Authorization, or a stream ticket in the query (a browser's EventSource sends no headers)
    openapi_extra={"security": [{"bearer": []}, {}]},
)
async def stream_events(
    request: Request,
    client_address: ClientAddress,
    last_event_id: Annotated[int | None, Query(ge=0, le=_MAX_SEQ, description="resume after this event id")] = None,
    last_event_id_header: Annotated[str | None, Header(alias="Last-Event-ID", max_length=64)] = None,
    ticket: Annotated[str | None, Query(max_length=2048, description=(
        "a stream ticket from POST /v1/stream/tickets, for clients that cannot send Authorization "
        "(a browser's EventSource)"))] = None,
    tz: Annotated[str, Query(min_length=1, max_length=64, description=(
        "IANA zone that defines 'today' on the live board (the kpis frames of supervisors and admins)"))] = "UTC",
) -> EventStreamResponse:
    if ticket is not None and not request.headers.get("authorization"):
        caller = await request.app.state.auth.authenticate_stream_ticket(ticket, client_address)
    else:
        caller = await authenticated(request)
    if not caller.has_role(*AGENT_ROLES):
        raise Problem(403, "forbidden", "Forbidden", "Only agents, supervisors and admins may open the live stream.")
    state = request.app.state
    hub = state.stream_hub
    if len(hub.streams) >= state.settings.stream_max_open:
        raise Problem(503, "too-many-streams", "Too many open streams", "Retry later.", headers={"Retry-After": "5"})
    resume = _last_event_id(last_event_id_header, last_event_id)
    tz = check_tz(tz)
    viewer = await state.team_directory.viewer(caller)
    try:
        start = await start_point(hub=hub, viewer=viewer, last_event_id=resume)
    except Exception as exc:
        log.warning("stream start failed", extra={"error": repr(exc)})
        raise Problem(503, "stream-unavailable", "Stream unavailable", "Retry later.",
                      headers={"Retry-After": "3"}) from exc
    return EventStreamResponse(Stream(hub=hub, directory=state.team_directory, principal=caller, start=start,
                                      kpis=state.kpi_boards, tz=tz))


@router.post("/stream/tickets", status_code=201, response_model=StreamTicket,
             summary="A short-lived ticket that opens the live stream without an Authorization header")
async def stream_ticket(request: Request, caller: Caller) -> dict:
    """For ``new EventSource("/v1/stream?ticket=...")``: the ticket works only for the stream, for
    ``GATEWAY_STREAM_TICKET_TTL_S`` (60 s), and only while the session it came from stands. An
    open stream outlives it; a reconnect after that needs a new ticket (pass ``last_event_id``)."""
    if not caller.has_role(*AGENT_ROLES):
        raise Problem(403, "forbidden", "Forbidden", "Only agents, supervisors and admins may open the live stream.")
    auth = request.app.state.auth
    return {"ticket": auth.stream_ticket(caller, request.headers.get("authorization")),
            "expires_in": request.app.state.settings.stream_ticket_ttl_s}
