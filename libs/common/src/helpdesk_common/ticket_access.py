"""May this caller read this ticket? Asked of ticket-svc by the services that keep data about
tickets they do not own (sla-svc's timers, kb-svc's article links).

ticket-svc owns tickets and the one rule of who reads which (``ticket_svc/tickets/policy.py``,
docs/security.md "Tickets: who may read and change what"): an agent reads their teams' tickets,
the triage queue and tickets assigned to them, and another team's ticket does not exist for them
(404). A service that answers about a ticket by its id must give the same answer, or an agent
learns through ``/v1/sla/tickets/{id}`` what ``/v1/tickets/{id}`` hides. So instead of copying
the rule (and the team memberships it needs), such a service asks ticket-svc
``GET /v1/tickets/{id}`` with the caller's own signed identity, as the gateway forwarded it:

- admins and supervisors read every ticket: no call;
- 200: readable; 404 (or 403, a role that reaches no ticket: an editor): not readable,
  answered as the service's own 404 ``not-found``;
- anything else, or ticket-svc unreachable within the timeout: 503 with ``Retry-After`` (never
  a guess in either direction).

One call per request of an agent, on a kept-alive connection pool of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
from fastapi import Request

from .identity import IDENTITY_HEADER, Principal
from .observability import request_id_var
from .problems import Problem

log = logging.getLogger(__name__)

#: roles that read every ticket (the policy's staff)
SEES_EVERY_TICKET = frozenset({"admin", "supervisor"})


def needs_check(principal: Principal) -> bool:
    """Whether ``principal``'s reads of a ticket must be asked of ticket-svc."""
    return not (principal.kind == "user" and principal.role in SEES_EVERY_TICKET)


class TicketAccess:
    def __init__(self, *, ticket_url: str, timeout_s: float = 2.0, max_connections: int = 20) -> None:
        self._base = ticket_url.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=self._max_connections))
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def may_read(self, identity_token: str, ticket_id: uuid.UUID) -> bool:
        headers = {IDENTITY_HEADER: identity_token, "accept": "application/json"}
        rid = request_id_var.get()
        if rid:
            headers["x-request-id"] = rid
        try:
            async with self._client().get(f"{self._base}/v1/tickets/{ticket_id}", headers=headers,
                                          timeout=self._timeout) as response:
                status = response.status
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            log.warning("ticket-svc unreachable for a ticket access check", extra={"error": repr(exc)})
            raise _unavailable() from exc
        if status == 200:
            return True
        if status in (403, 404):  # 403: a role ticket-svc refuses every ticket (an editor)
            return False
        log.warning("ticket-svc answered a ticket access check with %s", status)
        raise _unavailable()

    async def require_readable(self, request: Request, principal: Principal, ticket_id: uuid.UUID) -> None:
        """Return when ``principal`` may read the ticket, else raise the 404 ``not-found`` problem."""
        if not needs_check(principal):
            return
        if not await self.may_read(request.headers.get(IDENTITY_HEADER, ""), ticket_id):
            raise Problem(404, "not-found", "Not found", f"No ticket {ticket_id}.")


def _unavailable() -> Problem:
    return Problem(503, "service-unavailable", "Service unavailable",
                   "Ticket access cannot be checked right now; try again shortly.", headers={"Retry-After": "5"})


def ticket_access_of(request: Request) -> TicketAccess:
    """The app's checker: the one ``ticket_access_hook`` made (closed with the app), or one made
    on first use from the app's settings."""
    state = request.app.state
    access = getattr(state, "ticket_access", None)
    if access is None:
        settings = state.settings
        access = state.ticket_access = TicketAccess(ticket_url=settings.ticket_url,
                                                    timeout_s=settings.ticket_timeout_s)
    return access


def ticket_access_hook(settings: Any) -> Callable[[Any], Any]:
    """Lifespan hook: ``app.state.ticket_access`` from ``settings.ticket_url`` and
    ``settings.ticket_timeout_s``."""

    @contextlib.asynccontextmanager
    async def hook(app: Any) -> AsyncIterator[None]:
        access = TicketAccess(ticket_url=settings.ticket_url, timeout_s=settings.ticket_timeout_s)
        app.state.ticket_access = access
        try:
            yield
        finally:
            await access.close()

    return hook
