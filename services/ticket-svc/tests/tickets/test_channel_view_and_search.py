"""What a channel key (the customer's side) sees of a ticket, and search that forgets an old
subject and folds full-width text (issue 9, "Also fix" 3 and 4), on the real database."""

import pytest

from helpdesk_common.identity import Principal
from helpdesk_common.testing import identity_headers

CHANNEL = Principal(kind="channel", id="web-key", channel="web")
AGENT = Principal(kind="user", id="u-agent", role="agent")
ADMIN = Principal(kind="user", id="u-admin", role="admin")
H_CHANNEL, H_AGENT, H_ADMIN = identity_headers(CHANNEL), identity_headers(AGENT), identity_headers(ADMIN)


async def new_ticket(client, subject: str = "Printer offline", description: str = "It blinks.") -> dict:
    r = await client.post("/v1/tickets", json={"subject": subject, "description": description,
                                               "requester": {"email": "c@example.com"}}, headers=H_CHANNEL)
    assert r.status_code == 201, r.text
    return r.json()


async def post(client, ticket: dict, body: str, *, public: bool = True, headers=H_AGENT) -> None:
    r = await client.post(f"/v1/tickets/{ticket['id']}/messages", json={"body": body, "public": public},
                          headers=headers)
    assert r.status_code == 201, r.text


async def counts(client, ticket: dict) -> tuple[int, int, int]:
    """message_count as the channel reads it (GET and list) and as an agent reads it."""
    url = f"/v1/tickets/{ticket['id']}"
    as_channel = (await client.get(url, headers=H_CHANNEL)).json()["message_count"]
    listed = [t for t in (await client.get("/v1/tickets", headers=H_CHANNEL)).json()["items"] if t["id"] == ticket["id"]]
    as_agent = (await client.get(url, headers=H_AGENT)).json()["message_count"]
    return as_channel, listed[0]["message_count"], as_agent


async def test_a_channel_counts_public_messages_only(client):
    ticket = await new_ticket(client)
    assert await counts(client, ticket) == (1, 1, 1)
    await post(client, ticket, "Checked the spooler, the vendor is slow", public=False)
    assert await counts(client, ticket) == (1, 1, 2)
    await post(client, ticket, "Please restart it")
    await post(client, ticket, "Done, still broken", headers=H_CHANNEL)
    assert await counts(client, ticket) == (3, 3, 4)
    patched = await client.patch(f"/v1/tickets/{ticket['id']}", json={"priority": "high"}, headers=H_AGENT)
    assert patched.json()["message_count"] == 4  # agents keep the full count


async def test_merge_adds_public_counts(client):
    source, target = await new_ticket(client, "Source"), await new_ticket(client, "Target")
    await post(client, source, "internal", public=False)
    await post(client, source, "public reply")
    merged = await client.post(f"/v1/tickets/{source['id']}/merge", json={"target_id": target["id"]}, headers=H_ADMIN)
    assert merged.status_code == 200, merged.text
    assert merged.json()["message_count"] == 5  # 1 + 3 moved + the internal "merged" note
    assert (await client.get(f"/v1/tickets/{target['id']}", headers=H_CHANNEL)).json()["message_count"] == 3


async def found(client, q: str, headers) -> set[str]:
    r = await client.get("/v1/tickets", params={"q": q}, headers=headers)
    assert r.status_code == 200, r.text
    return {t["id"] for t in r.json()["items"]}


async def test_a_channel_search_does_not_see_internal_notes(client):
    ticket = await new_ticket(client)
    await post(client, ticket, "vendorcode zebra", public=False)
    await post(client, ticket, "public answer giraffe")
    assert await found(client, "zebra", H_AGENT) == {ticket["id"]}
    assert await found(client, "zebra", H_CHANNEL) == set()  # would reveal the note's words
    assert await found(client, "vendorcod", H_CHANNEL) == set()  # nor by prefix
    assert await found(client, "giraffe", H_CHANNEL) == {ticket["id"]}
    assert await found(client, "printer", H_CHANNEL) == {ticket["id"]}  # subject
    assert await found(client, "blinks", H_CHANNEL) == {ticket["id"]}  # description


@pytest.mark.parametrize(("subject", "query"), [
    ("ｐｒｉｎｔｅｒ　ｊａｍ", "printer"),
    ("printer jam", "ｐｒｉｎｔｅｒ"),
    ("printer jam", "ｐｒｉｎ"),  # prefix of the last word
    ("订单１２３４５ 未到", "12345"),
    ("order 12345", "１２３４５"),
])
async def test_full_width_text_is_found_both_ways(client, subject, query):
    ticket = await new_ticket(client, subject)
    assert await found(client, query, H_AGENT) == {ticket["id"]}
    assert await found(client, query, H_CHANNEL) == {ticket["id"]}


async def test_an_edited_subject_no_longer_matches_its_old_words(client):
    ticket = await new_ticket(client, "Alpha printer", "printer smoke")
    await post(client, ticket, "note about alphabets", public=False)
    url = f"/v1/tickets/{ticket['id']}"
    assert await found(client, "alpha printer", H_AGENT) == {ticket["id"]}
    r = await client.patch(url, json={"subject": "Beta scanner"}, headers=H_AGENT)
    assert r.status_code == 200, r.text
    assert await found(client, "alpha printer", H_AGENT) == set()  # the old subject's word is gone ("alpha" exact)
    assert await found(client, "beta scanner", H_AGENT) == {ticket["id"]}
    assert await found(client, "printer", H_AGENT) == {ticket["id"]}  # still in the description
    assert await found(client, "alphabets", H_AGENT) == {ticket["id"]}  # the note's words stay
    again = await client.patch(url, json={"subject": "Gamma"}, headers=H_AGENT)
    assert again.status_code == 200
    assert await found(client, "beta printer", H_AGENT) == set()
    assert await found(client, "gamma", H_CHANNEL) == {ticket["id"]}
    macro = (await client.post("/v1/macros", json={"name": "rename", "actions": {"subject": "Delta"}},
                               headers=H_ADMIN)).json()
    applied = await client.post(f"{url}/macros/{macro['id']}", headers=H_ADMIN)
    assert applied.status_code == 200, applied.text
    assert await found(client, "gamma printer", H_AGENT) == set()
    assert await found(client, "delta", H_AGENT) == {ticket["id"]}
