"""Teams API (issue 9, "Also fix" 5): PUT replaces only with every field, PATCH changes what it
names (If-Match with the team's version), DELETE refuses while open tickets or routing rules
use the team. On the real database."""

import pytest
from sqlalchemy import text

from helpdesk_common.identity import Principal
from helpdesk_common.testing import identity_headers

ADMIN = identity_headers(Principal(kind="user", id="u-admin", role="admin"))
AGENT = identity_headers(Principal(kind="user", id="u-agent", role="agent"))
FULL = {"name": "Billing", "strategy": "least_loaded", "accept_timeout_s": 300, "required_skills": ["invoices"],
        "members": ["ann", "bob"]}




@pytest.fixture(autouse=True)
async def _users(known_users):
    await known_users("ann", "bob", "cid")


async def agents(client, *ids: str) -> None:
    for agent_id in ids:
        r = await client.put(f"/v1/agents/{agent_id}", json={"display_name": agent_id}, headers=ADMIN)
        assert r.status_code == 200, r.text


async def new_team(client, **overrides) -> dict:
    await agents(client, "ann", "bob", "cid")
    r = await client.post("/v1/teams", json={**FULL, **overrides}, headers=ADMIN)
    assert r.status_code == 201, r.text
    assert r.headers["etag"] == 'W/"1"' and r.json()["version"] == 1
    return r.json()


async def test_put_with_only_a_name_is_refused_and_changes_nothing(client):
    team = await new_team(client)
    url = f"/v1/teams/{team['id']}"
    r = await client.put(url, json={"name": "Billing 2"}, headers=ADMIN)
    assert r.status_code == 422, r.text
    assert {e["field"] for e in r.json()["errors"]} == {"body.strategy", "body.accept_timeout_s",
                                                         "body.required_skills", "body.members"}
    kept = (await client.get(url, headers=AGENT)).json()
    assert (kept["name"], kept["members"], kept["strategy"]) == ("Billing", ["ann", "bob"], "least_loaded")


async def test_put_with_every_field_replaces(client):
    team = await new_team(client)
    url = f"/v1/teams/{team['id']}"
    r = await client.put(url, json={**FULL, "name": "Billing EU", "members": ["cid"], "accept_timeout_s": None},
                         headers=ADMIN)
    assert r.status_code == 200, r.text
    assert (r.json()["name"], r.json()["members"], r.json()["accept_timeout_s"]) == ("Billing EU", ["cid"], None)
    assert r.headers["etag"] == 'W/"2"'


async def test_patch_changes_only_what_it_names(client):
    team = await new_team(client)
    url = f"/v1/teams/{team['id']}"
    r = await client.patch(url, json={"name": "Invoices"}, headers=ADMIN)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["name"], body["members"], body["strategy"], body["required_skills"], body["accept_timeout_s"]) == \
        ("Invoices", ["ann", "bob"], "least_loaded", ["invoices"], 300)
    assert r.headers["etag"] == f'W/"{body["version"]}"' and body["version"] == 2
    r = await client.patch(url, json={"members": ["cid", "ann"], "accept_timeout_s": None}, headers=ADMIN)
    assert r.status_code == 200, r.text
    assert (r.json()["members"], r.json()["accept_timeout_s"], r.json()["name"]) == (["ann", "cid"], None, "Invoices")
    unknown = await client.patch(url, json={"members": ["ghost"]}, headers=ADMIN)
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["field"] == "members"
    empty = await client.patch(url, json={}, headers=ADMIN)
    assert empty.status_code == 200 and empty.json()["version"] == 3  # nothing to change, nothing bumped
    assert (await client.patch(url, json={"name": None}, headers=ADMIN)).status_code == 422
    assert (await client.patch(url, json={"name": "x"}, headers=AGENT)).status_code == 403


