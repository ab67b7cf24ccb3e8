"""Team strategies on hand-built agent states: eligibility, ordering, tie-breaks, re-offer."""

from __future__ import annotations

import pytest

from ticket_svc.routing.strategies import (
    AgentState,
    capacity_for,
    eligible,
    next_offer,
    pick_agent,
    spare_for,
)


def agent(agent_id: str, *, status: str = "online", cap: int | dict = 5, load: int | dict = 0, seq: int = 0,
          skills: tuple[str, ...] = (), declined: bool = False, channel: str = "chat") -> AgentState:
    capacity = cap if isinstance(cap, dict) else {"default": cap}
    open_load = load if isinstance(load, dict) else {channel: load}
    return AgentState(agent_id=agent_id, status=status, capacity=capacity, open_load=open_load,
                      skills=frozenset(skills), last_assigned_seq=seq, declined=declined)


ALL = ("round_robin", "least_loaded", "skills")


# --------------------------------------------------------------------------- capacity


@pytest.mark.parametrize(("capacity", "channel", "expected"), [
    ({"default": 5, "chat": 3}, "chat", 3),
    ({"default": 5, "chat": 3}, "email", 5),
    ({"chat": 3}, "email", 0),  # no default: takes nothing on unlisted channels
    ({}, "chat", 0),
    ({"default": 5, "chat": 0}, "chat", 0),  # an explicit 0 wins over the default
])
def test_capacity_for_channel(capacity, channel, expected):
    assert capacity_for(AgentState("a", "online", capacity, {}), channel) == expected


def test_load_is_counted_per_channel():
    a = AgentState("a", "online", {"default": 5, "chat": 3}, {"chat": 3, "email": 1})
    assert spare_for(a, "chat") == 0 and spare_for(a, "email") == 4 and spare_for(a, "web") == 5
    assert eligible([a], "chat") == [] and eligible([a], "email") == [a]


# --------------------------------------------------------------------------- eligibility


@pytest.mark.parametrize("strategy", ALL)
@pytest.mark.parametrize(("blocked", "why"), [
    (agent("x", status="away"), "away"),
    (agent("x", status="offline"), "offline"),
    (agent("x", cap=3, load=3), "full"),
    (agent("x", cap=3, load=4), "over capacity (e.g. the cap was lowered)"),
    (agent("x", cap=0), "zero capacity"),
    (agent("x", declined=True), "declined this ticket"),
])
def test_ineligible_agents_are_never_picked(strategy, blocked, why):
    assert pick_agent(strategy, [blocked], channel="chat") is None, why
    assert pick_agent(strategy, [blocked, agent("y", cap=1, seq=99)], channel="chat") == "y", why


@pytest.mark.parametrize("strategy", ALL)
def test_excluded_agents_are_never_picked(strategy):
    agents = [agent("a"), agent("b", load=4, seq=50)]
    assert pick_agent(strategy, agents, channel="chat", exclude={"a"}) == "b"
    assert pick_agent(strategy, agents, channel="chat", exclude={"a", "b"}) is None


@pytest.mark.parametrize("strategy", [*ALL, "manual"])
def test_nobody_to_pick(strategy):
    assert pick_agent(strategy, [], channel="chat") is None


def test_manual_never_picks():
    assert pick_agent("manual", [agent("a")], channel="chat") is None


def test_unknown_strategy_is_an_error():
    with pytest.raises(ValueError, match="unknown strategy"):
        pick_agent("random", [agent("a")], channel="chat")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- round robin


@pytest.mark.parametrize(("agents", "expected"), [
    ([agent("a", seq=3), agent("b", seq=1), agent("c", seq=2)], "b"),
    ([agent("a", seq=3), agent("b", seq=0), agent("c", seq=0)], "b"),  # tie: agent_id
    ([agent("c", seq=0), agent("b", seq=0)], "b"),  # input order does not matter
    ([agent("a", seq=1, load=4), agent("b", seq=2, load=0)], "a"),  # load does not matter
    ([agent("a", seq=1, status="away"), agent("b", seq=2)], "b"),
])
def test_round_robin(agents, expected):
    assert pick_agent("round_robin", agents, channel="chat") == expected


