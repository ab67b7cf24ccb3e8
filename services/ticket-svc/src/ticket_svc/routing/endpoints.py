"""Agents, teams and routing rules (ticket-svc owns agent profiles; credentials stay in the gateway)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from starlette.convertors import StringConvertor, register_url_convertor
from starlette.responses import Response

from helpdesk_common import events
from helpdesk_common.app import runtime_of
from helpdesk_common.concurrency import IfMatch, check_version, etag_header
from helpdesk_common.identity import AGENT_ROLES, CurrentPrincipal, require_user
from helpdesk_common.problems import Problem
from helpdesk_common.responses import JSONBytesResponse
from helpdesk_common.validation import SafeStr

from . import repository, rules
from .handlers import USER_HANDLERS
from .schemas import AgentIn, AgentRead, AgentStatusIn, RuleRead, TeamIn, TeamPatch, TeamRead, TeamReplace
from .service import RULES

agents_router = APIRouter(prefix="/v1/agents", tags=["agents"])


class _AgentIdConvertor(StringConvertor):
    """An agent id in a path is any segment but ``me``, which names the caller's own routes: so
    ``PUT /v1/agents/me`` is a 405 (Allow: GET), not a profile for a user called "me"."""

    regex = "(?!me$)[^/]+"


register_url_convertor("agent_id", _AgentIdConvertor())
teams_router = APIRouter(prefix="/v1/teams", tags=["teams"])
rules_router = APIRouter(prefix="/v1/routing/rules", tags=["routing"])

MANAGERS = ("admin", "supervisor")


def _agent(row: Any, team_ids: list[uuid.UUID]) -> dict[str, Any]:
    return {"id": row["id"], "display_name": row["display_name"], "email": row["email"], "status": row["status"],
            "capacity": row["capacity"], "skills": row["skills"], "team_ids": team_ids, "updated_at": row["updated_at"],
            "active": row["active"]}


async def _agent_read(conn: Any, agent_id: str) -> dict[str, Any]:
    row = await repository.get_agent(conn, agent_id)
    if row is None:
        raise Problem(404, "not-found", "Agent not found", f"No agent profile {agent_id!r}.")
    return _agent(row, await repository.team_ids_of(conn, agent_id))


def _check_active(active: bool, agent_id: str, status: str) -> None:
    """A deactivated user's profile may be edited but stays offline (routing skips it anyway)."""
    if not active and status != "offline":
        raise Problem(409, "user-inactive", "User deactivated",
                      f"User {agent_id!r} is deactivated: the agent profile stays offline until the user is "
                      "active again.")


@agents_router.get("", response_model=list[AgentRead], summary="List agents")
async def list_agents(request: Request, principal: CurrentPrincipal) -> JSONBytesResponse:
    require_user(principal)
    async with runtime_of(request).raw_connection() as conn:
        return JSONBytesResponse([_agent(r, await repository.team_ids_of(conn, r["id"]))
                                  for r in await repository.list_agents(conn)])


@agents_router.get("/me", response_model=AgentRead, summary="My agent profile and teams")
async def me(request: Request, principal: CurrentPrincipal) -> JSONBytesResponse:
    require_user(principal)
    async with runtime_of(request).raw_connection() as conn:
        return JSONBytesResponse(await _agent_read(conn, principal.id))


@agents_router.put("/me/status", response_model=AgentRead, summary="Go online, away or offline")
async def set_my_status(request: Request, body: AgentStatusIn, principal: CurrentPrincipal) -> JSONBytesResponse:
    require_user(principal)
    async with runtime_of(request).raw_transaction() as conn:
        agent = await repository.get_agent(conn, principal.id)
        if agent is None:
            raise Problem(404, "not-found", "Agent not found", "You have no agent profile yet.")
        _check_active(agent["active"], principal.id, body.status)
        await repository.set_agent_status(conn, agent_id=principal.id, status=body.status)
        return JSONBytesResponse(await _agent_read(conn, principal.id))


