"""Who may read and change which ticket (issue 9, "High 3"), on the real database.

Agents of team A must not reach team B's tickets by any path (PATCH, macros, merge, links,
messages, lists), nor hand tickets to someone else; supervisors may do everything. The rule
itself is ``ticket_svc.tickets.policy``; these tests prove every path applies it.
"""

from dataclasses import dataclass

import pytest

from helpdesk_common.identity import Principal
from helpdesk_common.testing import identity_headers

CHANNEL = Principal(kind="channel", id="key-1", channel="web")
SUPERVISOR = Principal(kind="user", id="boss", role="supervisor")
ADMIN = Principal(kind="user", id="root", role="admin")
A1 = Principal(kind="user", id="a1", role="agent", name="Agent A1")
A2 = Principal(kind="user", id="a2", role="agent", name="Agent A2")
B1 = Principal(kind="user", id="b1", role="agent", name="Agent B1")
#: an agent without a profile: no teams at all
LONER = Principal(kind="user", id="loner", role="agent")

H_A1, H_A2, H_B1 = identity_headers(A1), identity_headers(A2), identity_headers(B1)
H_SUP, H_ADMIN, H_CHANNEL = identity_headers(SUPERVISOR), identity_headers(ADMIN), identity_headers(CHANNEL)


@dataclass
class Desk:
    team_a: str
    team_b: str
    t_a: dict  # team A, unassigned
    t_b: dict  # team B, unassigned
    t_b_mine: dict  # team B, assigned to a1 (a1 reads it because it is theirs)
    triage: dict  # no team


async def _ticket(client, subject: str) -> dict:
    r = await client.post("/v1/tickets", json={"subject": subject, "description": f"{subject} 详情",
                                               "requester": {"email": "access@example.com"}}, headers=H_CHANNEL)
    assert r.status_code == 201, r.text
    return r.json()


async def _route(client, ticket: dict, **fields) -> dict:
    r = await client.patch(f"/v1/tickets/{ticket['id']}", json=fields, headers=H_SUP)
    assert r.status_code == 200, r.text
    return r.json()


@pytest.fixture
async def desk(client, known_users) -> Desk:
    await known_users(A1.id, A2.id, B1.id)  # agent profiles are for users
    for agent in (A1, A2, B1):
        r = await client.put(f"/v1/agents/{agent.id}", json={"display_name": agent.name, "status": "online"},
                             headers=H_ADMIN)
        assert r.status_code == 200, r.text
    team_a = await client.post("/v1/teams", json={"name": "Team A", "strategy": "manual", "members": ["a1", "a2"]},
                               headers=H_ADMIN)
    team_b = await client.post("/v1/teams", json={"name": "Team B", "strategy": "manual", "members": ["b1"]},
                               headers=H_ADMIN)
    assert team_a.status_code == team_b.status_code == 201
    a, b = team_a.json()["id"], team_b.json()["id"]
    return Desk(
        team_a=a, team_b=b,
        t_a=await _route(client, await _ticket(client, "A 组的工单"), team_id=a),
        t_b=await _route(client, await _ticket(client, "B 组的工单"), team_id=b),
        t_b_mine=await _route(client, await _ticket(client, "B 组但分给 a1"), team_id=b, assignee_id="a1"),
        triage=await _ticket(client, "待分拣工单"),
    )


def url(ticket: dict, tail: str = "") -> str:
    return f"/v1/tickets/{ticket['id']}{tail}"