def test_round_robin_cycles_when_the_caller_bumps_the_sequence():
    agents = {a: agent(a) for a in ("a", "b", "c")}
    picks = []
    for seq in range(1, 8):
        chosen = pick_agent("round_robin", agents.values(), channel="chat")
        picks.append(chosen)
        agents[chosen] = agent(chosen, seq=seq)
    assert picks == ["a", "b", "c", "a", "b", "c", "a"]


# --------------------------------------------------------------------------- least loaded


@pytest.mark.parametrize(("agents", "expected", "why"), [
    ([agent("a", cap=5, load=1), agent("b", cap=5, load=3)], "a", "more spare"),
    ([agent("a", cap=10, load=6), agent("b", cap=3, load=0)], "a", "4 spare beats 3 spare"),
    ([agent("a", cap=10, load=5), agent("b", cap=5, load=0)], "b", "equal spare: lower load ratio"),
    ([agent("a", cap=4, load=2, seq=7), agent("b", cap=4, load=2, seq=3)], "b", "then the longest waiting"),
    ([agent("b", cap=4, load=2, seq=3), agent("a", cap=4, load=2, seq=3)], "a", "then agent_id"),
    ([agent("a", cap={"default": 10, "chat": 2}, load=1), agent("b", cap=3, load=1)], "b", "per-channel cap"),
])
def test_least_loaded(agents, expected, why):
    assert pick_agent("least_loaded", agents, channel="chat") == expected, why


def test_least_loaded_looks_only_at_the_tickets_channel():
    a = agent("a", cap=5, load={"email": 4, "chat": 0})
    b = agent("b", cap=5, load={"email": 0, "chat": 2})
    assert pick_agent("least_loaded", [a, b], channel="chat") == "a"
    assert pick_agent("least_loaded", [a, b], channel="email") == "b"


# --------------------------------------------------------------------------- skills


@pytest.mark.parametrize(("agents", "required", "expected", "why"), [
    ([agent("a", skills=("zh",)), agent("b", skills=("zh", "billing"), load=4)], {"zh", "billing"}, "b",
     "only b has all skills, even though busier"),
    ([agent("a", skills=("zh", "billing"), load=3), agent("b", skills=("zh", "billing", "en"), load=1)],
     {"zh", "billing"}, "b", "several have all: least-loaded among them"),
    ([agent("a", skills=("zh",), load=0), agent("b", skills=("en",), load=0), agent("c", skills=("zh", "x"), load=2)],
     {"zh", "billing"}, "a", "nobody has all: the best-matching ones, then least-loaded"),
    ([agent("a", skills=()), agent("b", skills=(), load=2)], {"zh"}, "a", "nobody matches at all: anyone"),
    ([agent("a", load=3), agent("b", load=1)], set(), "b", "no required skills: plain least-loaded"),
    ([agent("a", skills=("zh", "billing"), status="away"), agent("b", skills=("zh",))], {"zh", "billing"}, "b",
     "the fully skilled agent is away: the best available one"),
    ([agent("a", skills=("zh", "billing"), cap=2, load=2), agent("b", skills=())], {"zh", "billing"}, "b",
     "the fully skilled agent is full: capacity is still a hard cap"),
])
def test_skills(agents, required, expected, why):
    assert pick_agent("skills", agents, channel="chat", required_skills=frozenset(required)) == expected, why


# --------------------------------------------------------------------------- re-offer


def test_next_offer_walks_through_the_team_then_gives_up():
    agents = [agent("a", seq=1), agent("b", seq=2), agent("c", seq=3)]
    offered: list[str] = []
    while (chosen := next_offer("round_robin", agents, channel="chat", offered=offered)) is not None:
        offered.append(chosen)
    assert offered == ["a", "b", "c"]


def test_next_offer_respects_availability_and_extra_exclusions():
    agents = [agent("a"), agent("b", status="away"), agent("c", cap=1, load=1), agent("d"), agent("e")]
    assert next_offer("least_loaded", agents, channel="chat", offered={"a"}, exclude={"d"}) == "e"
    assert next_offer("manual", agents, channel="chat", offered=()) is None
