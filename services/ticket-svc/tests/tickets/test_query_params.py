"""Unknown query parameters are refused, as on customers (issue 9, "Also fix" 7): a mistyped
filter used to list every ticket as if it were not there."""

import pytest

from helpdesk_common.identity import Principal
from helpdesk_common.testing import identity_headers

AGENT = identity_headers(Principal(kind="user", id="u-agent", role="agent"))
CHANNEL = identity_headers(Principal(kind="channel", id="k", channel="web"))


@pytest.mark.parametrize(("path", "name"), [
    ("/v1/tickets?stauts=open", "stauts"),
    ("/v1/tickets?status=open&assignee=me", "assignee"),
    ("/v1/tickets?tags=vip", "tags"),  # the filter is "tag"
    ("/v1/tickets/00000000-0000-0000-0000-000000000001?expand=messages", "expand"),
    ("/v1/teams?page=2", "page"),
    ("/v1/statuses?active=true", "active"),
])
async def test_unknown_query_parameters_are_422(client, path, name):
    r = await client.get(path, headers=AGENT)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert [(e["field"], e["code"]) for e in r.json()["errors"]] == [(f"query.{name}", "extra_forbidden")]


async def test_declared_parameters_still_work(client):
    created = await client.post("/v1/tickets", json={"subject": "Printer", "requester": {"email": "a@example.com"}},
                                headers=CHANNEL)
    r = await client.get("/v1/tickets?status=new&tag=x&limit=5&sort=updated&q=printer", headers=AGENT)
    assert r.status_code == 200, r.text
    r = await client.get(f"/v1/tickets/{created.json()['id']}/messages?limit=10", headers=AGENT)
    assert r.status_code == 200, r.text


async def test_tickets_by_number(client):
    """``?number=`` (repeatable, what a Zendesk-style integer id resolves through): those tickets
    and no others; a number out of the 64-bit range or below 1 is a 422."""
    made = [(await client.post("/v1/tickets", json={"subject": f"Printer {n}", "requester": {"email": "a@example.com"}},
                               headers=CHANNEL)).json() for n in range(3)]
    numbers = [t["number"] for t in made]
    r = await client.get(f"/v1/tickets?number={numbers[0]}&number={numbers[2]}", headers=AGENT)
    assert r.status_code == 200, r.text
    assert sorted(t["number"] for t in r.json()["items"]) == [numbers[0], numbers[2]]
    assert (await client.get(f"/v1/tickets?number={max(numbers) + 1000}", headers=AGENT)).json()["items"] == []
    for bad in ("0", "-1", str(2**63), "x"):
        r = await client.get(f"/v1/tickets?number={bad}", headers=AGENT)
        assert r.status_code == 422 and r.json()["errors"][0]["field"].startswith("query.number"), (bad, r.text)
