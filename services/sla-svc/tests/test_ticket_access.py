"""A ticket's SLA is shown to whoever may read the ticket, and to nobody else: the authorization
matrix (tests/security) found ``GET /v1/sla/tickets/{id}`` and ``.../timers`` answering an agent
of another team, who gets 404 for the same ticket from ticket-svc. sla-svc now asks ticket-svc
(helpdesk_common.ticket_access); here the real ticket-svc runs on 127.0.0.1 on its own database."""

from __future__ import annotations

import uuid

import pytest

from helpdesk_common.devstack import free_port
from helpdesk_common.identity import Principal
from helpdesk_common.testing import identity_headers, running_app, service_env, ticket_svc_with_two_teams

ADMIN = Principal(kind="user", id=str(uuid.uuid4()), role="admin")
SUPERVISOR = Principal(kind="user", id=str(uuid.uuid4()), role="supervisor")
AGENT_A = Principal(kind="user", id=str(uuid.uuid4()), role="agent")
AGENT_B = Principal(kind="user", id=str(uuid.uuid4()), role="agent")
CHANNEL = Principal(kind="channel", id=str(uuid.uuid4()), channel="api")


@pytest.fixture
async def ticket_svc(infra, monkeypatch):
    async with ticket_svc_with_two_teams(infra, monkeypatch, agent_a=AGENT_A.id, agent_b=AGENT_B.id) as served:
        yield served


async def _sla_api(infra, monkeypatch, ticket_url: str):
    service_env(monkeypatch, infra, "SLA_", infra.new_database("sla_svc"))
    monkeypatch.setenv("SLA_CONSUMERS_ENABLED", "false")
    monkeypatch.setenv("SLA_RELAY_ENABLED", "false")
    monkeypatch.setenv("SLA_TICKET_URL", ticket_url)
    monkeypatch.setenv("SLA_TICKET_TIMEOUT_S", "10")  # a loaded test machine
    from sla_svc.config import Settings
    from sla_svc.main import create_app

    return running_app(create_app(Settings()))


@pytest.mark.parametrize("path", ["/v1/sla/tickets/{id}", "/v1/sla/tickets/{id}/timers"])
async def test_another_teams_agent_gets_404_like_from_ticket_svc(infra, monkeypatch, ticket_svc, path):
    url, ticket_id = ticket_svc
    async with await _sla_api(infra, monkeypatch, url) as sla:
        target = path.format(id=ticket_id)
        for reader in (ADMIN, SUPERVISOR, AGENT_A):
            r = await sla.get(target, headers=identity_headers(reader))
            assert r.status_code == 200, (reader.role, r.text)
        hidden = await sla.get(target, headers=identity_headers(AGENT_B))
        assert hidden.status_code == 404, hidden.text
        assert hidden.headers["content-type"] == "application/problem+json"
        # an id ticket-svc does not know is the same 404: existence is not told apart
        unknown = await sla.get(path.format(id=uuid.uuid4()), headers=identity_headers(AGENT_A))
        assert unknown.status_code == 404 and unknown.json()["type"] == hidden.json()["type"]
        assert (await sla.get(target, headers=identity_headers(CHANNEL))).status_code == 403


async def test_no_answer_from_ticket_svc_is_a_503_for_agents_only(infra, monkeypatch):
    async with await _sla_api(infra, monkeypatch, f"http://127.0.0.1:{free_port()}") as sla:
        target = f"/v1/sla/tickets/{uuid.uuid4()}"
        r = await sla.get(target, headers=identity_headers(AGENT_A))
        assert r.status_code == 503 and r.headers["retry-after"] == "5", r.text
        assert (await sla.get(target, headers=identity_headers(SUPERVISOR))).status_code == 200
