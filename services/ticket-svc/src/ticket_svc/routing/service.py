"""Routing at intake and assignment: rules → team → an agent picked by the team's strategy.

The pure decisions live in ``rules`` and ``strategies``; this module feeds them from the
database inside the intake transaction. Capacity is a hard cap because every automatic
assignment to a team first locks that team's agent rows (``lock_team_agents``) and only then
counts their open tickets: two concurrent intakes for one team take turns, so neither can
read a load the other is about to change.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from helpdesk_common.identities import primary_identity
from helpdesk_common.problems import Problem

from ..pii.codec import codec
from ..tickets import changes
from ..tickets import repository as tickets
from . import repository, rules, strategies

RULES_CACHE_SECONDS = 2.0


@dataclass(frozen=True, slots=True)
class Decision:
    team_id: uuid.UUID | None
    assignee_id: str | None
    priority: str
    tags: tuple[str, ...]
    reason: str
    offered: bool = False
    matched_rule_ids: tuple[Any, ...] = field(default_factory=tuple)


class _RuleCache:
    """Enabled rules, reloaded at most every 2 s (and at once after a change in this process)."""

    def __init__(self) -> None:
        self.loaded_at = 0.0
        self.rules: list[rules.Rule] = []

    def invalidate(self) -> None:
        self.loaded_at = 0.0

    async def get(self, conn: Any) -> list[rules.Rule]:
        if time.monotonic() - self.loaded_at > RULES_CACHE_SECONDS:
            rows = await repository.list_rules(conn, enabled_only=True)
            self.rules = [rule_of(row) for row in rows]
            self.loaded_at = time.monotonic()
        return self.rules


RULES = _RuleCache()


def rule_of(row: Mapping[str, Any]) -> rules.Rule:
    definition = dict(row["definition"])
    return rules.RuleIn.model_validate(
        {**definition, "name": row["name"], "position": row["position"]}
    ).to_rule(rule_id=str(row["id"]), enabled=row["enabled"])


@dataclass(frozen=True, slots=True)
class PendingFacts:
    facts: rules.TicketFacts
    identity: tuple[str, str] | None


def facts_for(*, channel: str, type_: str | None, priority: str, language: str | None, tags: Sequence[str],
              subject: str, custom_fields: Mapping[str, Any], requester: Mapping[str, Any]) -> PendingFacts:
    return PendingFacts(
        facts=rules.TicketFacts(channel=channel, type=type_, priority=priority, language=language, tags=tuple(tags),
                                customer_tier=None, subject=subject, custom_fields=dict(custom_fields)),
        identity=primary_identity(dict(requester)),
    )


async def route_new(conn: Any, *, facts: PendingFacts, explicit_team_id: uuid.UUID | None,
                    explicit_assignee_id: str | None, active: Sequence[Any] | None = None) -> Decision:
    """``active``: the active rules the caller already read (``RULES.get``), so that one request
    decides on one list; None reads them here."""
    active_rules = await RULES.get(conn) if active is None else active
    base = facts.facts
    if active_rules:
        tier = await repository.customer_tier(conn, kind=facts.identity[0], value=facts.identity[1],
                                              value_bidx=codec().identity_index(facts.identity[1])) \
            if facts.identity else None
        outcome = rules.evaluate(active_rules, rules.replace_facts(base, customer_tier=tier))
        priority, tags = outcome.priority, tuple(outcome.tags)
        team_id = explicit_team_id or (uuid.UUID(str(outcome.team_id)) if outcome.team_id else None)
        assignee_id = explicit_assignee_id or outcome.assignee_id
        matched = tuple(outcome.matched_rule_ids)
    else:
        priority, tags, team_id, assignee_id, matched = base.priority, base.tags, explicit_team_id, \
            explicit_assignee_id, ()
    if assignee_id is not None and explicit_assignee_id is None:
        # a rule's assignee who was deactivated (or is no user): the team's strategy decides instead
        assignee_id = assignee_id if await is_routable(conn, assignee_id) else None
    elif assignee_id is not None:
        await check_assignable(conn, agent_id=assignee_id, team_id=team_id)
    if assignee_id is not None:
        if explicit_team_id is not None:
            await check_team(conn, explicit_team_id)
        return Decision(team_id, assignee_id, priority, tags, "manual" if explicit_assignee_id else "rule",
                        matched_rule_ids=matched)
    if team_id is None:
        return Decision(None, None, priority, tags, "none", matched_rule_ids=matched)
    # a team the caller named is key-share locked by the same read (see check_team)
    team = await repository.get_team(conn, team_id, key_share=explicit_team_id is not None)
    if team is None:
        if explicit_team_id is not None:
            raise Problem(422, "validation-error", "Unknown team", f"No team {team_id}.",
                          errors=[{"field": "team_id", "message": "no such team", "code": "not_found"}])
        return Decision(None, None, priority, tags, "none", matched_rule_ids=matched)
    picked = await pick_in_team(conn, team, channel=base.channel, exclude=())
    return Decision(team_id, picked, priority, tags, team["strategy"] if picked else "queued",
                    offered=picked is not None and team["accept_timeout_s"] is not None, matched_rule_ids=matched)


async def pick_in_team(conn: Any, team: Mapping[str, Any], *, channel: str, exclude: Sequence[str]) -> str | None:
    if team["strategy"] == "manual":
        return None
    locked = await repository.lock_team_agents(conn, team["id"])
    if not locked:
        return None
    loads: dict[str, dict[str, int]] = {}
    for row in await repository.open_loads(conn, [a["id"] for a in locked]):
        loads.setdefault(row["assignee_id"], {})[row["channel"]] = row["n"]
    states = [
        strategies.AgentState(
            agent_id=a["id"], status=a["status"], capacity=dict(a["capacity"]), open_load=loads.get(a["id"], {}),
            skills=frozenset(a["skills"]), last_assigned_seq=a["last_assigned_seq"],
        )
        for a in locked
    ]
    return strategies.pick_agent(team["strategy"], states, channel=channel,
                                 required_skills=frozenset(team["required_skills"]), exclude=frozenset(exclude))


async def is_routable(conn: Any, agent_id: str) -> bool:
    """The agent has a profile and is an active user."""
    agent = await repository.get_agent(conn, agent_id)
    return agent is not None and agent["active"]


async def check_assignable(conn: Any, *, agent_id: str | None, team_id: uuid.UUID | None) -> None:
    """Someone assigns a ticket to ``agent_id``: an agent profile of an active user (422 naming
    ``assignee_id`` otherwise). Releasing (None) is always allowed."""
    if agent_id is None:
        return
    agent = await repository.get_agent(conn, agent_id)
    if agent is None:
        raise Problem(422, "validation-error", "Unknown agent", f"No agent {agent_id!r}.",
                      errors=[{"field": "assignee_id", "message": "no such agent", "code": "not_found"}])
    if not agent["active"]:
        raise Problem(422, "validation-error", "Deactivated agent", f"Agent {agent_id!r} is deactivated.",
                      errors=[{"field": "assignee_id", "message": "deactivated agent"}])


async def check_team(conn: Any, team_id: uuid.UUID | None) -> None:
    """A team a user puts a ticket into must exist (teams can be deleted); 422 naming ``team_id``.
    The row is key-share locked, so a concurrent delete waits and then counts this ticket."""
    if team_id is not None and not await repository.team_exists_shared(conn, team_id):
        raise Problem(422, "validation-error", "Unknown team", f"No team {team_id}.",
                      errors=[{"field": "team_id", "message": "no such team", "code": "not_found"}])


async def check_followers(conn: Any, followers: Sequence[str]) -> None:
    """Followers are agents with a profile here; 422 naming ``followers`` and each unknown id."""
    if not followers:
        return
    unknown = await repository.unknown_agents(conn, list(followers))
    if unknown:
        raise Problem(422, "validation-error", "Unknown followers", f"No agent profiles for: {', '.join(unknown)}.",
                      errors=[{"field": "followers", "message": f"unknown agent {a!r}", "code": "not_found"}
                              for a in unknown])


async def assign(conn: Any, row: Mapping[str, Any], *, team_id: uuid.UUID | None, assignee_id: str | None,
                 reason: str, actor: str, offered: bool, emit: bool = True, offered_to: Sequence[str] = ()) -> Any:
    """Set team and assignee; ``emit=False`` at creation (ticket.created carries them)."""
    now = datetime.now(UTC)
    values: dict[str, Any] = {
        "team_id": team_id, "assignee_id": assignee_id,
        "assignment_state": ("offered" if offered else "accepted") if assignee_id else None,
        "offered_at": now if offered else None,
        "offered_to": list(dict.fromkeys([*row["offered_to"], *offered_to, *([assignee_id] if offered else [])])),
    }
    if assignee_id is not None and reason not in ("manual", "rule"):
        await repository.bump_assignment_seq(conn, assignee_id)
    if not emit:
        return await tickets.update_ticket(conn, row["id"], values)
    return await changes.apply(conn, row, values, actor=actor, action="assigned", reason=reason)


async def reoffer_due(conn: Any, *, limit: int = 50) -> int:
    """Offer each ticket not accepted in time to the next available agent of its team."""
    moved = 0
    for item in await repository.due_offers(conn, limit=limit):
        row = await tickets.lock_ticket(conn, item["id"])
        team = await repository.get_team(conn, row["team_id"])
        exclude = list(dict.fromkeys([*row["offered_to"], *([row["assignee_id"]] if row["assignee_id"] else [])]))
        picked = await pick_in_team(conn, team, channel=row["channel"] or "api", exclude=exclude)
        await assign(conn, row, team_id=row["team_id"], assignee_id=picked, reason="reoffer",
                     actor="system:routing", offered=picked is not None, offered_to=exclude)
        moved += 1
    return moved
