"""If-Match is optional and honoured everywhere it is sent (issue 9, "Also fix" 8): every
write of a versioned ticket-svc resource answers an ETag, and a stale If-Match is a 412
problem with the current version and changes nothing. Teams: tests/routing/test_teams_api.py."""

import pytest


from helpdesk_common.identity import Principal
from helpdesk_common.testing import identity_headers

ADMIN = identity_headers(Principal(kind="user", id="u-admin", role="admin"))
AGENT = identity_headers(Principal(kind="user", id="u-agent", role="agent"))
STALE = 'W/"999"'




async def ticket(client, **extra) -> dict:
    r = await client.post("/v1/tickets", json={"subject": "s", "requester": {"email": "a@example.com"}, **extra},
                          headers=ADMIN)
    assert r.status_code == 201, r.text
    assert r.headers["etag"] == f'W/"{r.json()["version"]}"'
    return r.json()


async def ticket_writes(client, known_users) -> list[tuple[str, str, dict, dict, str]]:
    """(method, url, json, headers, url to read the version back) of every ticket write."""
    await known_users("u-agent")
    assert (await client.put("/v1/agents/u-agent", json={"display_name": "A"}, headers=ADMIN)).status_code == 200
    macro = (await client.post("/v1/macros", json={"name": "m", "actions": {"priority": "high"}},
                               headers=ADMIN)).json()
    t = {name: await ticket(client) for name in ("patch", "assign", "macro", "merge", "message")}
    t["accept"] = await ticket(client, assignee_id="u-agent")
    target = await ticket(client)
    return [
        ("PATCH", f"/v1/tickets/{t['patch']['id']}", {"priority": "low"}, ADMIN, t["patch"]["id"]),
        ("POST", f"/v1/tickets/{t['assign']['id']}/assign", {"assignee_id": "u-agent"}, ADMIN, t["assign"]["id"]),
        ("POST", f"/v1/tickets/{t['accept']['id']}/accept", None, AGENT, t["accept"]["id"]),
        ("POST", f"/v1/tickets/{t['macro']['id']}/macros/{macro['id']}", None, ADMIN, t["macro"]["id"]),
        ("POST", f"/v1/tickets/{t['merge']['id']}/merge", {"target_id": target["id"]}, ADMIN, t["merge"]["id"]),
        ("POST", f"/v1/tickets/{t['message']['id']}/messages", {"body": "hi"}, ADMIN, t["message"]["id"]),
    ]


@pytest.mark.parametrize("if_match", [STALE, 'W/"999", W/"998"', "garbage"])
async def test_a_stale_if_match_is_412_on_every_ticket_write(client, known_users, if_match):
    for method, url, body, headers, ticket_id in await ticket_writes(client, known_users):
        before = (await client.get(f"/v1/tickets/{ticket_id}", headers=ADMIN)).json()
        r = await client.request(method, url, json=body, headers={**headers, "If-Match": if_match})
        assert r.status_code == 412, (url, r.text)
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["type"].endswith("/version-conflict") and r.json()["current_version"] == before["version"]
        after = (await client.get(f"/v1/tickets/{ticket_id}", headers=ADMIN)).json()
        assert after == before, url


async def test_a_current_if_match_passes_and_every_answer_has_an_etag(client, known_users):
    for method, url, body, headers, ticket_id in await ticket_writes(client, known_users):
        current = await client.get(f"/v1/tickets/{ticket_id}", headers=ADMIN)
        etag = current.headers["etag"]
        r = await client.request(method, url, json=body, headers={**headers, "If-Match": etag})
        assert r.status_code in (200, 201), (url, r.text)
        if "/messages" not in url:  # a message answers the message; the ticket's new ETag is on its GET
            assert r.headers["etag"] == f'W/"{r.json()["version"]}"', url
        for unconditional in ("*", None):  # If-Match stays optional
            if "/merge" in url:
                break
            extra = {"If-Match": unconditional} if unconditional else {}
            again = await client.request(method, url, json=body, headers={**headers, **extra})
            assert again.status_code in (200, 201, 409), (url, again.text)


async def test_statuses(client):
    created = await client.post("/v1/statuses", json={"key": "waiting_vendor", "label": "Waiting",
                                                      "category": "on_hold"}, headers=ADMIN)
    assert created.status_code == 201 and created.headers["etag"] == 'W/"1"' and created.json()["version"] == 1
    url = f"/v1/statuses/{created.json()['id']}"
    stale = await client.patch(url, json={"label": "Vendor"}, headers={**ADMIN, "If-Match": STALE})
    assert stale.status_code == 412 and stale.json()["current_version"] == 1
    ok = await client.patch(url, json={"label": "Vendor"}, headers={**ADMIN, "If-Match": 'W/"1"'})
    assert ok.status_code == 200 and ok.headers["etag"] == 'W/"2"' and ok.json()["label"] == "Vendor"
    assert (await client.patch(url, json={"position": 2}, headers=ADMIN)).json()["version"] == 3
    assert [s["version"] for s in (await client.get("/v1/statuses", headers=ADMIN)).json()] == [3]


async def test_forms(client):
    """A form's versions are immutable; PUT adds the next one, so If-Match names the latest."""
    fields = {"fields": [{"key": "order", "label": "Order", "type": "text"}]}
    first = await client.put("/v1/forms/refund", json=fields, headers=ADMIN)
    assert first.status_code == 201 and first.headers["etag"] == 'W/"1"'
    assert (await client.get("/v1/forms/refund", headers=ADMIN)).headers["etag"] == 'W/"1"'
    second = await client.put("/v1/forms/refund", json=fields, headers={**ADMIN, "If-Match": 'W/"1"'})
    assert second.status_code == 200 and second.headers["etag"] == 'W/"2"'
    stale = await client.put("/v1/forms/refund", json=fields, headers={**ADMIN, "If-Match": 'W/"1"'})
    assert stale.status_code == 412 and stale.json()["current_version"] == 2
    assert (await client.get("/v1/forms/refund", headers=ADMIN)).json()["version"] == 2
    none_yet = await client.put("/v1/forms/other", json=fields, headers={**ADMIN, "If-Match": 'W/"3"'})
    assert none_yet.status_code == 412 and none_yet.json()["current_version"] == 0
