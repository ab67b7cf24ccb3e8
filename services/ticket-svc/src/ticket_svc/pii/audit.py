"""The audit of every answer that showed a user a requester unmasked: one ``pii_access_log`` row
per ticket, written before the answer leaves.

Why a collector and not a call in each endpoint: every ticket answer renders its requester through
``access.shown`` (``tickets.service.to_read`` requires the viewer), from a dozen routes — reads,
lists, create, change, assign, accept, merge, macros, processes, the incremental export and the
downloads. ``shown`` notes what it revealed in a request-scoped bucket, and ``PiiReadAudit`` (pure
ASGI, around the app) writes the bucket in one statement when the response starts; so a new route
that shows tickets is audited without remembering to be. A streamed download notes its tickets
after the response started: they are written when the stream ends (or stops: a client that went
away early got only what it was sent, and that is what is recorded).

If the audit cannot be written before the response starts, the caller gets a 503 problem instead
of the data: no unmasked read without its row. Channel keys are not recorded: the bridge that
brought the requester in is shown what it sent (``access.unmasked_for``); neither are masked
answers, which reveal nothing.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping, Sequence
from contextvars import ContextVar
from typing import Any

import orjson

from helpdesk_common.identity import Principal
from helpdesk_common.observability import PROBLEM_BASE, request_id_var
from helpdesk_common.problems import PROBLEM_CONTENT_TYPE

from . import log_repository

log = logging.getLogger(__name__)

ROLE, ASSIGNEE = "role", "assignee"
READ, EXPORT = "read", "export"

#: the routes whose answers are exports (purpose ``export``); every other route is a read
EXPORT_ROUTES = frozenset({"/v1/export/tickets", "/v1/export/tickets.csv", "/v1/export/tickets.xlsx"})

_Noted = tuple[str, str | None, uuid.UUID, tuple[str, ...], str]
_bucket: ContextVar[list[_Noted] | None] = ContextVar("ticket_pii_reveals", default=None)


def revealed_fields(requester: Mapping[str, Any], masked_fields: Sequence[str]) -> tuple[str, ...]:
    """The audit's ``fields`` of a requester shown unmasked: ``requester.email`` and the like for
    each identity it holds (pure); empty when it holds none (nothing to audit)."""
    return tuple(f"requester.{name}" for name in masked_fields if requester.get(name))


def note(principal: Principal, ticket_id: Any, fields: tuple[str, ...], reason: str) -> None:
    """Remember that this request showed ``principal`` the requester of ``ticket_id`` unmasked.
    Outside a request (events, replies, the erasure, tests calling services directly) there is no
    caller to audit and nothing is noted."""
    bucket = _bucket.get()
    if bucket is not None and fields and ticket_id is not None:
        bucket.append((principal.ref, principal.role, ticket_id if isinstance(ticket_id, uuid.UUID)
                       else uuid.UUID(str(ticket_id)), fields, reason))


def entries(noted: Sequence[_Noted], *, route: str, request_id: str | None) -> list[log_repository.Entry]:
    """The rows to write (pure): one per (ticket, caller) however often the answer showed it (a
    merge answer may show the same ticket twice)."""
    purpose = EXPORT if route in EXPORT_ROUTES else READ
    unique: dict[tuple[str, uuid.UUID], _Noted] = {}
    for item in noted:
        unique.setdefault((item[0], item[2]), item)
    return [(actor, role, ticket_id, list(fields), reason, purpose, route, request_id)
            for actor, role, ticket_id, fields, reason in unique.values()]


def _route_of(scope: Mapping[str, Any]) -> str:
    route = scope.get("route")
    return getattr(route, "path", None) or "unmatched"


_UNAVAILABLE = {"type": PROBLEM_BASE + "service-unavailable", "title": "Audit unavailable", "status": 503,
                "detail": "The answer shows personal data and its access could not be recorded; try again."}


class PiiReadAudit:
    """Pure ASGI middleware: a bucket per HTTP request, written when the response starts and
    whatever was noted after that (a streamed download) when the request ends."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        bucket: list[_Noted] = []
        token = _bucket.set(bucket)
        refused = False

        async def flush() -> None:
            taken = bucket[:]
            del bucket[:]
            pool = scope["app"].state.runtime.raw_pool
            async with pool.acquire() as conn:
                await log_repository.record(conn, entries(taken, route=_route_of(scope),
                                                          request_id=request_id_var.get()))

        async def send_audited(message: dict[str, Any]) -> None:
            nonlocal refused
            if refused:
                return
            if message["type"] == "http.response.start" and bucket:
                try:
                    await flush()
                except Exception:
                    log.exception("the audit of unmasked requesters could not be written: answer refused")
                    refused = True
                    body = orjson.dumps({**_UNAVAILABLE, "request_id": request_id_var.get()})
                    await send({"type": "http.response.start", "status": 503, "headers": [
                        (b"content-type", PROBLEM_CONTENT_TYPE.encode()), (b"content-length", str(len(body)).encode()),
                        (b"retry-after", b"1"), (b"cache-control", b"no-store")]})
                    await send({"type": "http.response.body", "body": body})
                    return
            await send(message)

        try:
            await self.app(scope, receive, send_audited)
        finally:
            _bucket.reset(token)
            if bucket:  # noted after the response started: a streamed download, sent (or partly sent)
                try:
                    await flush()
                except Exception:
                    log.exception("the audit of a streamed answer's unmasked requesters could not be written")
