"""Issue 9 "Also fix" items through the gateway, as a user hits them: subjects and names are
one clean line, stored HTML loads nothing remote, a channel key sees public messages only
(count and search), search folds full-width text and forgets an edited subject, teams are
replaced only whole and deleted only unused, followers are agents, an unknown query parameter
is a 422, and a stale If-Match is a 412 on every versioned resource."""

import uuid

from .conftest import eventually


async def new_agent(gw, admin_headers, name: str) -> str:
    """A gateway user with an agent profile in ticket-svc; returns the user id."""
    created = await gw.post("/v1/users", json={"email": f"{name}@example.com", "password": uuid.uuid4().hex,
                                               "role": "agent", "name": name}, headers=admin_headers)
    assert created.status_code == 201, created.text
    user_id = created.json()["id"]

    async def profile() -> bool:
        r = await gw.put(f"/v1/agents/{user_id}", json={"display_name": name, "status": "online"},
                         headers=admin_headers)
        return r.status_code == 200

    await eventually(profile, timeout=30)
    return user_id


async def new_ticket(gw, key_headers, subject: str, **extra) -> dict:
    r = await gw.post("/v1/tickets", json={"subject": subject, "description": "It blinks.",
                                           "requester": {"email": "rough@example.com"}, **extra}, headers=key_headers)
    assert r.status_code == 201, r.text
    return r.json()


async def ids(gw, headers, **params) -> set[str]:
    r = await gw.get("/v1/tickets", params=params, headers=headers)
    assert r.status_code == 200, r.text
    return {t["id"] for t in r.json()["items"]}


async def test_subjects_html_and_what_a_channel_sees(gw, admin_headers, key_headers):
    suffix = uuid.uuid4().hex[:8]
    # 1: CR/LF and a bidi override are gone; nothing visible is a 422
    ticket = await new_ticket(gw, key_headers, f"Printer {suffix}\r\nBcc: victim@example.com\u202e")
    assert ticket["subject"] == f"Printer {suffix} Bcc: victim@example.com"
    blank = await gw.post("/v1/tickets", json={"subject": "\r\n\u2066", "requester": {"email": "a@example.com"}},
                          headers=key_headers)
    assert blank.status_code == 422 and blank.json()["errors"][0]["field"] == "body.subject"
    url = f"/v1/tickets/{ticket['id']}"
    # 2: a tracking pixel loses its src, the inline image stays
    posted = await gw.post(f"{url}/messages", json={"body": "hi", "html": (
        '<p>hi</p><img src="https://t.example/open.gif" alt="pixel"><img src="cid:logo@mail">')}, headers=key_headers)
    assert posted.status_code == 201, posted.text
    assert "t.example" not in posted.json()["body_html"] and 'src="cid:logo@mail"' in posted.json()["body_html"]
    # 3: an internal note is neither counted nor searchable for the channel
    note = await gw.post(f"{url}/messages", json={"body": f"vendor{suffix} secret", "public": False},
                         headers=admin_headers)
    assert note.status_code == 201, note.text
    assert (await gw.get(url, headers=key_headers)).json()["message_count"] == 2
    assert (await gw.get(url, headers=admin_headers)).json()["message_count"] == 3
    assert await ids(gw, admin_headers, q=f"vendor{suffix}") == {ticket["id"]}
    assert await ids(gw, key_headers, q=f"vendor{suffix}") == set()
    # 4: full-width text is found by its ASCII form; an edited subject forgets its old words
    assert await ids(gw, admin_headers, q=f"ｐｒｉｎｔｅｒ {suffix}") == {ticket["id"]}
    patched = await gw.patch(url, json={"subject": f"Scanner {suffix}"}, headers=admin_headers)
    assert patched.status_code == 200, patched.text
    assert await ids(gw, admin_headers, q=f"printer {suffix}") == set()
    assert await ids(gw, admin_headers, q=f"scanner {suffix}") == {ticket["id"]}


