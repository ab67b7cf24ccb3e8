"""An article's links to a ticket are read and changed only by whoever may read the ticket: the
authorization matrix (tests/security) found an agent of another team listing, adding and removing
links of a ticket that ticket-svc hides from them (404). kb-svc now asks ticket-svc
(helpdesk_common.ticket_access); here the real ticket-svc runs on 127.0.0.1 on its own database."""

from __future__ import annotations

import uuid

import pytest

from helpdesk_common.identity import Principal
from helpdesk_common.testing import identity_headers, ticket_svc_with_two_teams

from ..conftest import AGENT_ID
from .conftest import publish

OTHER_AGENT = identity_headers(Principal(kind="user", id="u-agent-2", role="agent"))


@pytest.fixture
async def kb_with_tickets(infra, monkeypatch, kb_db):
    async with ticket_svc_with_two_teams(infra, monkeypatch, agent_a=AGENT_ID, agent_b="u-agent-2") as served:
        url, ticket_id = served
        monkeypatch.setenv("KB_TICKET_URL", url)
        monkeypatch.setenv("KB_TICKET_TIMEOUT_S", "10")  # a loaded test machine
        from helpdesk_common.testing import running_app, service_env

        service_env(monkeypatch, infra, "KB_", kb_db)
        monkeypatch.setenv("KB_CONSUMERS_ENABLED", "false")
        monkeypatch.setenv("KB_RELAY_ENABLED", "false")
        from kb_svc.config import Settings
        from kb_svc.main import create_app

        async with running_app(create_app(Settings())) as client:
            yield client, ticket_id


async def test_only_readers_of_the_ticket_see_and_change_its_links(kb_with_tickets, headers):
    kb, ticket = kb_with_tickets
    article = await publish(kb, headers["editor"], title="如何申请退款", body="<p>退款</p>")
    links = f"/v1/kb/articles/{article['id']}/links"
    added = await kb.post(links, json={"ticket_id": ticket}, headers=headers["agent"])
    assert added.status_code == 201, added.text
    for method, path, body in (("POST", links, {"ticket_id": ticket}), ("DELETE", f"{links}/{ticket}", None),
                               ("GET", "/v1/kb/links", None)):
        for caller in (OTHER_AGENT, headers["editor"]):  # editors reach no ticket at all
            r = await kb.request(method, path, json=body, headers=caller,
                                 params={"ticket_id": ticket} if method == "GET" else None)
            assert r.status_code == 404, (method, r.text)
            assert r.headers["content-type"] == "application/problem+json"
    listed = await kb.get("/v1/kb/links", params={"ticket_id": ticket}, headers=headers["agent"])
    assert [item["article_id"] for item in listed.json()["items"]] == [article["id"]]  # nothing was removed
    unknown = await kb.get("/v1/kb/links", params={"ticket_id": str(uuid.uuid4())}, headers=headers["agent"])
    assert unknown.status_code == 404  # an id ticket-svc does not know: the same answer
    assert (await kb.get("/v1/kb/links", params={"ticket_id": ticket}, headers=headers["supervisor"])).status_code == 200
