"""Routing on the real database: rules, strategies under concurrency, re-offer, manual assignment."""

import asyncio
from collections import Counter

import pytest
from sqlalchemy import text

from helpdesk_common.identity import Principal
from helpdesk_common.testing import identity_headers, wait_for

CHANNEL = Principal(kind="channel", id="key-1", channel="web")
ADMIN = Principal(kind="user", id="u-admin", role="admin")
AGENT = Principal(kind="user", id="u-agent", role="agent")


def ticket(n: int, **extra) -> dict:
    return {"subject": f"路由测试 {n}", "requester": {"email": f"route-{n}@example.com"}, **extra}


async def setup_team(client, known_users, *, strategy: str, capacities: list[int], timeout: int | None = None,
                     status: str = "online", name: str = "support") -> tuple[str, list[str]]:
    agents = []
    await known_users(*(f"{name}-agent-{i}" for i in range(len(capacities))))  # agent profiles are for users
    for i, capacity in enumerate(capacities):
        agent_id = f"{name}-agent-{i}"
        r = await client.put(f"/v1/agents/{agent_id}", json={"display_name": f"Agent {i}", "status": status,
                                                              "capacity": {"default": capacity}},
                             headers=identity_headers(ADMIN))
        assert r.status_code == 200, r.text
        agents.append(agent_id)
    team = await client.post("/v1/teams", json={"name": name, "strategy": strategy, "members": agents,
                                               "accept_timeout_s": timeout}, headers=identity_headers(ADMIN))
    assert team.status_code == 201, team.text
    rule = await client.post("/v1/routing/rules", json={
        "name": f"web to {name}", "position": 1, "conditions": [{"field": "channel", "op": "eq", "value": "web"}],
        "actions": {"set_team": team.json()["id"]}}, headers=identity_headers(ADMIN))
    assert rule.status_code == 201, rule.text
    return team.json()["id"], agents


async def assignments(db) -> Counter:
    async with db.connect() as conn:
        rows = (await conn.execute(text("SELECT assignee_id FROM tickets"))).scalars().all()
    return Counter(rows)


async def intake_concurrently(client, n: int) -> None:
    sem = asyncio.Semaphore(50)

    async def one(i: int) -> int:
        async with sem:
            return (await client.post("/v1/tickets", json=ticket(i), headers=identity_headers(CHANNEL))).status_code

    codes = await asyncio.gather(*[one(i) for i in range(n)])
    assert Counter(codes) == {201: n}


async def test_least_loaded_never_exceeds_capacity_under_200_concurrent_intakes(client, db, known_users):
    capacities = [10, 20, 30, 40, 50]
    _, agents = await setup_team(client, known_users, strategy="least_loaded", capacities=capacities)
    await intake_concurrently(client, 200)
    counts = await assignments(db)
    for agent, capacity in zip(agents, capacities):
        assert counts[agent] == capacity  # filled exactly to the cap, never beyond
    assert counts[None] == 200 - sum(capacities)  # the rest wait in the team queue


async def test_round_robin_is_fair_within_one_under_200_concurrent_intakes(client, db, known_users):
    _, agents = await setup_team(client, known_users, strategy="round_robin", capacities=[1000] * 7)
    await intake_concurrently(client, 200)
    counts = await assignments(db)
    per_agent = [counts[a] for a in agents]
    assert sum(per_agent) == 200
    assert max(per_agent) - min(per_agent) <= 1, per_agent


async def test_offline_agents_get_nothing_and_rules_set_priority_and_tags(client, db, known_users):
    team_id, agents = await setup_team(client, known_users, strategy="round_robin", capacities=[5, 5], status="offline")
    vip = await client.post("/v1/routing/rules", json={
        "name": "vip", "position": 0, "stop": False,
        "conditions": [{"field": "subject", "op": "contains", "value": "紧急"}],
        "actions": {"set_priority": "urgent", "add_tags": ["vip"]}}, headers=identity_headers(ADMIN))
    assert vip.status_code == 201
    created = (await client.post("/v1/tickets", json=ticket(1, subject="紧急：服务器宕机"),
                                 headers=identity_headers(CHANNEL))).json()
    assert created["priority"] == "urgent" and created["tags"] == ["vip"]
    assert created["team_id"] == team_id and created["assignee_id"] is None
    assert (await assignments(db))[None] == 1


@pytest.fixture
def fast_reoffer(monkeypatch):
    monkeypatch.setenv("TICKET_REOFFER_INTERVAL_S", "0.2")


async def test_not_accepted_in_time_is_offered_to_the_next_agent(fast_reoffer, client, db, known_users):
    _, agents = await setup_team(client, known_users, strategy="round_robin", capacities=[5, 5], timeout=1)
    created = (await client.post("/v1/tickets", json=ticket(1), headers=identity_headers(CHANNEL))).json()
    first = created["assignee_id"]
    assert first in agents and created["assignment_state"] == "offered"

    async def assignee():
        return (await client.get(f"/v1/tickets/{created['id']}", headers=identity_headers(ADMIN))).json()

    second = await wait_for(lambda: _changed(assignee, first), timeout=10)
    assert second["assignee_id"] in agents and second["assignee_id"] != first
    accepted = await client.post(f"/v1/tickets/{created['id']}/accept",
                                 headers=identity_headers(Principal(kind="user", id=second["assignee_id"], role="agent")))
    assert accepted.status_code == 200 and accepted.json()["assignment_state"] == "accepted"
    await asyncio.sleep(1.5)
    assert (await assignee())["assignee_id"] == second["assignee_id"]  # accepted: stays


async def _changed(read, first):
    body = await read()
    return body if body["assignee_id"] != first else None


async def test_supervisor_assigns_by_hand_and_agents_cannot(client, known_users):
    _, agents = await setup_team(client, known_users, strategy="manual", capacities=[5])
    created = (await client.post("/v1/tickets", json=ticket(1), headers=identity_headers(CHANNEL))).json()
    assert created["assignee_id"] is None
    url = f"/v1/tickets/{created['id']}/assign"
    assert (await client.post(url, json={"assignee_id": agents[0]}, headers=identity_headers(AGENT))).status_code == 403
    done = await client.post(url, json={"assignee_id": agents[0]}, headers=identity_headers(
        Principal(kind="user", id="boss", role="supervisor")))
    assert done.status_code == 200 and done.json()["assignee_id"] == agents[0]
    unknown = await client.post(url, json={"assignee_id": "ghost"}, headers=identity_headers(ADMIN))
    assert unknown.status_code == 422
    me = await client.get("/v1/agents/me", headers=identity_headers(Principal(kind="user", id=agents[0], role="agent")))
    assert me.status_code == 200 and len(me.json()["team_ids"]) == 1
