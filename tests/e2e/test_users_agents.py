"""Issue 9, also-fix: "Creating a user does not create an agent profile; agent profiles can be
created for ids that are no user." Through the whole stack: a user created at the gateway has
an agent profile the moment the answer arrives (so the SPA can set teams at once), agent profiles
are only for users, and deactivating a user takes the agent out of routing."""

import uuid

from .conftest import eventually


async def new_user(gw, admin_headers, name: str, role: str = "agent") -> dict:
    r = await gw.post("/v1/users", json={"email": f"{name}@example.com", "name": name, "role": role,
                                         "password": uuid.uuid4().hex}, headers=admin_headers)
    assert r.status_code == 201, r.text
    return r.json()


async def test_a_new_user_has_an_agent_profile_at_once(gw, admin_headers):
    suffix = uuid.uuid4().hex[:6]
    user = await new_user(gw, admin_headers, f"赵敏-{suffix}")
    # no waiting: the profile is there when POST /v1/users answers
    profile = await gw.get(f"/v1/agents/{user['id']}", headers=admin_headers)
    assert profile.status_code == 200, profile.text
    assert user["agent_profile"] == "ready"
    assert (profile.json()["display_name"], profile.json()["status"], profile.json()["team_ids"]) == (
        f"赵敏-{suffix}", "offline", [])
    assert user["id"] in {a["id"] for a in (await gw.get("/v1/agents", headers=admin_headers)).json()}
    # ... so the SPA's next calls (profile, team) do not race the event
    put = await gw.put(f"/v1/agents/{user['id']}", json={"display_name": f"Zhao {suffix}", "status": "online",
                                                         "skills": ["zh"]}, headers=admin_headers)
    assert put.status_code == 200, put.text
    team = await gw.post("/v1/teams", json={"name": f"users-{suffix}", "members": [user["id"]]}, headers=admin_headers)
    assert team.status_code == 201, team.text

    # a rename at the gateway renames the agent
    renamed = await gw.patch(f"/v1/users/{user['id']}", json={"name": f"赵敏敏-{suffix}"}, headers=admin_headers)
    assert renamed.status_code == 200 and renamed.json()["agent_profile"] == "ready"
    after = (await gw.get(f"/v1/agents/{user['id']}", headers=admin_headers)).json()
    assert (after["display_name"], after["skills"], after["team_ids"]) == (f"赵敏敏-{suffix}", ["zh"],
                                                                           [team.json()["id"]])

    # the bootstrapped dev admin was announced through the outbox and the broker (no sync call)
    async def admin_profile():
        r = await gw.get("/v1/agents/me", headers=admin_headers)
        return r.json() if r.status_code == 200 else None

    assert (await eventually(admin_profile))["display_name"] == "Dev admin"


async def test_agent_profiles_are_only_for_users(gw, admin_headers):
    ghost = str(uuid.uuid4())
    r = await gw.put(f"/v1/agents/{ghost}", json={"display_name": "Ghost", "status": "online"}, headers=admin_headers)
    assert r.status_code == 404, r.text
    assert r.headers["content-type"] == "application/problem+json" and ghost in r.json()["detail"]
    team = await gw.post("/v1/teams", json={"name": f"ghosts-{ghost[:6]}", "members": [ghost]}, headers=admin_headers)
    assert team.status_code == 422
    # the provisioning endpoint is ticket-svc's internal one: the gateway never forwards it
    event = {"type": "user.created", "source": "x", "subject": ghost,
             "data": {"user_id": ghost, "version": 1, "role": "admin", "active": True}}
    for path in (f"/internal/users/{ghost}", f"/v1/agents/../../internal/users/{ghost}"):
        forwarded = await gw.put(path, json=event, headers=admin_headers)
        assert forwarded.status_code == 404, (path, forwarded.text)
    assert (await gw.get(f"/v1/agents/{ghost}", headers=admin_headers)).status_code == 404


async def test_deactivating_a_user_takes_the_agent_out_of_routing(gw, admin_headers, key_headers):
    suffix = uuid.uuid4().hex[:6]
    users = [await new_user(gw, admin_headers, f"route-{n}-{suffix}") for n in (1, 2)]
    ids = [u["id"] for u in users]
    for uid in ids:
        r = await gw.put(f"/v1/agents/{uid}", json={"display_name": uid[:8], "status": "online"}, headers=admin_headers)
        assert r.status_code == 200, r.text
    team = await gw.post("/v1/teams", json={"name": f"leavers-{suffix}", "strategy": "round_robin", "members": ids},
                         headers=admin_headers)
    assert team.status_code == 201, team.text
    rule = await gw.post("/v1/routing/rules", json={
        "name": f"leavers {suffix}", "position": 0,
        "conditions": [{"field": "subject", "op": "contains", "value": suffix}],
        "actions": {"set_team": team.json()["id"]}}, headers=admin_headers)
    assert rule.status_code == 201, rule.text

    async def ticket(n: int) -> dict:
        r = await gw.post("/v1/tickets", json={"subject": f"离职 {suffix} {n}", "requester": {"email": f"l{n}@example.com"}},
                          headers=key_headers)
        assert r.status_code == 201, r.text
        return r.json()

    first = [await ticket(n) for n in range(2)]
    assert sorted(t["assignee_id"] for t in first) == sorted(ids)
    leaver, stayer = first[0]["assignee_id"], first[1]["assignee_id"]

    assert (await gw.delete(f"/v1/users/{leaver}", headers=admin_headers)).status_code == 204
    # every new ticket goes to the colleague, and so does the leaver's open one
    assert {(await ticket(n))["assignee_id"] for n in range(2, 6)} == {stayer}

    async def handed_over():
        body = (await gw.get(f"/v1/tickets/{first[0]['id']}", headers=admin_headers)).json()
        return body if body["assignee_id"] == stayer else None

    await eventually(handed_over, timeout=30)
    profile = (await gw.get(f"/v1/agents/{leaver}", headers=admin_headers)).json()
    assert (profile["active"], profile["status"]) == (False, "offline")