@agents_router.get("/{agent_id:agent_id}", response_model=AgentRead, summary="Read an agent")
async def get_agent(request: Request, agent_id: SafeStr, principal: CurrentPrincipal) -> JSONBytesResponse:
    require_user(principal)
    async with runtime_of(request).raw_connection() as conn:
        return JSONBytesResponse(await _agent_read(conn, agent_id))


@agents_router.put("/{agent_id:agent_id}", response_model=AgentRead,
                   summary="Replace a user's agent profile (404 for an id that is no user)")
async def put_agent(request: Request, agent_id: Annotated[SafeStr, Path(max_length=128)], body: AgentIn,
                    principal: CurrentPrincipal) -> JSONBytesResponse:
    require_user(principal, *MANAGERS)
    if not 0 < len(agent_id) <= 128:
        raise Problem(422, "validation-error", "Invalid agent id", "Agent ids are 1-128 characters.")
    async with runtime_of(request).raw_transaction() as conn:
        user = await repository.user_of(conn, agent_id)
        if user is None:
            raise Problem(404, "not-found", "User not found",
                          f"No user {agent_id!r}: agent profiles are for the gateway's users (POST /v1/users "
                          "creates the user and its profile).")
        if user["role"] not in AGENT_ROLES:
            raise Problem(409, "not-an-agent", "Not an agent",
                          f"User {agent_id!r} is an {user['role']}: editors write the knowledge base and work no "
                          "tickets; change the user's role first (PATCH /v1/users/{id}).")
        _check_active(user["active"], agent_id, body.status)
        await repository.upsert_agent(conn, agent_id=agent_id, values=body.model_dump())
        return JSONBytesResponse(await _agent_read(conn, agent_id))


def _team(row: Any, members: list[str]) -> dict[str, Any]:
    return {"id": row["id"], "name": row["name"], "strategy": row["strategy"],
            "accept_timeout_s": row["accept_timeout_s"], "required_skills": row["required_skills"], "members": members,
            "version": row["version"]}


def _team_response(row: Any, members: list[str], status_code: int = 200) -> JSONBytesResponse:
    return JSONBytesResponse(_team(row, members), status_code=status_code, headers=etag_header(row["version"]))


def _team_not_found(team_id: uuid.UUID) -> Problem:
    return Problem(404, "not-found", "Team not found", f"No team {team_id}.")


async def _check_members(conn: Any, members: list[str]) -> None:
    unknown = await repository.unknown_agents(conn, members)
    if unknown:
        raise Problem(422, "validation-error", "Unknown agents", f"No agent profiles for: {', '.join(unknown)}.",
                      errors=[{"field": "members", "message": f"unknown agent {a!r}", "code": "not_found"}
                              for a in unknown])


@teams_router.get("", response_model=list[TeamRead], summary="List teams")
async def list_teams(request: Request, principal: CurrentPrincipal) -> JSONBytesResponse:
    require_user(principal)
    async with runtime_of(request).raw_connection() as conn:
        return JSONBytesResponse([_team(r, await repository.members(conn, r["id"]))
                                  for r in await repository.list_teams(conn)])


@teams_router.post("", status_code=201, response_model=TeamRead, summary="Create a team")
async def create_team(request: Request, body: TeamIn, principal: CurrentPrincipal) -> JSONBytesResponse:
    require_user(principal, *MANAGERS)
    async with runtime_of(request).raw_transaction() as conn:
        await _check_members(conn, body.members)
        row = await repository.insert_team(conn, {"id": uuid.uuid4(), **body.model_dump()})
        if row is None:
            raise Problem(409, "conflict", "Team exists", f"A team named {body.name!r} exists.")
        await repository.set_members(conn, row["id"], body.members)
    return _team_response(row, sorted(body.members), status_code=201)


@teams_router.get("/{team_id}", response_model=TeamRead, summary="Read a team")
async def get_team(request: Request, team_id: uuid.UUID, principal: CurrentPrincipal) -> JSONBytesResponse:
    require_user(principal)
    async with runtime_of(request).raw_connection() as conn:
        row = await repository.get_team(conn, team_id)
        if row is None:
            raise _team_not_found(team_id)
        return _team_response(row, await repository.members(conn, team_id))


