"""A time-based automation fires exactly once across a killed and restarted ticket-svc process.

ticket-svc runs as a real uvicorn subprocess with its scheduler; the automation's action is a real
write through the executor (tags through ``changes.apply``, its audit and events). The process is
killed (SIGKILL) while the timers are firing and started again: every ticket gets the automation's
change once, none twice, none never."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from helpdesk_common.devstack import free_port
from helpdesk_common.identity import Principal
from helpdesk_common.testing import identity_headers, running_app, service_env

CHANNEL = Principal(kind="channel", id="key-1", channel="web")
TICKETS = 120
SPREAD_S = 10.0


@pytest.fixture
async def api(infra, ticket_db, monkeypatch):
    service_env(monkeypatch, infra, "TICKET_", ticket_db)
    monkeypatch.setenv("TICKET_CONSUMERS_ENABLED", "false")
    monkeypatch.setenv("TICKET_TIMERS_ENABLED", "false")  # only the subprocess fires
    from ticket_svc.config import Settings
    from ticket_svc.main import create_app

    async with running_app(create_app(Settings())) as c:
        yield c


def start_service(port: int) -> subprocess.Popen:
    env = {**os.environ, "TICKET_CONSUMERS_ENABLED": "false", "TICKET_TIMERS_ENABLED": "true",
           "LOG_LEVEL": "WARNING"}
    return subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "ticket_svc.main:create_app", "--host", "127.0.0.1",
         "--port", str(port), "--no-access-log"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


async def wait_healthy(port: int, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            assert proc.poll() is None, "ticket-svc exited"
            try:
                if (await client.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.2)
    raise TimeoutError("ticket-svc did not start")


async def applied(pool, ref: str) -> int:  # type: ignore[no-untyped-def]
    async with pool.acquire() as conn:
        return await conn.fetchval("SELECT count(*) FROM ticket_audit WHERE actor = $1 AND action <> 'automation_fired'",
                                   f"automation:{ref}")


async def test_automation_fires_once_per_ticket_across_a_killed_ticket_svc(api, pool) -> None:
    from ticket_svc.automation import service as rules
    from ticket_svc.automation.schemas import AutomationWrite

    ids = []
    for i in range(TICKETS):
        created = await api.post("/v1/tickets", headers=identity_headers(CHANNEL), json={
            "subject": f"跟进 {i} / follow up {i}", "description": "x",
            "requester": {"name": "Wang", "email": f"w{i}@example.com"}})
        assert created.status_code == 201, created.text
        ids.append(created.json()["id"])
    port = free_port()
    # The service starts first and the timeline is set once it answers: the timers are due some
    # seconds from then whatever the runner's start-up time (on a slow CI runner the process took
    # longer than a fixed lead, and every timer was due, and fired, before the kill could land).
    # The automation is created last: its NOTIFY, or the start-up sweep if that runs later
    # (the plan fingerprint is then stale), plans every open ticket under it.
    proc = start_service(port)
    try:
        await wait_healthy(port, proc)
        start = datetime.now(UTC) + timedelta(seconds=3)
        async with pool.acquire() as conn:  # each ticket's nudge instant, one after another over SPREAD_S
            await conn.execute(
                "UPDATE tickets t SET custom_fields = t.custom_fields || jsonb_build_object('nudge_at', "
                "to_char(($2::timestamptz + (x.i * $3::float8) * interval '1 second') AT TIME ZONE 'UTC', "
                "'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')) "
                "FROM unnest($1::uuid[]) WITH ORDINALITY AS x(id, i) WHERE t.id = x.id",
                ids, start, SPREAD_S / TICKETS)
        body = AutomationWrite.model_validate({
            "name": "nudge", "conditions": {"all": [{"field": "hours_since.custom_fields.nudge_at", "op": "gte",
                                                     "value": 0}]},
            "actions": [{"type": "add_tags", "tags": ["nudged"]}]})
        async with pool.acquire() as conn, conn.transaction():
            ref = str((await rules.create(conn, rules.AUTOMATION, body, actor="user:u-admin"))["id"])
        deadline = time.monotonic() + 60
        while (n := await applied(pool, ref)) < TICKETS // 5:
            assert time.monotonic() < deadline, f"only {n} fired"
            await asyncio.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)
        await asyncio.to_thread(proc.wait, 10)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    before_restart = await applied(pool, ref)
    assert before_restart < TICKETS, "the kill must land while timers remain"

    proc = start_service(port)
    try:
        await wait_healthy(port, proc)
        deadline = time.monotonic() + 90
        while await applied(pool, ref) < TICKETS:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)  # anything fired twice would show now
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.to_thread(proc.wait, 20)
    async with pool.acquire() as conn:
        per_ticket = await conn.fetch(
            "SELECT t.id, t.tags, (SELECT count(*) FROM ticket_audit a WHERE a.ticket_id = t.id AND a.actor = $2 "
            "AND a.action <> 'automation_fired') AS n FROM tickets t WHERE t.id = ANY($1::uuid[])",
            ids, f"automation:{ref}")
        timers = await conn.fetch("SELECT fired_at FROM ticket_timers WHERE kind = 'automation' AND ref = $1", ref)
    assert sorted(r["n"] for r in per_ticket) == [1] * TICKETS, "each ticket changed exactly once"
    assert all("nudged" in r["tags"] for r in per_ticket)
    assert len(timers) == TICKETS and all(t["fired_at"] is not None for t in timers)
