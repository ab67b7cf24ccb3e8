"""Who may see which figures: admins everything, supervisors their teams', agents their own and their team's.

Team membership lives in ticket-svc, not in events analytics folds, so it is asked for over HTTP
(``GET /v1/agents/me`` for the caller's teams, ``GET /v1/agents`` for the members of a
supervisor's teams) with the caller's own identity token forwarded: ticket-svc answers exactly
what it would answer the caller, and analytics-svc never needs a credential of its own. Answers
are cached per user for a short TTL (a dashboard polls every few seconds). If ticket-svc cannot
answer, the request fails with 503 rather than guessing a scope: showing a supervisor every
team's figures, or none, would both be wrong.

The rollups hold one dimension at a time (``team``, ``agent``, ``channel``, ...), never a pair, so
a scope can only be expressed in ``team`` and ``agent`` values. A scoped caller's totals are the
sum of its teams' rows (a ticket has one team, so nothing is counted twice); a breakdown by a
dimension that spans every team (channel, tag, ...) cannot be narrowed to a team and is an
admin's view. Figures of a team or agent outside the scope are answered 404, as if they did not
exist (existence is private); requests naming neither are narrowed silently.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from fastapi import Request

from helpdesk_common.identity import IDENTITY_HEADER, Principal, require_user
from helpdesk_common.observability import request_id_var
from helpdesk_common.problems import Problem

log = logging.getLogger(__name__)

SEES_ALL_ROLES = frozenset({"admin"})
#: dimensions a scope can be expressed in (the rollups keep no team x channel pairs)
SCOPABLE_DIMENSIONS = frozenset({"all", "team", "agent"})


@dataclass(frozen=True, slots=True)
class Scope:
    """What one caller may see. ``agent_ids`` None means every agent (admins)."""

    user_id: str
    role: str
    sees_all: bool
    team_ids: frozenset[str]
    agent_ids: frozenset[str] | None


@dataclass(frozen=True, slots=True)
class Selection:
    """The rollup rows whose sum is a caller's figure: ``dim`` and the values to add up
    (None: the one row set of an unrestricted dimension, e.g. ``all`` for admins)."""

    dim: str
    values: tuple[str, ...] | None


# --------------------------------------------------------------------------- pure rules


def scope_for(principal: Principal, *, team_ids: frozenset[str] = frozenset(),
              members: frozenset[str] = frozenset()) -> Scope:
    """The scope of a user given their teams (and, for a supervisor, the agents in those teams)."""
    role = principal.role or ""
    if role in SEES_ALL_ROLES:
        return Scope(user_id=principal.id, role=role, sees_all=True, team_ids=frozenset(), agent_ids=None)
    if role == "supervisor":
        agents = members | {principal.id}
    else:  # an agent sees their own figures and their team's, not each teammate's
        agents = frozenset({principal.id})
    return Scope(user_id=principal.id, role=role, sees_all=False, team_ids=team_ids, agent_ids=agents)


def _not_found(kind: str) -> Problem:
    return Problem(404, "not-found", f"{kind.capitalize()} not found", f"No such {kind}.")


def base_selection(scope: Scope) -> Selection:
    """Everything the caller may see, as rollup rows: ``all`` for admins, else their teams' rows
    (an agent in no team: their own agent row)."""
    if scope.sees_all:
        return Selection("all", ("",))
    if scope.team_ids:
        return Selection("team", tuple(sorted(scope.team_ids)))
    if scope.role != "supervisor":
        return Selection("agent", (scope.user_id,))
    return Selection("team", ())


def filtered_selection(scope: Scope, *, team_id: uuid.UUID | None, agent_id: str | None) -> Selection:
    """The rows of one team or agent the caller named, 404 outside the scope; else :func:`base_selection`."""
    if team_id is not None and agent_id is not None:
        raise Problem(422, "validation-error", "Validation failed", "Give team_id or agent_id, not both: "
                      "the rollups hold one dimension at a time.",
                      errors=[{"field": "query.agent_id", "message": "not combinable with team_id",
                               "code": "cross_field"}])
    if team_id is not None:
        if not scope.sees_all and str(team_id) not in scope.team_ids:
            raise _not_found("team")
        return Selection("team", (str(team_id),))
    if agent_id is not None:
        if scope.agent_ids is not None and agent_id not in scope.agent_ids:
            raise _not_found("agent")
        return Selection("agent", (agent_id,))
    return base_selection(scope)


def visible_values(scope: Scope, dim: str) -> tuple[str, ...] | None:
    """The values of ``dim`` the caller may list (None: all). Dimensions that span every team are
    an admin's: the rollups cannot narrow a channel's figures to one team."""
    if scope.sees_all:
        return None
    if dim == "team":
        return tuple(sorted(scope.team_ids))
    if dim == "agent":
        return tuple(sorted(scope.agent_ids or ()))
    raise Problem(403, "forbidden", "Forbidden",
                  f"Figures by {dim} cover every team; only admins may read them. Ask by team or agent.")


@dataclass(frozen=True, slots=True)
class TicketFilter:
    """A scope over ticket rows (ticket_metrics): None lists mean no restriction on that column."""

    team_ids: tuple[uuid.UUID, ...] | None
    assignee_ids: tuple[str, ...] | None


def ticket_filter(selection: Selection) -> TicketFilter:
    """The ticket-row filter equivalent to a rollup selection (open counts, at-risk lists, steps)."""
    if selection.dim == "all":
        return TicketFilter(None, None)
    if selection.dim == "team":
        return TicketFilter(tuple(uuid.UUID(v) for v in (selection.values or ())), None)
    if selection.dim == "agent":
        return TicketFilter(None, tuple(selection.values or ()))
    raise ValueError(f"not a scopable dimension: {selection.dim}")


def ticket_scope(scope: Scope, *, team_id: uuid.UUID | None, agent_id: str | None) -> TicketFilter:
    """The ticket rows a caller asks for: ticket rows carry team and assignee together, so unlike
    the rollups both filters may be given (one agent's tickets in one team), each checked as in
    :func:`filtered_selection`."""
    if team_id is None or agent_id is None:
        return ticket_filter(filtered_selection(scope, team_id=team_id, agent_id=agent_id))
    team = ticket_filter(filtered_selection(scope, team_id=team_id, agent_id=None))
    agent = ticket_filter(filtered_selection(scope, team_id=None, agent_id=agent_id))
    return TicketFilter(team.team_ids, agent.assignee_ids)


# --------------------------------------------------------------------------- ticket-svc lookups


class TeamDirectoryUnavailable(Exception):
    """ticket-svc could not tell us the caller's teams."""


class TeamDirectory:
    """A user's teams (and a supervisor's team members) from ticket-svc, cached per user."""

    def __init__(self, *, ticket_url: str, session: Callable[[], aiohttp.ClientSession], ttl_s: float,
                 timeout_s: float) -> None:
        self._base = ticket_url.rstrip("/")
        self._session = session
        self._ttl_s = ttl_s
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._cache: dict[tuple[str, str], tuple[Any, float]] = {}
        self._inflight: dict[tuple[str, str], asyncio.Future[Any]] = {}

    async def scope(self, principal: Principal, token: str) -> Scope:
        if principal.role in SEES_ALL_ROLES:
            return scope_for(principal)
        teams = await self._cached(("me", principal.id), lambda: self._my_teams(token))
        members: frozenset[str] = frozenset()
        if principal.role == "supervisor" and teams:
            directory = await self._cached(("agents", principal.id), lambda: self._agents(token))
            members = frozenset(agent for agent, agent_teams in directory.items() if agent_teams & teams)
        return scope_for(principal, team_ids=teams, members=members)

    async def _cached(self, key: tuple[str, str], fetch: Callable[[], Any]) -> Any:
        hit = self._cache.get(key)
        if hit is not None and hit[1] > time.monotonic():
            return hit[0]
        pending = self._inflight.get(key)
        if pending is None:  # one call per user however many requests ask at once
            pending = asyncio.ensure_future(fetch())
            self._inflight[key] = pending
            pending.add_done_callback(lambda _f: self._inflight.pop(key, None))
        value = await asyncio.shield(pending)
        if len(self._cache) > 100_000:
            self._cache.clear()
        self._cache[key] = (value, time.monotonic() + self._ttl_s)
        return value

    async def _get(self, path: str, token: str) -> tuple[int, Any]:
        headers = {IDENTITY_HEADER: token, "accept": "application/json"}
        rid = request_id_var.get()
        if rid:
            headers["x-request-id"] = rid
        try:
            async with self._session().get(self._base + path, headers=headers, timeout=self._timeout) as r:
                if r.status == 200:
                    return 200, await r.json(content_type=None)
                return r.status, None
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
            log.warning("ticket-svc unreachable for team lookup", extra={"path": path, "error": repr(exc)})
            raise TeamDirectoryUnavailable(repr(exc)) from exc

    async def _my_teams(self, token: str) -> frozenset[str]:
        status, body = await self._get("/v1/agents/me", token)
        if status == 404:  # a user with no agent profile belongs to no team
            return frozenset()
        if status != 200 or not isinstance(body, dict):
            raise TeamDirectoryUnavailable(f"ticket-svc answered {status}")
        return frozenset(str(t) for t in (body.get("team_ids") or []))

    async def _agents(self, token: str) -> dict[str, frozenset[str]]:
        status, body = await self._get("/v1/agents", token)
        if status != 200 or not isinstance(body, list):
            raise TeamDirectoryUnavailable(f"ticket-svc answered {status}")
        return {str(a.get("id")): frozenset(str(t) for t in (a.get("team_ids") or []))
                for a in body if isinstance(a, dict) and a.get("id")}


def directory_of(request: Request) -> TeamDirectory:
    return request.app.state.team_directory


async def caller_scope(request: Request, principal: Principal) -> Scope:
    """The caller's scope; channels get 403, a ticket-svc outage 503 (never a guessed scope)."""
    require_user(principal)
    try:
        return await directory_of(request).scope(principal, request.headers.get(IDENTITY_HEADER, ""))
    except TeamDirectoryUnavailable as exc:
        raise Problem(503, "service-unavailable", "Service unavailable",
                      "Team membership cannot be read right now; try again shortly.",
                      headers={"Retry-After": "5"}) from exc


def team_directory_hook(settings: Any) -> Callable[[Any], Any]:
    """Lifespan hook: one aiohttp session per process for the lookups."""
    import contextlib

    @contextlib.asynccontextmanager
    async def hook(app: Any) -> Any:
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=20))
        app.state.team_directory = TeamDirectory(ticket_url=settings.ticket_url, session=lambda: session,
                                                 ttl_s=settings.team_cache_ttl_s,
                                                 timeout_s=settings.ticket_timeout_s)
        try:
            yield
        finally:
            await session.close()

    return hook