async def test_teams_followers_query_parameters(gw, admin_headers, key_headers):
    suffix = uuid.uuid4().hex[:8]
    member = await new_agent(gw, admin_headers, f"rough-{suffix}")
    team = await gw.post("/v1/teams", json={"name": f"Rough\r\n{suffix}", "members": [member]}, headers=admin_headers)
    assert team.status_code == 201, team.text
    assert team.json()["name"] == f"Rough {suffix}"
    url = f"/v1/teams/{team.json()['id']}"
    # 5: a PUT with only a name no longer empties the team; PATCH renames and keeps the members
    assert (await gw.put(url, json={"name": f"Renamed {suffix}"}, headers=admin_headers)).status_code == 422
    renamed = await gw.patch(url, json={"name": f"Renamed {suffix}"}, headers=admin_headers)
    assert renamed.status_code == 200 and renamed.json()["members"] == [member]
    ticket = await new_ticket(gw, admin_headers, f"Team ticket {suffix}", team_id=team.json()["id"])
    busy = await gw.delete(url, headers=admin_headers)
    assert busy.status_code == 409 and busy.json()["open_tickets"] == 1
    # 6: followers are agents
    t_url = f"/v1/tickets/{ticket['id']}"
    ghost = await gw.patch(t_url, json={"followers": [member, "ghost"]}, headers=admin_headers)
    assert ghost.status_code == 422 and [e["field"] for e in ghost.json()["errors"]] == ["followers"]
    assert (await gw.patch(t_url, json={"followers": [member]}, headers=admin_headers)).status_code == 200
    # 7: a mistyped filter is refused, on tickets as on customers
    for path in ("/v1/tickets?stauts=open", "/v1/customers?stauts=open"):
        r = await gw.get(path, headers=admin_headers)
        assert r.status_code == 422, (path, r.text)
        assert [e["field"] for e in r.json()["errors"]] == ["query.stauts"]
    for status in ("solved", "closed"):
        assert (await gw.patch(t_url, json={"status": status}, headers=admin_headers)).status_code == 200
    assert (await gw.delete(url, headers=admin_headers)).status_code == 204


async def test_a_stale_if_match_is_412_everywhere(gw, admin_headers, key_headers, sql):
    """8: If-Match is optional, and honoured on every versioned resource it is sent to."""
    suffix = uuid.uuid4().hex[:8]
    ticket = await new_ticket(gw, key_headers, f"Versions {suffix}")
    team = (await gw.post("/v1/teams", json={"name": f"Versions {suffix}"}, headers=admin_headers)).json()
    status = (await gw.post("/v1/statuses", json={"key": f"wait_{suffix}", "label": "Waiting",
                                                  "category": "on_hold"}, headers=admin_headers)).json()
    policy = (await gw.post("/v1/sla/policies", json={"name": f"p-{suffix}",
                                                      "targets": {"first_response": {"minutes": 30}}},
                            headers=admin_headers)).json()

    async def customer_id() -> str | None:
        return await sql("ticket-svc", "SELECT CAST(customer_id AS text) FROM tickets WHERE id = :id", id=ticket["id"])

    customer = await eventually(customer_id)
    writes = [
        ("PATCH", f"/v1/tickets/{ticket['id']}", {"priority": "high"}),
        ("PATCH", f"/v1/teams/{team['id']}", {"name": f"Versions 2 {suffix}"}),
        ("PATCH", f"/v1/statuses/{status['id']}", {"label": "Waiting 2"}),
        ("PUT", f"/v1/sla/policies/{policy['id']}", {"name": f"p2-{suffix}",
                                                     "targets": {"first_response": {"minutes": 30}}}),
        ("PATCH", f"/v1/customers/{customer}", {"name": "Rough Customer"}),
    ]
    for method, path, body in writes:
        stale = await gw.request(method, path, json=body, headers={**admin_headers, "If-Match": 'W/"999"'})
        assert stale.status_code == 412, (path, stale.text)
        assert stale.json()["type"].endswith("/version-conflict") and "current_version" in stale.json(), path
        current = stale.json()["current_version"]
        ok = await gw.request(method, path, json=body, headers={**admin_headers, "If-Match": f'W/"{current}"'})
        assert ok.status_code == 200, (path, ok.text)
        assert ok.headers["etag"] == f'W/"{current + 1}"', path
