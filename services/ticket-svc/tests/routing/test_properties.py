"""Hypothesis properties of the strategies: hard capacity cap, round-robin fairness, eligibility."""

from __future__ import annotations

import os
from collections import Counter

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ticket_svc.routing.strategies import AgentState, capacity_for, is_eligible, load_for, pick_agent, spare_for

SETTINGS = settings(max_examples=int(os.environ.get("ROUTING_PROPERTY_EXAMPLES", "200")), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])

CHANNELS = ("chat", "email", "wechat")
SKILLS = ("zh", "en", "billing", "tech")
STATUSES = ("online", "away", "offline")
AUTOMATIC = ("round_robin", "least_loaded", "skills")

agent_ids = st.lists(st.text("abcdef", min_size=1, max_size=3), min_size=1, max_size=8, unique=True)


@st.composite
def agent_states(draw: st.DrawFn) -> list[AgentState]:
    """A team: random status, per-channel capacity (sometimes only a default), load, skills, seq."""
    agents = []
    for agent_id in draw(agent_ids):
        capacity = {"default": draw(st.integers(0, 6))}
        capacity.update(draw(st.dictionaries(st.sampled_from(CHANNELS), st.integers(0, 6), max_size=2)))
        # loads may already exceed the cap (a supervisor lowered it): such agents must stay skipped
        load = draw(st.dictionaries(st.sampled_from(CHANNELS), st.integers(0, 8), max_size=3))
        agents.append(AgentState(
            agent_id=agent_id, status=draw(st.sampled_from(STATUSES)), capacity=capacity, open_load=load,
            skills=frozenset(draw(st.sets(st.sampled_from(SKILLS), max_size=3))),
            last_assigned_seq=draw(st.integers(0, 20)), declined=draw(st.booleans()),
        ))
    return agents


def with_changes(agent: AgentState, *, channel: str, delta: int = 0, seq: int | None = None) -> AgentState:
    load = dict(agent.open_load)
    load[channel] = load.get(channel, 0) + delta
    return AgentState(agent.agent_id, agent.status, agent.capacity, load, agent.skills,
                      agent.last_assigned_seq if seq is None else seq, agent.declined)


# (1) -------------------------------------------------------------------------------------------

events = st.lists(
    st.one_of(
        st.tuples(st.just("assign"), st.sampled_from(CHANNELS)),
        st.tuples(st.just("solve"), st.sampled_from(CHANNELS), st.integers(0, 7)),
    ),
    max_size=120,
)


@SETTINGS
@given(agents=agent_states(), script=events, strategy=st.sampled_from(("least_loaded", "skills")),
       required=st.frozensets(st.sampled_from(SKILLS), max_size=2))
def test_least_loaded_never_assigns_beyond_capacity(agents, script, strategy, required):
    team = {a.agent_id: a for a in agents}
    seq = max(a.last_assigned_seq for a in agents)
    for event in script:
        channel = event[1]
        if event[0] == "solve":  # an agent solves one of their open tickets on that channel
            holder = sorted(team)[event[2] % len(team)]
            if load_for(team[holder], channel) > 0:
                team[holder] = with_changes(team[holder], channel=channel, delta=-1)
            continue
        before = {a: (load_for(s, channel), capacity_for(s, channel)) for a, s in team.items()}
        chosen = pick_agent(strategy, team.values(), channel=channel, required_skills=required)
        if chosen is None:  # only when nobody could take it
            assert not [s for s in team.values() if is_eligible(s, channel)]
            continue
        load, cap = before[chosen]
        assert load < cap, f"{chosen} at {load}/{cap} on {channel} got another ticket"
        if strategy == "least_loaded":
            assert spare_for(team[chosen], channel) == max(
                spare_for(s, channel) for s in team.values() if is_eligible(s, channel))
        seq += 1
        team[chosen] = with_changes(team[chosen], channel=channel, delta=+1, seq=seq)
        assert load_for(team[chosen], channel) <= capacity_for(team[chosen], channel)


# (2) -------------------------------------------------------------------------------------------


@SETTINGS
@given(ids=agent_ids, n=st.integers(0, 200), channels=st.lists(st.sampled_from(CHANNELS), min_size=1))
def test_round_robin_is_fair_within_one(ids, n, channels):
    team = {a: AgentState(a, "online", {"default": 10_000}, {}) for a in ids}
    counts: Counter[str] = Counter({a: 0 for a in ids})
    for seq in range(1, n + 1):
        channel = channels[seq % len(channels)]
        chosen = pick_agent("round_robin", team.values(), channel=channel)
        assert chosen is not None
        counts[chosen] += 1
        team[chosen] = with_changes(team[chosen], channel=channel, delta=+1, seq=seq)
        assert max(counts.values()) - min(counts.values()) <= 1, counts


# (3) -------------------------------------------------------------------------------------------


@SETTINGS
@given(agents=agent_states(), data=st.data(), strategy=st.sampled_from((*AUTOMATIC, "manual")),
       channel=st.sampled_from(CHANNELS), required=st.frozensets(st.sampled_from(SKILLS), max_size=3))
def test_never_picks_an_unavailable_or_excluded_agent(agents, data, strategy, channel, required):
    exclude = data.draw(st.frozensets(st.sampled_from([a.agent_id for a in agents])))
    chosen = pick_agent(strategy, agents, channel=channel, required_skills=required, exclude=exclude)
    if chosen is None:
        assert strategy == "manual" or not [a for a in agents if is_eligible(a, channel, exclude)]
        return
    picked = next(a for a in agents if a.agent_id == chosen)
    assert picked.status == "online"
    assert chosen not in exclude
    assert not picked.declined
    assert load_for(picked, channel) < capacity_for(picked, channel)


@SETTINGS
@given(agents=agent_states(), data=st.data(), strategy=st.sampled_from(AUTOMATIC),
       channel=st.sampled_from(CHANNELS), required=st.frozensets(st.sampled_from(SKILLS), max_size=3))
def test_the_pick_does_not_depend_on_input_order(agents, data, strategy, channel, required):
    shuffled = data.draw(st.permutations(agents))
    assert pick_agent(strategy, agents, channel=channel, required_skills=required) == \
        pick_agent(strategy, shuffled, channel=channel, required_skills=required)