async def _write_team(conn: Any, team_id: uuid.UUID, changes: dict[str, Any], if_match: str | None) -> JSONBytesResponse:
    """Apply ``changes`` (team fields and/or ``members``) to the locked team; If-Match is
    compared under the lock. Nothing to change: the team as it is, version unchanged."""
    current = await repository.lock_team(conn, team_id)
    if current is None:
        raise _team_not_found(team_id)
    check_version(current["version"], if_match, what="team")
    members = changes.pop("members", None)
    if members is not None:
        await _check_members(conn, members)
    if not changes and members is None:
        return _team_response(current, await repository.members(conn, team_id))
    try:
        row = await repository.update_team(conn, team_id, changes)
    except repository.NameTaken:
        raise Problem(409, "conflict", "Team exists", f"A team named {changes.get('name')!r} exists.") from None
    if members is not None:
        await repository.set_members(conn, team_id, members)
    return _team_response(row, sorted(members) if members is not None else await repository.members(conn, team_id))


@teams_router.put("/{team_id}", response_model=TeamRead,
                  summary="Replace a team: every field is required (PATCH changes some); If-Match: its version")
async def put_team(request: Request, team_id: uuid.UUID, body: TeamReplace, principal: CurrentPrincipal,
                   if_match: IfMatch = None) -> JSONBytesResponse:
    require_user(principal, *MANAGERS)
    async with runtime_of(request).raw_transaction() as conn:
        return await _write_team(conn, team_id, body.model_dump(), if_match)


@teams_router.patch("/{team_id}", response_model=TeamRead,
                    summary="Change some of a team's fields (the others stay); If-Match: its version")
async def patch_team(request: Request, team_id: uuid.UUID, body: TeamPatch, principal: CurrentPrincipal,
                     if_match: IfMatch = None) -> JSONBytesResponse:
    require_user(principal, *MANAGERS)
    async with runtime_of(request).raw_transaction() as conn:
        return await _write_team(conn, team_id, body.model_dump(exclude_unset=True), if_match)


@teams_router.delete("/{team_id}", status_code=204,
                     summary="Delete a team (409 while tickets that are not closed or routing rules use it)")
async def delete_team(request: Request, team_id: uuid.UUID, principal: CurrentPrincipal,
                      if_match: IfMatch = None) -> Response:
    """A team is deleted only when nothing live points to it: its tickets that are not closed
    would sit in a queue nobody sees, and a rule would route new ones there. Move or close
    those tickets and change the rules first (409 lists what is left). Closed tickets keep the
    team's id as history; memberships go with the team; the name is free again."""
    require_user(principal, *MANAGERS)
    async with runtime_of(request).raw_transaction() as conn:
        current = await repository.lock_team(conn, team_id)
        if current is None:
            raise _team_not_found(team_id)
        check_version(current["version"], if_match, what="team")
        open_tickets, rule_ids = await repository.team_usage(conn, team_id)
        if open_tickets or rule_ids:
            raise Problem(409, "team-in-use", "Team in use",
                          f"{open_tickets} tickets that are not closed and {len(rule_ids)} routing rules use this "
                          "team; move or close the tickets and change the rules first.",
                          open_tickets=open_tickets, routing_rules=[str(r) for r in rule_ids])
        await repository.delete_team(conn, team_id)
    return Response(status_code=204)


def _rule(row: Any) -> dict[str, Any]:
    return {"id": row["id"], "name": row["name"], "position": row["position"], "enabled": row["enabled"],
            "definition": row["definition"]}


async def _validated(conn: Any, body: rules.RuleIn) -> dict[str, Any]:
    definition = body.model_dump(mode="json", exclude={"name", "position", "enabled"})
    team = (definition.get("actions") or {}).get("set_team")
    if team is not None:
        try:
            exists = await repository.get_team(conn, uuid.UUID(str(team)))
        except ValueError:
            exists = None
        if exists is None:
            raise Problem(422, "validation-error", "Unknown team", f"No team {team}.",
                          errors=[{"field": "actions.set_team", "message": "no such team", "code": "not_found"}])
    return definition


