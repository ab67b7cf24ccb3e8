"""Gateway users in ticket-svc (issue 9, also-fix: "creating a user does not create an agent
profile; agent profiles can be created for ids that are no user").

``users.events`` (and the gateway's synchronous ``PUT /internal/users/{id}``, which runs the same
handler) keep a versioned projection of the users: a new user gets an agent profile (offline, no
teams), a rename renames it, a replayed or older event changes nothing, and a deactivated user is
taken out of routing — offered nothing, their open tickets handed back to their team. Agent
profiles are only for users: ``PUT /v1/agents/{id}`` refuses any other id, and profiles of such
ids made before are neither listed nor routed.
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from sqlalchemy import text

from helpdesk_common import events
from helpdesk_common.identity import Principal
from helpdesk_common.testing import identity_headers, produce, wait_for

ADMIN = Principal(kind="user", id=str(uuid.uuid4()), role="admin")
SUPERVISOR = Principal(kind="user", id=str(uuid.uuid4()), role="supervisor")
CHANNEL = Principal(kind="channel", id="key-1", channel="web")
H_ADMIN = identity_headers(ADMIN)


def user_event(user_id: str, version: int, *, name: str | None = "李娜", role: str = "agent", active: bool = True,
               created: bool = False, changes: dict[str, Any] | None = None) -> Any:
    data = {"user_id": user_id, "version": version, "display_name": name, "role": role, "active": active,
            "actor": f"user:{ADMIN.id}"}
    if created:
        return events.UserCreated(source="gateway", subject=user_id, data=events.UserCreatedData(**data))
    return events.UserUpdated(source="gateway", subject=user_id,
                              data=events.UserUpdatedData(**data, changes=changes or {}))


async def provision(client: Any, event: Any, headers: dict[str, str] = H_ADMIN) -> Any:
    """What the gateway does after committing a user change: the event, synchronously."""
    return await client.put(f"/internal/users/{event.subject}", content=events.encode(event),
                            headers={**headers, "content-type": "application/json"})


async def test_put_agent_refuses_an_id_that_is_no_user(client, known_users):
    ghost = str(uuid.uuid4())
    r = await client.put(f"/v1/agents/{ghost}", json={"display_name": "Ghost", "status": "online"}, headers=H_ADMIN)
    assert r.status_code == 404, r.text
    assert r.headers["content-type"] == "application/problem+json" and ghost in r.json()["detail"]
    assert (await client.get(f"/v1/agents/{ghost}", headers=H_ADMIN)).status_code == 404
    await known_users(ghost)  # the gateway announced the user: now it may have a profile
    ok = await client.put(f"/v1/agents/{ghost}", json={"display_name": "Ghost", "status": "online"}, headers=H_ADMIN)
    assert ok.status_code == 200 and ok.json()["active"] is True


async def test_profiles_of_ids_that_are_no_user_are_hidden_and_never_routed(client, db, known_users):
    # profiles made before this release for arbitrary ids (PUT accepted any id then)
    async with db.begin() as conn:
        await conn.execute(text("INSERT INTO agents (id, display_name, status) VALUES "
                                "('legacy-1', 'Legacy', 'online'), ('u-real', 'Real', 'online')"))
        team = uuid.uuid4()
        await conn.execute(text("INSERT INTO teams (id, name) VALUES (:id, 'old team')"), {"id": team})
        await conn.execute(text("INSERT INTO team_members (team_id, agent_id) VALUES (:t, 'legacy-1'), (:t, 'u-real')"),
                           {"t": team})
    await known_users("u-real")
    listed = await client.get("/v1/agents", headers=H_ADMIN)
    assert [a["id"] for a in listed.json()] == ["u-real"]
    assert (await client.get("/v1/agents/legacy-1", headers=H_ADMIN)).status_code == 404
    refused = await client.post("/v1/teams", json={"name": "new team", "members": ["legacy-1"]}, headers=H_ADMIN)
    assert refused.status_code == 422 and "legacy-1" in refused.text
    rule = await client.post("/v1/routing/rules", json={
        "name": "all to old team", "position": 0, "actions": {"set_team": str(team)}}, headers=H_ADMIN)
    assert rule.status_code == 201, rule.text
    for i in range(4):
        created = await client.post("/v1/tickets", json={"subject": f"legacy {i}", "requester": {"email": "l@x.cn"}},
                                    headers=identity_headers(CHANNEL))
        assert created.status_code == 201 and created.json()["assignee_id"] == "u-real", created.text


async def test_user_events_create_and_rename_the_profile_once_and_in_version_order(full_client, infra, db):
    uid = str(uuid.uuid4())
    created = user_event(uid, 1, name="李娜", created=True)
    await produce(infra.kafka_bootstrap, full_client.topics, created)

    async def profile() -> Any:
        r = await full_client.get(f"/v1/agents/{uid}", headers=H_ADMIN)
        return r.json() if r.status_code == 200 else None

    body = await wait_for(profile)
    assert (body["display_name"], body["status"], body["team_ids"], body["skills"], body["email"], body["active"]) == (
        "李娜", "offline", [], [], None, True)
    # the admin completes the profile (the user is known now, so this is allowed)
    put = await full_client.put(f"/v1/agents/{uid}", json={"display_name": "Na", "status": "online", "skills": ["zh"]},
                                headers=H_ADMIN)
    assert put.status_code == 200, put.text

    renamed = user_event(uid, 3, name="Li Na", changes={"display_name": {"before": "李娜", "after": "Li Na"}})
    older = user_event(uid, 2, name="Old name", changes={"display_name": {"before": "李娜", "after": "Old name"}})
    same_again = events.UserCreated(source="gateway", subject=uid, data=created.data)  # another id, version 1
    # replayed creation (same event id: the inbox), a newer rename, then two older events
    await produce(infra.kafka_bootstrap, full_client.topics, created, renamed, older, same_again)

    async def consumed() -> bool:
        async with db.connect() as conn:
            done = await conn.scalar(text("SELECT count(*) FROM inbox WHERE event_id = ANY(:ids)"),
                                     {"ids": [older.id, same_again.id]})
        return done == 2

    await wait_for(consumed)
    body = await profile()
    assert (body["display_name"], body["status"], body["skills"], body["active"]) == ("Li Na", "online", ["zh"], True)
    async with db.connect() as conn:
        row = (await conn.execute(text("SELECT display_name, version FROM user_projection WHERE id = :id"),
                                  {"id": uid})).one()
    assert tuple(row) == ("Li Na", 3)

    # a change of role alone leaves the profile's own display name alone
    await full_client.put(f"/v1/agents/{uid}", json={"display_name": "娜娜", "status": "online"}, headers=H_ADMIN)
    await produce(infra.kafka_bootstrap, full_client.topics,
                  user_event(uid, 4, name="Li Na", role="supervisor", changes={"role": {"before": "agent",
                                                                                         "after": "supervisor"}}))

    async def version_4() -> bool:
        async with db.connect() as conn:
            return await conn.scalar(text("SELECT version FROM user_projection WHERE id = :id"), {"id": uid}) == 4

    await wait_for(version_4)
    assert (await profile())["display_name"] == "娜娜"


async def test_the_synchronous_provisioning_runs_the_same_handler_and_is_admin_only(client):
    uid = str(uuid.uuid4())
    created = user_event(uid, 1, name=None, created=True)
    for principal in (SUPERVISOR, CHANNEL):
        assert (await provision(client, created, identity_headers(principal))).status_code == 403
    r = await provision(client, created)
    assert r.status_code == 200, r.text
    assert r.json()["id"] == uid and r.json()["status"] == "offline" and r.json()["display_name"]  # a name of some kind
    again = await provision(client, created)  # idempotent
    assert again.status_code == 200 and again.json() == r.json()
    other = user_event(str(uuid.uuid4()), 1, created=True)
    wrong = await client.put(f"/internal/users/{uid}", content=events.encode(other),
                             headers={**H_ADMIN, "content-type": "application/json"})
    assert wrong.status_code == 422
    not_a_user_event = orjson.dumps({"type": "ticket.created", "source": "x", "subject": uid, "data": {}})
    bad = await client.put(f"/internal/users/{uid}", content=not_a_user_event,
                           headers={**H_ADMIN, "content-type": "application/json"})
    assert bad.status_code == 422
    # not part of the public API document
    doc = (await client.get("/openapi.json")).json()
    assert not any(path.startswith("/internal") for path in doc["paths"])


async def test_a_deactivated_agent_is_offered_nothing_and_their_open_tickets_go_back_to_the_team(client, db):
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    for uid, name in ((a, "Agent A"), (b, "Agent B")):
        assert (await provision(client, user_event(uid, 1, name=name, created=True))).status_code == 200
        r = await client.put(f"/v1/agents/{uid}", json={"display_name": name, "status": "online",
                                                        "capacity": {"default": 50}}, headers=H_ADMIN)
        assert r.status_code == 200, r.text
    team = await client.post("/v1/teams", json={"name": "desk", "strategy": "round_robin", "members": [a, b]},
                             headers=H_ADMIN)
    assert team.status_code == 201, team.text
    rule = await client.post("/v1/routing/rules", json={
        "name": "web to desk", "position": 0, "conditions": [{"field": "channel", "op": "eq", "value": "web"}],
        "actions": {"set_team": team.json()["id"]}}, headers=H_ADMIN)
    assert rule.status_code == 201, rule.text

    async def new_ticket(n: int) -> dict:
        r = await client.post("/v1/tickets", json={"subject": f"离职测试 {n}", "requester": {"email": "q@x.cn"}},
                              headers=identity_headers(CHANNEL))
        assert r.status_code == 201, r.text
        return r.json()

    first = [await new_ticket(i) for i in range(4)]
    assert sorted(t["assignee_id"] for t in first) == sorted([a, a, b, b])
    a_tickets = [t["id"] for t in first if t["assignee_id"] == a]
    solved = await client.patch(f"/v1/tickets/{a_tickets[0]}", json={"status": "solved"}, headers=H_ADMIN)
    assert solved.status_code == 200, solved.text

    off = await provision(client, user_event(a, 2, name="Agent A", active=False,
                                             changes={"active": {"before": True, "after": False}}))
    assert off.status_code == 200, off.text
    assert (off.json()["active"], off.json()["status"]) == (False, "offline")
    assert off.json()["team_ids"] == [team.json()["id"]]  # kept: a reactivated user gets their teams back

    # their open ticket went back to the team and to the next agent; the solved one stays theirs
    moved = (await client.get(f"/v1/tickets/{a_tickets[1]}", headers=H_ADMIN)).json()
    assert moved["assignee_id"] == b and moved["team_id"] == team.json()["id"]
    audit = (await client.get(f"/v1/tickets/{a_tickets[1]}/audit", headers=H_ADMIN)).json()["items"]
    assert any(e["actor"] == "system:users" for e in audit), audit
    assert (await client.get(f"/v1/tickets/{a_tickets[0]}", headers=H_ADMIN)).json()["assignee_id"] == a

    # new tickets all go to B, and A cannot be put back online while deactivated
    assert {(await new_ticket(10 + i))["assignee_id"] for i in range(4)} == {b}
    online = await client.put(f"/v1/agents/{a}", json={"display_name": "Agent A", "status": "online"}, headers=H_ADMIN)
    assert online.status_code == 409, online.text
    assert (await client.put("/v1/agents/me/status", json={"status": "online"},
                             headers=identity_headers(Principal(kind="user", id=a, role="agent")))).status_code == 409
    listed = {x["id"]: x for x in (await client.get("/v1/agents", headers=H_ADMIN)).json()}
    assert (listed[a]["active"], listed[a]["status"]) == (False, "offline") and listed[b]["active"] is True

    # reactivated: routable again once they go online themselves
    back = await provision(client, user_event(a, 3, name="Agent A", changes={"active": {"before": False, "after": True}}))
    assert (back.json()["active"], back.json()["status"]) == (True, "offline")
    me = await client.put("/v1/agents/me/status", json={"status": "online"},
                          headers=identity_headers(Principal(kind="user", id=a, role="agent")))
    assert me.status_code == 200, me.text
    assert {(await new_ticket(20 + i))["assignee_id"] for i in range(4)} == {a, b}


async def test_an_editor_gets_no_agent_profile_and_ticket_svc_refuses_their_calls(client):
    """Editors write the knowledge base (kb-svc) only (issue 14): no agent profile, and an agent
    who becomes an editor is offline; with a genuine identity, ticket-svc still refuses them."""
    editor, agent = str(uuid.uuid4()), str(uuid.uuid4())
    # applied, with no profile to answer (the gateway does not call this for an editor's own events)
    assert (await provision(client, user_event(editor, 1, role="editor", created=True))).status_code == 204
    assert (await client.get(f"/v1/agents/{editor}", headers=H_ADMIN)).status_code == 404
    again = await client.put(f"/v1/agents/{editor}", json={"display_name": "E", "status": "online"}, headers=H_ADMIN)
    assert again.status_code == 409 and again.json()["type"].endswith("/not-an-agent"), again.text
    assert (await provision(client, user_event(agent, 1, created=True))).status_code == 200
    online = await client.put(f"/v1/agents/{agent}", json={"display_name": "A", "status": "online"}, headers=H_ADMIN)
    assert online.status_code == 200, online.text
    assert (await provision(client, user_event(agent, 2, role="editor"))).status_code == 200
    assert (await client.get(f"/v1/agents/{agent}", headers=H_ADMIN)).json()["status"] == "offline"
    as_editor = identity_headers(Principal(kind="user", id=editor, role="editor"))
    for method, path in (("GET", "/v1/tickets"), ("GET", f"/v1/agents/{editor}"), ("GET", "/v1/macros")):
        assert (await client.request(method, path, headers=as_editor)).status_code == 403, path
    created = await client.post("/v1/tickets", json={"subject": "x", "requester": {"email": "a@b.cn"}}, headers=as_editor)
    assert created.status_code == 403
