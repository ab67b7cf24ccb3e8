"""Issue 9 "High 3" through the whole stack: an agent of team A cannot take, reassign, solve or
even see team B's ticket by PATCH or by a private macro, nor give a ticket of their own team
to someone else; team B's agent works it; lists leave it out. (Rule: docs/security.md.)"""

import uuid


async def new_agent(gw, admin_headers, name: str) -> tuple[str, dict]:
    """A gateway user with an agent profile in ticket-svc; returns (user id, its auth header)."""
    password = uuid.uuid4().hex
    created = await gw.post("/v1/users", json={"email": f"{name}@example.com", "password": password, "role": "agent",
                                               "name": name}, headers=admin_headers)
    assert created.status_code == 201, created.text
    user_id = created.json()["id"]
    profile = await gw.put(f"/v1/agents/{user_id}", json={"display_name": name, "status": "online"},
                           headers=admin_headers)
    assert profile.status_code == 200, profile.text
    login = await gw.post("/v1/auth/login", json={"email": f"{name}@example.com", "password": password})
    assert login.status_code == 200, login.text
    return user_id, {"Authorization": f"Bearer {login.json()['access_token']}"}


async def test_agent_of_another_team_cannot_patch_or_macro_a_ticket(gw, admin_headers, key_headers):
    suffix = uuid.uuid4().hex[:6]
    a_id, a = await new_agent(gw, admin_headers, f"access-a-{suffix}")
    b_id, b = await new_agent(gw, admin_headers, f"access-b-{suffix}")
    teams = {}
    for name, member in (("A", a_id), ("B", b_id)):
        r = await gw.post("/v1/teams", json={"name": f"access-{name}-{suffix}", "strategy": "manual",
                                             "members": [member]}, headers=admin_headers)
        assert r.status_code == 201, r.text
        teams[name] = r.json()["id"]

    async def ticket_of(team: str) -> str:
        created = await gw.post("/v1/tickets", json={"subject": f"权限测试 {team} {suffix}",
                                                     "requester": {"email": f"access-{suffix}@example.com"}},
                                headers=key_headers)
        assert created.status_code == 201, created.text
        routed = await gw.patch(f"/v1/tickets/{created.json()['id']}", json={"team_id": teams[team]},
                                headers=admin_headers)
        assert routed.status_code == 200, routed.text
        return created.json()["id"]

    b_ticket, a_ticket = await ticket_of("B"), await ticket_of("A")
    grab = {"assignee_id": a_id, "team_id": teams["A"]}

    # team A's agent: team B's ticket does not exist for them, by any path
    assert (await gw.get(f"/v1/tickets/{b_ticket}", headers=a)).status_code == 404
    patched = await gw.patch(f"/v1/tickets/{b_ticket}", json=grab, headers=a)
    assert patched.status_code == 404, patched.text
    assert patched.headers["content-type"].startswith("application/problem+json")
    assert (await gw.patch(f"/v1/tickets/{b_ticket}", json={"status": "solved"}, headers=a)).status_code == 404
    macro = await gw.post("/v1/macros", json={"name": f"grab {suffix}", "actions": grab}, headers=a)
    assert macro.status_code == 201, macro.text
    applied = await gw.post(f"/v1/tickets/{b_ticket}/macros/{macro.json()['id']}", headers=a)
    assert applied.status_code == 404, applied.text
    merged = await gw.post(f"/v1/tickets/{a_ticket}/merge", json={"target_id": b_ticket}, headers=a)
    assert merged.status_code == 404, merged.text
    listed = await gw.get("/v1/tickets", params={"q": suffix}, headers=a)
    assert listed.status_code == 200 and [t["id"] for t in listed.json()["items"]] == [a_ticket]
    # ... and on their own team's ticket they may not hand it to someone else
    dumped = await gw.patch(f"/v1/tickets/{a_ticket}", json={"assignee_id": b_id}, headers=a)
    assert dumped.status_code == 403 and dumped.json()["type"].endswith("/assignment-forbidden")

    # team B's agent takes and solves it; nothing a did shows
    taken = await gw.patch(f"/v1/tickets/{b_ticket}", json={"assignee_id": b_id}, headers=b)
    assert taken.status_code == 200, taken.text
    solved = await gw.patch(f"/v1/tickets/{b_ticket}", json={"status": "solved"}, headers=b)
    assert solved.status_code == 200, solved.text
    final = (await gw.get(f"/v1/tickets/{b_ticket}", headers=admin_headers)).json()
    assert (final["team_id"], final["assignee_id"], final["status"]) == (teams["B"], b_id, "solved")
    audit = (await gw.get(f"/v1/tickets/{b_ticket}/audit", headers=admin_headers)).json()["items"]
    assert all(entry["actor"] != f"user:{a_id}" for entry in audit)