@rules_router.get("", response_model=list[RuleRead], summary="Routing rules in evaluation order")
async def list_rules(request: Request, principal: CurrentPrincipal) -> JSONBytesResponse:
    require_user(principal)
    async with runtime_of(request).raw_connection() as conn:
        return JSONBytesResponse([_rule(r) for r in await repository.list_rules(conn, enabled_only=False)])


@rules_router.post("", status_code=201, response_model=RuleRead, summary="Add a routing rule")
async def create_rule(request: Request, body: rules.RuleIn, principal: CurrentPrincipal) -> JSONBytesResponse:
    require_user(principal, *MANAGERS)
    async with runtime_of(request).raw_transaction() as conn:
        row = await repository.insert_rule(conn, rule_id=uuid.uuid4(), name=body.name, position=body.position,
                                           definition=await _validated(conn, body), enabled=body.enabled)
    RULES.invalidate()
    return JSONBytesResponse(_rule(row), status_code=201)


@rules_router.put("/{rule_id}", response_model=RuleRead, summary="Replace a routing rule")
async def put_rule(request: Request, rule_id: uuid.UUID, body: rules.RuleIn, principal: CurrentPrincipal) -> JSONBytesResponse:
    require_user(principal, *MANAGERS)
    async with runtime_of(request).raw_transaction() as conn:
        row = await repository.update_rule(conn, rule_id=rule_id, name=body.name, position=body.position,
                                           definition=await _validated(conn, body), enabled=body.enabled)
    if row is None:
        raise Problem(404, "not-found", "Rule not found", f"No rule {rule_id}.")
    RULES.invalidate()
    return JSONBytesResponse(_rule(row))


@rules_router.delete("/{rule_id}", status_code=204, summary="Delete a routing rule")
async def delete_rule(request: Request, rule_id: uuid.UUID, principal: CurrentPrincipal) -> Response:
    require_user(principal, *MANAGERS)
    async with runtime_of(request).raw_transaction() as conn:
        if not await repository.delete_rule(conn, rule_id):
            raise Problem(404, "not-found", "Rule not found", f"No rule {rule_id}.")
    RULES.invalidate()
    return Response(status_code=204)


# --- the gateway's synchronous user provisioning (gateway/auth/users.py) ------------------------
#: not under /v1: the gateway forwards /v1/<prefix> paths only, so no client reaches this; the
#: gateway calls it with the signed identity of the admin who made the change
internal_router = APIRouter(prefix="/internal/users", include_in_schema=False)


@internal_router.put("/{user_id}", response_model=AgentRead)
async def provision_user(request: Request, user_id: SafeStr, principal: CurrentPrincipal) -> JSONBytesResponse:
    """Apply a user event (the body: the ``user.created`` / ``user.updated`` the gateway has just
    committed to its outbox) with the consumer's own handler, and answer the agent profile. The
    same event arriving later from ``users.events`` is then an older-or-equal version: no effect."""
    require_user(principal, "admin")
    try:
        event = events.decode(await request.body())
    except (events.UnknownEventType, ValueError) as exc:
        raise Problem(422, "validation-error", "Not a user event", "The body must be a user.* event.") from exc
    if event.type not in USER_HANDLERS or event.subject != user_id or str(event.data.user_id) != user_id:
        raise Problem(422, "validation-error", "Not this user's event",
                      f"The body must be a user.* event about user {user_id!r}.")
    async with runtime_of(request).raw_transaction() as conn:
        await USER_HANDLERS[event.type](conn, event)
        if event.data.role not in AGENT_ROLES and await repository.get_agent(conn, user_id) is None:
            return Response(status_code=204)  # an editor: applied, and no agent profile to show
        return JSONBytesResponse(await _agent_read(conn, user_id))
