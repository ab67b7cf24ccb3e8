"""The ``editor`` role (issue 14): admins create editors, who sign in and write the knowledge base
(/v1/kb, kb-svc decides) and get nothing an agent, supervisor or admin has elsewhere."""

from __future__ import annotations

import httpx
import pytest

from .conftest import new_gateway, serve, user_token

pytestmark = pytest.mark.timeout(120)


async def test_an_admin_creates_an_editor_who_is_refused_everywhere_but_the_knowledge_base(gateway_env, ticket_svc):
    _, admin = user_token("admin")
    async with serve(new_gateway()) as (url, _), httpx.AsyncClient(base_url=url, timeout=30) as client:
        body = {"email": "editor@example.com", "name": "李编辑", "role": "editor", "password": "correct horse battery"}
        created = await client.post("/v1/users", json=body, headers=admin)
        assert created.status_code == 201, created.text
        assert created.json()["role"] == "editor"
        login = await client.post("/v1/auth/login", json={"email": body["email"], "password": body["password"]})
        assert login.status_code == 200, login.text
        editor = {"Authorization": f"Bearer {login.json()['access_token']}"}

        me = await client.get("/v1/users/me", headers=editor)
        assert me.status_code == 200 and me.json()["role"] == "editor"
        # the gateway's admin endpoints
        assert (await client.get("/v1/users", headers=editor)).status_code == 403
        assert (await client.post("/v1/users", json={**body, "email": "x@example.com"}, headers=editor)).status_code == 403
        assert (await client.get("/v1/api-keys", headers=editor)).status_code == 403
        # the live stream of ticket events is the agents'
        assert (await client.post("/v1/stream/tickets", headers=editor)).status_code == 403
        # no forwarded route but /v1/kb: the ticket service never sees the request
        before = len(ticket_svc.forwarded)
        for method, path in (("GET", "/v1/tickets"), ("POST", "/v1/tickets"), ("GET", "/v1/agents"),
                             ("GET", "/v1/macros"), ("GET", "/v1/customers"), ("GET", "/v1/tickets/kb")):
            answer = await client.request(method, path, headers=editor, json={} if method == "POST" else None)
            assert answer.status_code == 403, (method, path, answer.text)
            assert answer.headers["content-type"].startswith("application/problem+json")
        assert len(ticket_svc.forwarded) == before

        # the same paths are forwarded for an agent (the refusal is the role's, not the path's)
        _, agent = user_token("agent")
        assert (await client.get("/v1/tickets", headers=agent)).status_code == 299  # the stand-in's answer
        assert len(ticket_svc.forwarded) == before + 1

        # an editor made an agent gets the agent's rights with the same token
        promoted = await client.patch(f"/v1/users/{created.json()['id']}", json={"role": "agent"}, headers=admin)
        assert promoted.status_code == 200
        assert (await client.get("/v1/tickets", headers=editor)).status_code == 299


async def test_an_unknown_role_is_refused(gateway_env, ticket_svc):
    _, admin = user_token("admin")
    async with serve(new_gateway()) as (url, _), httpx.AsyncClient(base_url=url, timeout=30) as client:
        body = {"email": "boss@example.com", "role": "owner", "password": "correct horse battery"}
        assert (await client.post("/v1/users", json=body, headers=admin)).status_code == 422
