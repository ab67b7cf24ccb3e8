"""Users are announced to the other services (issue 9, also-fix: "creating a user does not create
an agent profile"): every change of a user's name, role or state writes a ``user.*`` event to the
gateway's outbox in the transaction of the change, with a version that grows with each change,
and the relay publishes it on ``users.events``; creating or changing a user also provisions the
agent profile in ticket-svc at once (the admin waits for it), and a ticket-svc that is down
delays the profile, never the user."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from helpdesk_common.testing import wait_for

from .conftest import new_gateway, serve, user_token

pytestmark = pytest.mark.timeout(120)


async def outbox_rows(db_url: str, key: str | None = None) -> list[dict[str, Any]]:
    engine = create_async_engine(db_url)
    try:
        async with engine.connect() as conn:
            rows = (await conn.execute(text(
                "SELECT event_type, topic, key, payload, sent_at FROM outbox ORDER BY seq"))).all()
    finally:
        await engine.dispose()
    return [{"type": r.event_type, "topic": r.topic, "key": r.key, "raw": bytes(r.payload),
             "event": orjson.loads(r.payload), "sent": r.sent_at is not None}
            for r in rows if key is None or r.key == key]


def summary(rows: list[dict[str, Any]]) -> list[tuple]:
    return [(r["type"], r["event"]["data"]["version"], r["event"]["data"]["display_name"],
             r["event"]["data"]["role"], r["event"]["data"]["active"]) for r in rows]


async def test_every_user_change_is_an_event_in_the_outbox_with_a_growing_version(gateway_env, gateway_db,
                                                                                   ticket_svc):
    admin_id, admin = user_token("admin")
    async with serve(new_gateway()) as (url, _), httpx.AsyncClient(base_url=url, timeout=30) as client:
        body = {"email": "Li.Na@Example.com", "name": "李娜", "role": "agent", "password": "correct horse battery"}
        created = await client.post("/v1/users", json=body, headers=admin)
        assert created.status_code == 201, created.text
        user_id = created.json()["id"]
        # the agent profile was provisioned before the answer, with the admin's signed identity
        assert created.json()["agent_profile"] == "ready"
        assert [(p["user_id"], p["caller"], p["event"]["type"]) for p in ticket_svc.provisioned] == [
            (user_id, f"user:{admin_id}", "user.created")]

        steps = [({"name": "Li Na"}, 200), ({"password": "another long password"}, 200),  # no event
                 ({"role": "agent"}, 200),  # not a change: no event
                 ({"role": "supervisor"}, 200)]
        for patch, status in steps:
            r = await client.patch(f"/v1/users/{user_id}", json=patch, headers=admin)
            assert r.status_code == status, (patch, r.text)
        assert (await client.delete(f"/v1/users/{user_id}", headers=admin)).status_code == 204
        back = await client.patch(f"/v1/users/{user_id}", json={"active": True}, headers=admin)
        assert back.status_code == 200 and back.json()["agent_profile"] == "ready"

        rows = await outbox_rows(gateway_db, key=user_id)
        assert summary(rows) == [
            ("user.created", 1, "李娜", "agent", True),
            ("user.updated", 2, "Li Na", "agent", True),
            ("user.updated", 3, "Li Na", "supervisor", True),
            ("user.updated", 4, "Li Na", "supervisor", False),
            ("user.updated", 5, "Li Na", "supervisor", True),
        ]
        assert {r["topic"] for r in rows} == {"users.events"}
        # the sign-in address, lower-cased, for notify-svc's notifications to agents
        assert {r["event"]["data"]["email"] for r in rows} == {"li.na@example.com"}
        assert [r["event"]["data"].get("changes") for r in rows[1:]] == [
            {"display_name": {"before": "李娜", "after": "Li Na"}},
            {"role": {"before": "agent", "after": "supervisor"}},
            {"active": {"before": True, "after": False}},
            {"active": {"before": False, "after": True}},
        ]
        assert all(r["event"]["subject"] == user_id and r["event"]["source"] == "gateway" for r in rows)
        assert all(r["event"]["data"]["actor"] == f"user:{admin_id}" for r in rows)
        # no credential; the address only in ``email`` (for notify-svc), nowhere else
        assert not any(b"argon2" in r["raw"] or b"password" in r["raw"] for r in rows)
        assert all(r["raw"].lower().count(b"example.com") == 1 for r in rows)
        # the same events went to ticket-svc synchronously, in the same order
        assert [p["event"]["data"]["version"] for p in ticket_svc.provisioned] == [1, 2, 3, 4, 5]
        assert [p["event"]["id"] for p in ticket_svc.provisioned] == [r["event"]["id"] for r in rows]

        # and the relay publishes them (the gateway has an outbox relay now)
        async def all_sent() -> bool:
            return all(r["sent"] for r in await outbox_rows(gateway_db, key=user_id))

        await wait_for(all_sent)


async def test_a_user_is_created_while_ticket_svc_is_down_and_the_event_provisions_it_later(
        gateway_env, gateway_db, ticket_svc):
    _, admin = user_token("admin")
    ticket_svc.down = True
    async with serve(new_gateway()) as (url, _), httpx.AsyncClient(base_url=url, timeout=30) as client:
        created = await client.post("/v1/users", json={"email": "down@example.com", "password": "correct horse battery"},
                                    headers=admin)
        assert created.status_code == 201, created.text
        assert created.json()["agent_profile"] == "pending"
    rows = await outbox_rows(gateway_db, key=created.json()["id"])
    assert summary(rows) == [("user.created", 1, None, "agent", True)]


async def test_a_failed_change_writes_no_event(gateway_env, gateway_db, ticket_svc):
    admin_id, admin = user_token("admin")
    async with serve(new_gateway()) as (url, _), httpx.AsyncClient(base_url=url, timeout=30) as client:
        # the last admin cannot demote themselves: 409, and no event for a change that did not happen
        r = await client.patch(f"/v1/users/{admin_id}", json={"role": "agent"}, headers=admin)
        assert r.status_code == 409
        assert (await client.patch(f"/v1/users/{uuid.uuid4()}", json={"name": "x"}, headers=admin)).status_code == 404
        body = {"email": "twice@example.com", "password": "correct horse battery"}
        assert (await client.post("/v1/users", json=body, headers=admin)).status_code == 201
        assert (await client.post("/v1/users", json=body, headers=admin)).status_code == 409
    assert [r["type"] for r in await outbox_rows(gateway_db)] == ["user.created"]


async def test_bootstrap_announces_the_dev_admin_once(gateway_env, gateway_db):
    from gateway.bootstrap import bootstrap
    from gateway.config import get_settings

    get_settings.cache_clear()
    try:
        for _ in range(2):  # a restart runs it again: no second event when nothing changed
            await bootstrap(admin_email="Boot@Example.com", admin_password="pw", channel_api_key="hdk_dev_api_0123")
        engine = create_async_engine(gateway_db)
        async with engine.begin() as conn:  # someone deactivated the admin (version bumped with it)
            await conn.execute(text("UPDATE users SET active = false, version = version + 1 "
                                    "WHERE email = 'boot@example.com'"))
        await engine.dispose()
        await bootstrap(admin_email="Boot@Example.com", admin_password="pw", channel_api_key="hdk_dev_api_0123")
    finally:
        get_settings.cache_clear()
    assert summary(await outbox_rows(gateway_db)) == [
        ("user.created", 1, "Dev admin", "admin", True),
        ("user.updated", 3, "Dev admin", "admin", True),
    ]


async def test_users_from_before_the_outbox_are_announced_by_the_migration(infra):
    """Migration 0004 creates the outbox and writes one ``user.created`` per existing user, so
    ticket-svc learns the users it had never heard of (and their agent profiles stay usable);
    0005 announces their addresses at the same version (ticket-svc ignores it; notify-svc takes
    the address)."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    from alembic import command

    from helpdesk_common.migrate import alembic_config, ensure_database

    url = f"{infra.db_base}/t_gateway_{uuid.uuid4().hex[:10]}"

    def migrate(revision: str) -> None:
        command.upgrade(alembic_config("gateway", url), revision)

    with ThreadPoolExecutor(1) as pool:
        pool.submit(lambda: (asyncio.run(ensure_database(url)), migrate("0003"))).result()
    engine = create_async_engine(url)
    old = [uuid.uuid4(), uuid.uuid4()]
    async with engine.begin() as conn:
        for i, (uid, active) in enumerate(zip(old, (True, False))):
            await conn.execute(text("INSERT INTO users (id, email, name, password_hash, role, active) "
                                    "VALUES (:id, :email, :name, 'x', 'agent', :active)"),
                               {"id": uid, "email": f"old{i}@example.com", "name": f"Old {i}", "active": active})
    await engine.dispose()
    with ThreadPoolExecutor(1) as pool:
        pool.submit(migrate, "head").result()
    rows = await outbox_rows(url)
    assert sorted((r["key"], *summary([r])[0]) for r in rows) == sorted([
        (str(old[0]), "user.created", 1, "Old 0", "agent", True),
        (str(old[1]), "user.created", 1, "Old 1", "agent", False),
        # migration 0005: each once more at the same version, now with the address (for notify-svc)
        (str(old[0]), "user.updated", 1, "Old 0", "agent", True),
        (str(old[1]), "user.updated", 1, "Old 1", "agent", False),
    ])
    assert sorted((r["event"]["data"].get("email"), r["event"]["data"].get("changes")) for r in rows
                  if r["type"] == "user.updated") == [("old0@example.com", {}), ("old1@example.com", {})]


async def test_models_match_the_migrated_schema(gateway_db):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    def diff(sync_conn: Any) -> list:
        from gateway.auth import models as _auth  # noqa: F401
        from gateway.db import metadata
        from gateway.stream import models as _stream  # noqa: F401

        return compare_metadata(MigrationContext.configure(sync_conn, opts={"compare_type": True}), metadata)

    engine = create_async_engine(gateway_db)
    try:
        async with engine.connect() as conn:
            assert await conn.run_sync(diff) == []
    finally:
        await engine.dispose()
