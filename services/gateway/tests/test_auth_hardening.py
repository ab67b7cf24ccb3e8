"""Sign-in hardening: bounded password hashing, per-address and per-account limits that a
forged X-Forwarded-For cannot dodge, sessions that end on logout, password reset and
deactivation, refresh tokens that work once, the last admin kept, and forwarding that survives
an upstream closing its keep-alive connection after a 500."""

from __future__ import annotations

import asyncio
import time
import uuid

import httpx
import pytest
from argon2 import PasswordHasher

from gateway.clientaddr import client_address, parse_networks

from .conftest import SIGNING_KEYS, new_gateway, serve, user_token

pytestmark = pytest.mark.timeout(180)

PASSWORD = "correct horse battery staple"


def from_address(url: str, address: str) -> httpx.AsyncClient:
    """A client whose connections leave from ``address`` (any 127.0.0.0/8 address is local)."""
    return httpx.AsyncClient(base_url=url, timeout=30, transport=httpx.AsyncHTTPTransport(local_address=address))


async def create_user(client: httpx.AsyncClient, admin: dict, *, role: str = "agent", email: str | None = None) -> dict:
    email = email or f"{uuid.uuid4().hex[:10]}@example.com"
    r = await client.post("/v1/users", json={"email": email, "password": PASSWORD, "role": role}, headers=admin)
    assert r.status_code == 201, r.text
    return r.json()


