"""User management: admins create users (argon2 hashes), users log in, and a deactivation or a
role change applies to tokens already issued."""

from __future__ import annotations

import httpx
import pytest

from .conftest import new_gateway, serve, user_token

pytestmark = pytest.mark.timeout(120)


async def test_create_login_change_role_and_deactivate(gateway_env, ticket_svc):
    _, admin = user_token("admin")
    _, agent = user_token("agent")
    async with serve(new_gateway()) as (url, _), httpx.AsyncClient(base_url=url, timeout=30) as client:
        body = {"email": "Wang.Fang@Example.com", "name": "王芳", "role": "agent", "password": "correct horse battery"}
        assert (await client.post("/v1/users", json=body, headers=agent)).status_code == 403
        created = await client.post("/v1/users", json=body, headers=admin)
        assert created.status_code == 201, created.text
        user = created.json()
        assert user["email"] == "wang.fang@example.com" and user["role"] == "agent" and "password" not in user
        assert (await client.post("/v1/users", json=body, headers=admin)).status_code == 409
        short = await client.post("/v1/users", json={**body, "email": "x@example.com", "password": "short"}, headers=admin)
        assert short.status_code == 422

        login = await client.post("/v1/auth/login", json={"email": "wang.fang@example.com", "password": body["password"]})
        assert login.status_code == 200
        token = {"Authorization": f"Bearer {login.json()['access_token']}"}
        assert (await client.get("/v1/users", headers=token)).status_code == 403  # agents may not list users

        promoted = await client.patch(f"/v1/users/{user['id']}", json={"role": "supervisor"}, headers=admin)
        assert promoted.status_code == 200 and promoted.json()["role"] == "supervisor"
        listed = await client.get("/v1/users", headers=token)  # the same token, now a supervisor
        assert listed.status_code == 200 and user["id"] in {u["id"] for u in listed.json()}

        off = await client.patch(f"/v1/users/{user['id']}", json={"active": False}, headers=admin)
        assert off.status_code == 200 and off.json()["active"] is False
        assert (await client.get("/v1/users", headers=token)).status_code == 401
        again = await client.post("/v1/auth/login", json={"email": "wang.fang@example.com", "password": body["password"]})
        assert again.status_code == 401
        assert (await client.patch(f"/v1/users/{user['id']}", json={"role": None}, headers=admin)).status_code == 422
