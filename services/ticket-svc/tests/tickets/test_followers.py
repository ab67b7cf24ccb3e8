"""Followers are agents that exist (issue 9, "Also fix" 6): PATCH and macros alike."""

from sqlalchemy import text

from helpdesk_common.identity import Principal
from helpdesk_common.testing import identity_headers

ADMIN = identity_headers(Principal(kind="user", id="u-admin", role="admin"))



async def as_users(db, *user_ids: str) -> None:
    """Make ids gateway users where ticket-svc keeps a user projection (agent profiles are only
    for users there); a no-op on a schema without it."""
    async with db.begin() as conn:
        if await conn.scalar(text("SELECT to_regclass('user_projection') IS NOT NULL")):
            for user_id in user_ids:
                await conn.execute(text(
                    "INSERT INTO user_projection (id, display_name, role, active, version) "
                    "VALUES (:id, :id, 'agent', true, 1) ON CONFLICT (id) DO NOTHING"), {"id": user_id})

async def test_unknown_followers_are_422_naming_the_field(client, db):
    await as_users(db, "ann")
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
