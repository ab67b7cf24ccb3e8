"""Followers are agents that exist (issue 9, "Also fix" 6): PATCH and macros alike."""


from helpdesk_common.identity import Principal
from helpdesk_common.testing import identity_headers

ADMIN = identity_headers(Principal(kind="user", id="u-admin", role="admin"))




async def test_unknown_followers_are_422_naming_the_field(client, db, known_users):
    await known_users("ann")
    assert (await client.put("/v1/agents/ann", json={"display_name": "Ann"}, headers=ADMIN)).status_code == 200
    ticket = (await client.post("/v1/tickets", json={"subject": "s", "requester": {"email": "a@example.com"}},
                                headers=ADMIN)).json()
    url = f"/v1/tickets/{ticket['id']}"
    refused = await client.patch(url, json={"followers": ["ann", "ghost", "<script>"]}, headers=ADMIN)
    assert refused.status_code == 422, refused.text
    assert [(e["field"], e["message"]) for e in refused.json()["errors"]] == \
        [("followers", "unknown agent 'ghost'"), ("followers", "unknown agent '<script>'")]
    assert (await client.get(url, headers=ADMIN)).json()["followers"] == []
    ok = await client.patch(url, json={"followers": ["ann", "ann"]}, headers=ADMIN)
    assert ok.status_code == 200 and ok.json()["followers"] == ["ann"]
    assert (await client.patch(url, json={"followers": []}, headers=ADMIN)).json()["followers"] == []
    macro = (await client.post("/v1/macros", json={"name": "follow", "actions": {"followers": ["nobody"]}},
                               headers=ADMIN)).json()
    applied = await client.post(f"{url}/macros/{macro['id']}", headers=ADMIN)
    assert applied.status_code == 422 and applied.json()["errors"][0]["field"] == "followers"
