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