async def test_patch_if_match(client):
    team = await new_team(client)
    url = f"/v1/teams/{team['id']}"
    ok = await client.patch(url, json={"name": "A"}, headers={**ADMIN, "If-Match": 'W/"1"'})
    assert ok.status_code == 200, ok.text
    stale = await client.patch(url, json={"name": "B"}, headers={**ADMIN, "If-Match": 'W/"1"'})
    assert stale.status_code == 412 and stale.headers["content-type"] == "application/problem+json"
    assert stale.json()["current_version"] == 2
    assert (await client.get(url, headers=AGENT)).json()["name"] == "A"
    assert (await client.get(url, headers=AGENT)).headers["etag"] == 'W/"2"'


async def test_renaming_onto_another_team_is_409(client):
    team = await new_team(client)
    await client.post("/v1/teams", json={"name": "Support"}, headers=ADMIN)
    r = await client.patch(f"/v1/teams/{team['id']}", json={"name": "Support"}, headers=ADMIN)
    assert r.status_code == 409


async def test_delete_refuses_while_open_tickets_or_rules_use_the_team(client, db):
    team = await new_team(client)
    url = f"/v1/teams/{team['id']}"
    ticket = (await client.post("/v1/tickets", json={"subject": "s", "requester": {"email": "a@example.com"},
                                                     "team_id": team["id"]}, headers=ADMIN)).json()
    rule = (await client.post("/v1/routing/rules", json={"name": "to billing", "actions": {"set_team": team["id"]}},
                              headers=ADMIN)).json()
    busy = await client.delete(url, headers=ADMIN)
    assert busy.status_code == 409, busy.text
    assert (busy.json()["open_tickets"], busy.json()["routing_rules"]) == (1, [rule["id"]])
    for status in ("solved", "closed"):
        assert (await client.patch(f"/v1/tickets/{ticket['id']}", json={"status": status},
                                   headers=ADMIN)).status_code == 200
    still = await client.delete(url, headers=ADMIN)
    assert still.status_code == 409 and still.json()["open_tickets"] == 0
    assert (await client.delete(f"/v1/routing/rules/{rule['id']}", headers=ADMIN)).status_code == 204
    assert (await client.delete(url, headers={**ADMIN, "If-Match": 'W/"7"'})).status_code == 412
    assert (await client.delete(url, headers=AGENT)).status_code == 403
    gone = await client.delete(url, headers={**ADMIN, "If-Match": 'W/"1"'})
    assert gone.status_code == 204, gone.text
    assert (await client.get(url, headers=AGENT)).status_code == 404
    assert (await client.delete(url, headers=ADMIN)).status_code == 404
    async with db.connect() as conn:
        assert await conn.scalar(text("SELECT count(*) FROM team_members")) == 0
    # the closed ticket keeps the id as history; the name is free again
    assert (await client.get(f"/v1/tickets/{ticket['id']}", headers=ADMIN)).json()["team_id"] == team["id"]
    assert (await client.post("/v1/teams", json={"name": "Billing"}, headers=ADMIN)).status_code == 201
    assert (await client.patch(f"/v1/tickets/{ticket['id']}", json={"status": "closed"},
                               headers=ADMIN)).status_code == 200


@pytest.mark.parametrize("path", ["team_id", "assign"])
async def test_a_deleted_team_cannot_be_given_tickets(client, path):
    team = await new_team(client)
    assert (await client.delete(f"/v1/teams/{team['id']}", headers=ADMIN)).status_code == 204
    ticket = (await client.post("/v1/tickets", json={"subject": "s", "requester": {"email": "a@example.com"}},
                                headers=ADMIN)).json()
    if path == "team_id":
        r = await client.patch(f"/v1/tickets/{ticket['id']}", json={"team_id": team["id"]}, headers=ADMIN)
    else:
        r = await client.post(f"/v1/tickets/{ticket['id']}/assign", json={"team_id": team["id"]}, headers=ADMIN)
    assert r.status_code == 422, r.text
