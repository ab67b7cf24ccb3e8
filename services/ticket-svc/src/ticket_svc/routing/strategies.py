"""Team strategies: which available agent gets a ticket.

Pure and deterministic: the caller locks the team's agent rows, counts their open tickets,
builds ``AgentState`` values and calls ``pick_agent`` in the same transaction, then bumps the
chosen agent's ``last_assigned_seq``. Because the loads are read under that lock, the capacity
check here is a hard cap, not a hint. Every tie is broken by a total order ending in
``agent_id`` so two replicas given the same state pick the same agent.

Eligibility is the same for every strategy: status ``online``, not excluded (already offered
this ticket, or ``declined``), and spare capacity on the ticket's channel (``load < capacity``).
Strategies only differ in how they order the eligible agents.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Literal

AgentStatus = Literal["online", "away", "offline"]
Strategy = Literal["round_robin", "least_loaded", "skills", "manual"]
STRATEGIES: tuple[str, ...] = ("round_robin", "least_loaded", "skills", "manual")

#: Capacity key used for every channel an agent has no explicit entry for.
DEFAULT_CAPACITY_KEY = "default"


@dataclass(frozen=True, slots=True)
class AgentState:
    """One agent as the strategy sees it, at the moment of the decision.

    ``capacity`` and ``open_load`` are per channel: an agent with ``{"default": 5, "chat": 3}``
    may hold 3 open chats and, separately, 5 open tickets on each other channel. ``open_load``
    counts tickets assigned to the agent and not solved/closed. ``last_assigned_seq`` is a
    team-wide monotonic counter value of the agent's last automatic assignment (0 = never).
    ``declined`` marks an agent who refused this very ticket.
    """

    agent_id: str
    status: AgentStatus
    capacity: Mapping[str, int] = field(default_factory=dict)
    open_load: Mapping[str, int] = field(default_factory=dict)
    skills: frozenset[str] = frozenset()
    last_assigned_seq: int = 0
    declined: bool = False


def capacity_for(agent: AgentState, channel: str) -> int:
    """The agent's cap on ``channel``: its own entry, else ``default``, else 0 (takes nothing)."""
    return max(0, int(agent.capacity.get(channel, agent.capacity.get(DEFAULT_CAPACITY_KEY, 0))))


def load_for(agent: AgentState, channel: str) -> int:
    """Open tickets the agent holds on ``channel`` (never negative, whatever the input)."""
    return max(0, int(agent.open_load.get(channel, 0)))


def spare_for(agent: AgentState, channel: str) -> int:
    """How many more tickets of ``channel`` the agent can take (may be <= 0 when full or over)."""
    return capacity_for(agent, channel) - load_for(agent, channel)


def is_eligible(agent: AgentState, channel: str, exclude: Collection[str] = frozenset()) -> bool:
    """Online, not excluded, not declined, and below capacity on ``channel``."""
    return (
        agent.status == "online"
        and not agent.declined
        and agent.agent_id not in exclude
        and spare_for(agent, channel) > 0
    )


def eligible(agents: Iterable[AgentState], channel: str, exclude: Collection[str] = frozenset()) -> list[AgentState]:
    """The agents any strategy may choose from, in input order."""
    return [a for a in agents if is_eligible(a, channel, exclude)]


def _round_robin_key(agent: AgentState) -> tuple[int, str]:
    # Longest-waiting first: assigning bumps the seq past everyone else's, so with equal
    # availability every agent gets one ticket before anyone gets a second (fair within ±1).
    return agent.last_assigned_seq, agent.agent_id


def _least_loaded_key(channel: str) -> Callable[[AgentState], tuple[int, Fraction, int, str]]:
    def key(agent: AgentState) -> tuple[int, Fraction, int, str]:
        capacity, load = capacity_for(agent, channel), load_for(agent, channel)
        # Most spare seats first; between equal spare, the one least full relative to its cap
        # (exact fractions: no float ties that differ across platforms), then round-robin order.
        return -(capacity - load), Fraction(load, capacity), agent.last_assigned_seq, agent.agent_id

    return key


def _best_skilled(agents: list[AgentState], required: frozenset[str]) -> list[AgentState]:
    """Agents with every required skill; if none, those matching the most (keeps tickets moving)."""
    if not required:
        return agents
    full = [a for a in agents if required <= a.skills]
    if full:
        return full
    best = max((len(required & a.skills) for a in agents), default=0)
    return [a for a in agents if len(required & a.skills) == best]


def pick_agent(
    strategy: Strategy,
    agents: Iterable[AgentState],
    *,
    channel: str,
    required_skills: frozenset[str] = frozenset(),
    exclude: Collection[str] = frozenset(),
) -> str | None:
    """The agent to give a ticket on ``channel`` to, or ``None`` (queue it in the team).

    * ``round_robin``: smallest ``last_assigned_seq``, then ``agent_id``;
    * ``least_loaded``: most spare capacity, then lowest load/capacity, then round-robin order;
    * ``skills``: agents with all ``required_skills`` (else the most of them), then least-loaded;
    * ``manual``: always ``None`` — a supervisor assigns by hand.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; expected one of {', '.join(STRATEGIES)}")
    if strategy == "manual":
        return None
    candidates = eligible(agents, channel, exclude)
    if not candidates:
        return None
    if strategy == "round_robin":
        return min(candidates, key=_round_robin_key).agent_id
    if strategy == "skills":
        candidates = _best_skilled(candidates, frozenset(required_skills))
    return min(candidates, key=_least_loaded_key(channel)).agent_id


def next_offer(
    strategy: Strategy,
    agents: Iterable[AgentState],
    *,
    channel: str,
    offered: Collection[str],
    required_skills: frozenset[str] = frozenset(),
    exclude: Collection[str] = frozenset(),
) -> str | None:
    """Who to offer a ticket to after nobody accepted it within the team's accept timeout.

    ``offered`` is everyone it was already offered to (including the current holder), so the
    ticket walks through the team instead of bouncing between two agents; ``None`` once nobody
    is left, and the ticket then waits unassigned in the team.
    """
    return pick_agent(strategy, agents, channel=channel, required_skills=required_skills,
                      exclude=frozenset(exclude) | frozenset(offered))