async def test_agent_reads_own_team_triage_and_own_tickets_but_not_other_teams(client, desk):
    for ticket in (desk.t_a, desk.triage, desk.t_b_mine):
        assert (await client.get(url(ticket), headers=H_A1)).status_code == 200
    for tail in ("", "/messages", "/audit", "/links"):
        r = await client.get(url(desk.t_b, tail), headers=H_A1)
        assert r.status_code == 404, (tail, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
    assert (await client.get(url(desk.t_b), headers=H_B1)).status_code == 200
    assert (await client.get(url(desk.t_a), headers=H_B1)).status_code == 404
    assert (await client.get(url(desk.t_b), headers=identity_headers(LONER))).status_code == 404
    assert (await client.get(url(desk.triage), headers=identity_headers(LONER))).status_code == 200
    for staff in (H_SUP, H_ADMIN):
        assert (await client.get(url(desk.t_b), headers=staff)).status_code == 200


async def test_agent_cannot_patch_other_teams_ticket(client, desk):
    for patch in ({"assignee_id": "a1", "team_id": desk.team_a}, {"assignee_id": "a1"}, {"status": "solved"},
                  {"priority": "urgent"}, {"team_id": None}):
        r = await client.patch(url(desk.t_b), json=patch, headers=H_A1)
        assert r.status_code == 404, (patch, r.text)
    after = (await client.get(url(desk.t_b), headers=H_SUP)).json()
    assert (after["team_id"], after["assignee_id"], after["status"], after["version"]) == \
        (desk.team_b, None, desk.t_b["status"], desk.t_b["version"])


async def test_agent_cannot_assign_to_someone_else_nor_move_teams(client, desk):
    for patch in ({"assignee_id": "a2"}, {"assignee_id": "b1"}, {"team_id": desk.team_b},
                  {"team_id": None}, {"team_id": desk.team_b, "assignee_id": "a1"}):
        r = await client.patch(url(desk.t_a), json=patch, headers=H_A1)
        assert r.status_code == 403, (patch, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
    # a ticket of theirs in another team: they may work it but not move it
    assert (await client.patch(url(desk.t_b_mine), json={"team_id": desk.team_a}, headers=H_A1)).status_code == 403
    # a teammate's ticket is not theirs to take or to release
    taken = await client.patch(url(desk.t_a), json={"assignee_id": "a2"}, headers=H_A2)
    assert taken.status_code == 200, taken.text
    assert (await client.patch(url(desk.t_a), json={"assignee_id": "a1"}, headers=H_A1)).status_code == 403
    assert (await client.patch(url(desk.t_a), json={"assignee_id": None}, headers=H_A1)).status_code == 403
    # the /assign route stays supervisors' only
    assert (await client.post(url(desk.triage, "/assign"), json={"assignee_id": "a1"},
                              headers=H_A1)).status_code == 403


async def test_agent_takes_solves_and_releases_own_team_and_triage_tickets(client, desk):
    taken = await client.patch(url(desk.t_a), json={"assignee_id": "a1"}, headers=H_A1)
    assert taken.status_code == 200, taken.text
    assert taken.json()["assignee_id"] == "a1" and taken.json()["assignment_state"] == "accepted"
    released = await client.patch(url(desk.t_a), json={"assignee_id": None}, headers=H_A1)
    assert released.status_code == 200 and released.json()["assignee_id"] is None
    solved = await client.patch(url(desk.t_a), json={"status": "solved"}, headers=H_A1)
    assert solved.status_code == 200 and solved.json()["status"] == "solved"
    # a ticket assigned to them in another team: worked and solved there
    mine = await client.patch(url(desk.t_b_mine), json={"status": "solved", "add_tags": ["done"]}, headers=H_A1)
    assert mine.status_code == 200 and mine.json()["team_id"] == desk.team_b
    # triage: take it into one of their own teams, not into another's
    assert (await client.patch(url(desk.triage), json={"team_id": desk.team_b}, headers=H_A1)).status_code == 403
    pulled = await client.patch(url(desk.triage), json={"team_id": desk.team_a, "assignee_id": "a1"}, headers=H_A1)
    assert pulled.status_code == 200, pulled.text
    assert (pulled.json()["team_id"], pulled.json()["assignee_id"]) == (desk.team_a, "a1")


async def test_supervisors_and_admins_do_everything(client, desk):
    moved = await client.patch(url(desk.t_a), json={"team_id": desk.team_b, "assignee_id": "b1"}, headers=H_SUP)
    assert moved.status_code == 200 and (moved.json()["team_id"], moved.json()["assignee_id"]) == (desk.team_b, "b1")
    assert (await client.patch(url(desk.t_a), json={"assignee_id": "a2", "team_id": desk.team_a},
                               headers=H_ADMIN)).status_code == 200
    assert (await client.patch(url(desk.t_b), json={"status": "solved"}, headers=H_SUP)).status_code == 200
    merged = await client.post(url(desk.t_b_mine, "/merge"), json={"target_id": desk.triage["id"]}, headers=H_ADMIN)
    assert merged.status_code == 200, merged.text
    unknown = await client.patch(url(desk.triage), json={"assignee_id": "ghost"}, headers=H_SUP)
    assert unknown.status_code == 422


async def test_private_macro_cannot_reach_or_reassign_other_teams_tickets(client, desk):
    async def macro(actions: dict, reply: str | None = None) -> str:
        body = {"name": f"m-{len(str(actions))}-{reply}", "actions": actions}
        if reply:
            body["reply"] = {"body": reply}
        r = await client.post("/v1/macros", json=body, headers=H_A1)
        assert r.status_code == 201, r.text
        return r.json()["id"]

    grab = await macro({"assignee_id": "a1", "team_id": desk.team_a})
    solve = await macro({"status": "solved"})
    dump = await macro({"assignee_id": "a2"}, reply="交给同事处理")
    for macro_id in (grab, solve):
        r = await client.post(url(desk.t_b, f"/macros/{macro_id}"), headers=H_A1)
        assert r.status_code == 404, r.text
    r = await client.post(url(desk.t_a, f"/macros/{dump}"), headers=H_A1)
    assert r.status_code == 403, r.text
    after = (await client.get(url(desk.t_a), headers=H_SUP)).json()
    assert after["assignee_id"] is None and after["message_count"] == desk.t_a["message_count"]  # reply rolled back
    b_after = (await client.get(url(desk.t_b), headers=H_SUP)).json()
    assert (b_after["team_id"], b_after["assignee_id"], b_after["status"]) == (desk.team_b, None, "new")
    # the same macros on tickets the rule allows
    assert (await client.post(url(desk.t_a, f"/macros/{solve}"), headers=H_A1)).status_code == 200
    grabbed = await client.post(url(desk.triage, f"/macros/{grab}"), headers=H_A1)
    assert grabbed.status_code == 200 and grabbed.json()["assignee_id"] == "a1"


async def test_agent_cannot_merge_or_link_other_teams_tickets(client, desk):
    for source, target in ((desk.t_a, desk.t_b), (desk.t_b, desk.t_a), (desk.triage, desk.t_b)):
        r = await client.post(url(source, "/merge"), json={"target_id": target["id"]}, headers=H_A1)
        assert r.status_code == 404, r.text
        r = await client.post(url(source, "/links"), json={"other_id": target["id"], "kind": "related"}, headers=H_A1)
        assert r.status_code == 404, r.text
    for ticket in (desk.t_a, desk.t_b):
        assert (await client.get(url(ticket), headers=H_SUP)).json()["status"] == "new"
    # a link a supervisor made does not show team B's ticket to a1
    assert (await client.post(url(desk.t_a, "/links"), json={"other_id": desk.t_b["id"], "kind": "related"},
                              headers=H_SUP)).status_code == 204
    assert (await client.get(url(desk.t_a, "/links"), headers=H_A1)).json() == []
    assert len((await client.get(url(desk.t_a, "/links"), headers=H_SUP)).json()) == 1
    merged = await client.post(url(desk.t_a, "/merge"), json={"target_id": desk.triage["id"]}, headers=H_A1)
    assert merged.status_code == 200, merged.text


async def test_agent_cannot_write_messages_on_other_teams_tickets(client, desk):
    r = await client.post(url(desk.t_b, "/messages"), json={"body": "偷看一下", "public": False}, headers=H_A1)
    assert r.status_code == 404, r.text
    assert (await client.post(url(desk.t_a, "/messages"), json={"body": "在处理"}, headers=H_A1)).status_code == 201


async def test_agent_creating_a_ticket_follows_the_same_rule(client, desk):
    body = {"subject": "电话记录", "requester": {"phone": "+86 10 1234 5678"}}
    assert (await client.post("/v1/tickets", json={**body, "team_id": desk.team_b}, headers=H_A1)).status_code == 403
    assert (await client.post("/v1/tickets", json={**body, "assignee_id": "a2"}, headers=H_A1)).status_code == 403
    own = await client.post("/v1/tickets", json={**body, "team_id": desk.team_a, "assignee_id": "a1"}, headers=H_A1)
    assert own.status_code == 201, own.text
    assert (await client.post("/v1/tickets", json={**body, "team_id": desk.team_b, "assignee_id": "b1"},
                              headers=H_SUP)).status_code == 201


async def test_lists_searches_and_views_exclude_other_teams_tickets(client, desk):
    async def ids(headers: dict, **params) -> set[str]:
        r = await client.get("/v1/tickets", params=params, headers=headers)
        assert r.status_code == 200, r.text
        return {t["id"] for t in r.json()["items"]}

    visible_to_a1 = {desk.t_a["id"], desk.t_b_mine["id"], desk.triage["id"]}
    assert await ids(H_A1) == visible_to_a1
    assert await ids(H_A1, q="工单") == visible_to_a1 - {desk.t_b_mine["id"]}
    assert await ids(H_A1, team_id=desk.team_b) == {desk.t_b_mine["id"]}
    assert await ids(H_B1) == {desk.t_b["id"], desk.t_b_mine["id"], desk.triage["id"]}
    assert await ids(identity_headers(LONER)) == {desk.triage["id"]}
    every = {desk.t_a["id"], desk.t_b["id"], desk.t_b_mine["id"], desk.triage["id"]}
    assert await ids(H_SUP) == every and await ids(H_ADMIN) == every
    view = await client.post("/v1/views", json={"name": "B", "filters": {"team_id": desk.team_b}}, headers=H_A1)
    assert view.status_code == 201
    assert await ids(H_A1, view_id=view.json()["id"]) == {desk.t_b_mine["id"]}


async def test_list_scope_in_sql_matches_the_pure_rule(client, desk):
    """The list filter (SQL) and ``policy.may_read`` (Python) are one rule written twice: prove
    they agree on every ticket for every kind of caller."""
    from ticket_svc.tickets import policy

    every = [(await client.get(url(t), headers=H_SUP)).json()
             for t in (desk.t_a, desk.t_b, desk.t_b_mine, desk.triage)]
    teams = {A1: {desk.team_a}, A2: {desk.team_a}, B1: {desk.team_b}, LONER: set(), SUPERVISOR: set(), ADMIN: set()}
    for principal, team_ids in teams.items():
        viewer = policy.viewer_of(principal, team_ids)
        expected = {t["id"] for t in every if policy.may_read(viewer, {**t, "created_by": "channel:key-1"})}
        listed = (await client.get("/v1/tickets", headers=identity_headers(principal))).json()["items"]
        assert {t["id"] for t in listed} == expected, principal