async def login(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> httpx.Response:
    return await client.post("/v1/auth/login", json={"email": email, "password": password})


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize(("peer", "xff", "trusted", "expected"), [
    ("203.0.113.7", "1.2.3.4", "", "203.0.113.7"),  # nothing trusted: the header is ignored
    ("127.0.0.1", "1.2.3.4", "", "127.0.0.1"),  # not even from loopback (uvicorn's default)
    ("10.0.0.5", "1.2.3.4", "10.0.0.0/8", "1.2.3.4"),
    ("10.0.0.5", "6.6.6.6, 1.2.3.4", "10.0.0.0/8", "1.2.3.4"),  # the left part is the client's to forge
    ("10.0.0.5", "1.2.3.4, 10.0.0.9", "10.0.0.0/8", "1.2.3.4"),  # skip our own proxies
    ("10.0.0.5", "10.0.0.8, 10.0.0.9", "10.0.0.0/8", "10.0.0.8"),
    ("10.0.0.5", "not-an-ip", "10.0.0.0/8", "10.0.0.5"),
    ("203.0.113.7", "1.2.3.4", "10.0.0.0/8", "203.0.113.7"),  # a peer that is no proxy of ours
    ("::1", "2001:db8::1", "::1", "2001:db8::1"),
    (None, None, "", "unknown"),
])
def test_client_address(peer, xff, trusted, expected):
    assert client_address(peer, xff, parse_networks(trusted)) == expected


async def test_failed_sign_ins_are_limited_per_address_whatever_the_e_mail(gateway_env, monkeypatch):
    monkeypatch.setenv("GATEWAY_LOGIN_FAILURES_PER_MINUTE_PER_ADDRESS", "5")
    async with serve(new_gateway()) as (url, _):
        async with from_address(url, "127.0.0.21") as attacker, from_address(url, "127.0.0.22") as other:
            answers = []
            for i in range(8):  # new e-mail every time, and a forged X-Forwarded-For
                r = await attacker.post("/v1/auth/login", json={"email": f"nobody{i}@example.com", "password": "x"},
                                        headers={"X-Forwarded-For": f"198.51.100.{i}"})
                answers.append(r.status_code)
            assert answers[:5] == [401] * 5 and set(answers[5:]) == {429}, answers
            limited = await attacker.post("/v1/auth/login", json={"email": "z@example.com", "password": "x"})
            assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
            assert limited.headers["content-type"].startswith("application/problem+json")
            assert (await other.post("/v1/auth/login", json={"email": "z@example.com", "password": "x"})).status_code == 401


async def test_forwarded_for_is_believed_from_a_configured_proxy_only(gateway_env, monkeypatch):
    monkeypatch.setenv("GATEWAY_LOGIN_FAILURES_PER_MINUTE_PER_ADDRESS", "2")
    monkeypatch.setenv("GATEWAY_TRUSTED_PROXIES", "127.0.0.31")
    async with serve(new_gateway()) as (url, _):
        async with from_address(url, "127.0.0.31") as proxy:
            for client_ip in ("198.51.100.1", "198.51.100.2"):
                codes = [(await proxy.post("/v1/auth/login", json={"email": f"a{i}@example.com", "password": "x"},
                                           headers={"X-Forwarded-For": client_ip})).status_code for i in range(3)]
                assert codes == [401, 401, 429], (client_ip, codes)


async def test_failed_sign_ins_are_limited_per_account_from_any_address(gateway_env, monkeypatch):
    monkeypatch.setenv("GATEWAY_LOGIN_FAILURES_PER_HOUR_PER_ACCOUNT", "3")
    monkeypatch.setenv("GATEWAY_LOGIN_FAILURES_PER_MINUTE_PER_ACCOUNT", "2")
    _, admin = user_token("admin")
    async with serve(new_gateway()) as (url, _), httpx.AsyncClient(base_url=url, timeout=30) as client:
        user = await create_user(client, admin)
        codes = []
        for i in range(5):  # all addresses together: the hourly account-wide bucket
            async with from_address(url, f"127.0.1.{i + 1}") as c:
                codes.append((await login(c, user["email"], "wrong password")).status_code)
        assert codes == [401, 401, 401, 429, 429]
        # one address against one account: the per-minute (account, address) bucket, before the hourly one
        other = await create_user(client, admin)
        async with from_address(url, "127.0.1.9") as c:
            codes = [(await login(c, other["email"], "wrong password")).status_code for _ in range(3)]
        assert codes == [401, 401, 429]
        # successful sign-ins never count: the same office address signs in many people
        for _ in range(5):
            other = await create_user(client, admin)
            assert (await login(client, other["email"])).status_code == 200


async def test_a_full_hashing_gate_answers_503_at_once(gateway_env, monkeypatch):
    monkeypatch.setenv("GATEWAY_PASSWORD_HASH_CONCURRENCY", "1")
    monkeypatch.setenv("GATEWAY_PASSWORD_HASH_MAX_WAITING", "1")
    monkeypatch.setenv("GATEWAY_ARGON2_TIME_COST", "8")  # slow enough that the requests overlap
    async with serve(new_gateway()) as (url, _):
        clients = [from_address(url, f"127.0.2.{i + 1}") for i in range(12)]
        try:
            answers = await asyncio.gather(*(
                c.post("/v1/auth/login", json={"email": f"flood{i}@example.com", "password": "x"})
                for i, c in enumerate(clients)))
        finally:
            await asyncio.gather(*(c.aclose() for c in clients))
        codes = sorted(r.status_code for r in answers)
        assert set(codes) <= {401, 503} and codes.count(503) >= 8, codes
        busy = next(r for r in answers if r.status_code == 503)
        assert busy.headers["retry-after"] == "1" and busy.headers["content-type"].startswith("application/problem+json")


async def test_passwords_use_owasp_argon2_parameters_and_old_hashes_are_upgraded(gateway_env):
    _, admin = user_token("admin")
    async with serve(new_gateway()) as (url, _), httpx.AsyncClient(base_url=url, timeout=30) as client:
        user = await create_user(client, admin)
        from sqlalchemy import text
        from sqlalchemy.ext.asyncio import create_async_engine

        db = create_async_engine(_db_url())
        try:
            async with db.begin() as conn:
                stored = await conn.scalar(text("SELECT password_hash FROM users WHERE id = :id"), {"id": user["id"]})
                assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$"), stored
                # a hash from argon2-cffi's old default (64 MiB) still signs in, and is upgraded
                legacy = PasswordHasher(memory_cost=65536, time_cost=3, parallelism=4).hash(PASSWORD)
                await conn.execute(text("UPDATE users SET password_hash = :h WHERE id = :id"),
                                   {"h": legacy, "id": user["id"]})
            assert (await login(client, user["email"])).status_code == 200
            async with db.connect() as conn:
                upgraded = await conn.scalar(text("SELECT password_hash FROM users WHERE id = :id"), {"id": user["id"]})
            assert upgraded.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
        finally:
            await db.dispose()


def _db_url() -> str:
    from .conftest import _USERS_DB

    return _USERS_DB["url"]


async def test_sessions_end_on_logout_reset_and_deactivation(gateway_env):
    _, admin = user_token("admin")
    async with serve(new_gateway()) as (url, _), httpx.AsyncClient(base_url=url, timeout=30) as client:
        user = await create_user(client, admin)
        first = (await login(client, user["email"])).json()
        second = (await login(client, user["email"])).json()
        assert set(first) == {"access_token", "token_type", "expires_in", "refresh_token"}
        me = await client.get("/v1/users/me", headers=bearer(first["access_token"]))
        assert me.status_code == 200 and me.json()["id"] == user["id"] and "password" not in me.text

        # logout ends this session only
        assert (await client.post("/v1/auth/logout", headers=bearer(first["access_token"]))).status_code == 204
        assert (await client.get("/v1/users/me", headers=bearer(first["access_token"]))).status_code == 401
        assert (await client.post("/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})).status_code == 401
        assert (await client.get("/v1/users/me", headers=bearer(second["access_token"]))).status_code == 200

        # an admin's password reset ends every session, and re-activation does not revive them
        reset = await client.patch(f"/v1/users/{user['id']}", json={"password": "another long password"}, headers=admin)
        assert reset.status_code == 200
        assert (await client.get("/v1/users/me", headers=bearer(second["access_token"]))).status_code == 401
        third = (await login(client, user["email"], "another long password")).json()
        assert (await client.patch(f"/v1/users/{user['id']}", json={"active": False}, headers=admin)).status_code == 200
        assert (await client.patch(f"/v1/users/{user['id']}", json={"active": True}, headers=admin)).status_code == 200
        assert (await client.get("/v1/users/me", headers=bearer(third["access_token"]))).status_code == 401
        assert (await client.post("/v1/auth/refresh", json={"refresh_token": third["refresh_token"]})).status_code == 401

        # logout everywhere
        a = (await login(client, user["email"], "another long password")).json()
        b = (await login(client, user["email"], "another long password")).json()
        everywhere = await client.post("/v1/auth/logout", json={"all_sessions": True}, headers=bearer(a["access_token"]))
        assert everywhere.status_code == 204
        assert (await client.get("/v1/users/me", headers=bearer(b["access_token"]))).status_code == 401


async def test_refresh_tokens_rotate_and_a_replayed_one_ends_the_session(gateway_env):
    _, admin = user_token("admin")
    async with serve(new_gateway()) as (url, _), httpx.AsyncClient(base_url=url, timeout=30) as client:
        user = await create_user(client, admin, role="supervisor")
        tokens = (await login(client, user["email"])).json()
        renewed = await client.post("/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
        assert renewed.status_code == 200, renewed.text
        renewed = renewed.json()
        assert renewed["refresh_token"] != tokens["refresh_token"] and renewed["access_token"] != tokens["access_token"]
        assert (await client.get("/v1/users", headers=bearer(renewed["access_token"]))).status_code == 200
        # the old refresh token again: someone copied it, so the whole session ends
        replay = await client.post("/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
        assert replay.status_code == 401
        assert (await client.get("/v1/users", headers=bearer(renewed["access_token"]))).status_code == 401
        assert (await client.post("/v1/auth/refresh", json={"refresh_token": renewed["refresh_token"]})).status_code == 401
        garbage = await client.post("/v1/auth/refresh", json={"refresh_token": "hdr_nope"})
        assert garbage.status_code == 401 and garbage.headers["content-type"].startswith("application/problem+json")


async def test_changing_ones_own_password(gateway_env):
    _, admin = user_token("admin")
    async with serve(new_gateway()) as (url, _), httpx.AsyncClient(base_url=url, timeout=30) as client:
        user = await create_user(client, admin)
        here = (await login(client, user["email"])).json()
        elsewhere = (await login(client, user["email"])).json()
        wrong = await client.post("/v1/users/me/password", json={"current_password": "nope", "new_password": "x" * 12},
                                  headers=bearer(here["access_token"]))
        assert wrong.status_code == 403
        short = await client.post("/v1/users/me/password", json={"current_password": PASSWORD, "new_password": "short"},
                                  headers=bearer(here["access_token"]))
        assert short.status_code == 422
        ok = await client.post("/v1/users/me/password",
                               json={"current_password": PASSWORD, "new_password": "a brand new passphrase"},
                               headers=bearer(here["access_token"]))
        assert ok.status_code == 204
        assert (await client.get("/v1/users/me", headers=bearer(here["access_token"]))).status_code == 200
        assert (await client.get("/v1/users/me", headers=bearer(elsewhere["access_token"]))).status_code == 401
        assert (await login(client, user["email"])).status_code == 401
        assert (await login(client, user["email"], "a brand new passphrase")).status_code == 200


async def test_the_last_admin_cannot_be_demoted_deactivated_or_deleted(gateway_env):
    async with serve(new_gateway()) as (url, _), httpx.AsyncClient(base_url=url, timeout=30) as client:
        from sqlalchemy import text
        from sqlalchemy.ext.asyncio import create_async_engine

        db = create_async_engine(_db_url())
        async with db.begin() as conn:  # a fresh database per test: make it admin-free first
            await conn.execute(text("UPDATE users SET active = false WHERE role = 'admin'"))
        await db.dispose()
        only_id, only = user_token("admin")
        for change in ({"role": "agent"}, {"active": False}):
            r = await client.patch(f"/v1/users/{only_id}", json=change, headers=only)
            assert r.status_code == 409 and r.json()["type"].endswith("/last-admin"), r.text
        assert (await client.delete(f"/v1/users/{only_id}", headers=only)).status_code == 409
        second = await create_user(client, only, role="admin")
        # two admins demoting each other at the same moment: one of them stays admin
        second_token = (await login(client, second["email"])).json()["access_token"]
        answers = await asyncio.gather(
            client.patch(f"/v1/users/{only_id}", json={"role": "agent"}, headers=bearer(second_token)),
            client.patch(f"/v1/users/{second['id']}", json={"role": "agent"}, headers=only),
        )
        # the loser either hits the guard (409) or is no longer an admin by then (403)
        codes = sorted(r.status_code for r in answers)
        assert codes in ([200, 403], [200, 409]), [r.text for r in answers]
        db = create_async_engine(_db_url())
        async with db.connect() as conn:
            assert await conn.scalar(text("SELECT count(*) FROM users WHERE role = 'admin' AND active")) == 1
        await db.dispose()
        survivor = bearer(second_token) if answers[0].status_code == 200 else only
        assert (await client.delete(f"/v1/users/{uuid.uuid4()}", headers=survivor)).status_code == 404


@pytest.mark.parametrize("sub", ["not-a-uuid", "", "1; DROP TABLE users"])
async def test_a_token_whose_subject_is_not_a_user_id_is_401(gateway_env, sub):
    now = int(time.time())
    forged = SIGNING_KEYS.sign({"sub": sub, "sid": str(uuid.uuid4()), "role": "admin", "iss": "helpdesk-local",
                                "aud": "helpdesk-api", "iat": now, "exp": now + 60})
    async with serve(new_gateway()) as (url, _), httpx.AsyncClient(base_url=url, timeout=30) as client:
        r = await client.get("/v1/users", headers=bearer(forged))
        assert r.status_code == 401 and r.headers["content-type"].startswith("application/problem+json")


async def test_unknown_api_keys_are_limited_per_address(gateway_env, monkeypatch):
    monkeypatch.setenv("GATEWAY_AUTH_FAILURES_PER_MINUTE_PER_ADDRESS", "5")
    async with serve(new_gateway()) as (url, _):
        async with from_address(url, "127.0.0.41") as prober, from_address(url, "127.0.0.42") as other:
            codes = [(await prober.get("/v1/tickets", headers=bearer(f"hdk_{uuid.uuid4().hex}"))).status_code
                     for _ in range(7)]
            assert codes == [401] * 5 + [429] * 2
            assert (await other.get("/v1/tickets", headers=bearer("hdk_x"))).status_code == 401


async def test_an_upstream_closing_its_connection_after_a_500_loses_no_other_request(gateway_env, ticket_svc):
    """uvicorn closes a keep-alive connection after an unhandled error; the next request the
    pool puts on it must be re-sent on a fresh connection, not answered 502."""
    _, agent = user_token("agent")
    async with serve(new_gateway()) as (url, _), httpx.AsyncClient(base_url=url, timeout=30) as client:
        codes = []
        for _ in range(10):
            codes.append((await client.get("/v1/tickets/explode", headers=agent)).status_code)
            codes.append((await client.post("/v1/tickets", json={"subject": "x"}, headers=agent)).status_code)
        assert codes[0::2] == [500] * 10
        assert codes[1::2] == [299] * 10, codes
