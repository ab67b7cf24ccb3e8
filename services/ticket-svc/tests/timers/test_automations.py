"""Time-based automations end to end inside ticket-svc: tickets changed through the API, automations
saved through the rules' service, the timer scheduler and re-planning sweeper running, real
PostgreSQL. Durations are seconds written as fractions of an hour (2/3600 = 2 s)."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from helpdesk_common.identity import Principal
from helpdesk_common.testing import identity_headers, running_app, service_env
from ticket_svc.timers import automations as timer_automations
from ticket_svc.timers import scheduler

CHANNEL = Principal(kind="channel", id="key-1", channel="web")
AGENT = Principal(kind="user", id="u-agent", role="agent", name="Li Lei")
BODY = {"subject": "退款还没到 / refund not arrived", "description": "已经等了一周",
        "requester": {"name": "韩梅梅", "email": "meimei@example.com"}}
SECOND = 1 / 3600


@pytest.fixture
async def api(infra, ticket_db, monkeypatch):
    """ticket-svc's API without consumers and without its own scheduler: the test runs one."""
    service_env(monkeypatch, infra, "TICKET_", ticket_db)
    monkeypatch.setenv("TICKET_CONSUMERS_ENABLED", "false")
    monkeypatch.setenv("TICKET_TIMERS_ENABLED", "false")
    from ticket_svc.config import Settings
    from ticket_svc.main import create_app

    async with running_app(create_app(Settings())) as c:
        yield c


@pytest.fixture
async def timers(pool, ticket_db):
    sched = scheduler.TimerScheduler(pool, scheduler.asyncpg_dsn(ticket_db))
    sweeper = timer_automations.Sweeper(pool)
    sched.listen("ticket_automations_changed", sweeper.on_notify)
    async with scheduler.running(sched, sweeper.run()):
        yield sched


async def save_automation(pool, name: str, conditions: list[dict], actions: list[dict]) -> str:  # type: ignore[no-untyped-def]
    from ticket_svc.automation import service as rules
    from ticket_svc.automation.schemas import AutomationWrite

    body = AutomationWrite.model_validate({"name": name, "conditions": {"all": conditions}, "actions": actions})
    async with pool.acquire() as conn, conn.transaction():
        row = await rules.create(conn, rules.AUTOMATION, body, actor="user:u-admin")
    rules.invalidate()
    return str(row["id"])


async def new_ticket(api) -> dict:  # type: ignore[no-untyped-def]
    created = await api.post("/v1/tickets", json=BODY, headers=identity_headers(CHANNEL))
    assert created.status_code == 201, created.text
    return created.json()


async def patch(api, ticket_id: str, body: dict) -> dict:  # type: ignore[no-untyped-def]
    answer = await api.patch(f"/v1/tickets/{ticket_id}", json=body, headers=identity_headers(AGENT))
    assert answer.status_code == 200, answer.text
    return answer.json()


async def audit_by(pool, ticket_id: str, actor: str) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    """The changes ``actor`` made (the executor's run record, ``automation_fired``, left out)."""
    async with pool.acquire() as conn:
        return [dict(r) for r in await conn.fetch(
            "SELECT action, changes FROM ticket_audit WHERE ticket_id = $1::uuid AND actor = $2 "
            "AND action <> 'automation_fired' ORDER BY id",
            ticket_id, actor)]


async def notifications(pool, ticket_id: str) -> int:  # type: ignore[no-untyped-def]
    async with pool.acquire() as conn:
        return await conn.fetchval("SELECT count(*) FROM outbox WHERE key = $1 AND "
                                   "event_type = 'ticket.notification_requested'", ticket_id)


async def status_of(pool, ticket_id: str) -> str:  # type: ignore[no-untyped-def]
    async with pool.acquire() as conn:
        return await conn.fetchval("SELECT status FROM tickets WHERE id = $1::uuid", ticket_id)


async def eventually(probe, want, timeout: float = 30.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while (got := await probe()) != want:
        if time.monotonic() > deadline:
            raise AssertionError(f"wanted {want!r}, still {got!r} after {timeout} s")
        await asyncio.sleep(0.1)


def pending_for(seconds: float) -> list[dict]:
    return [{"field": "status", "op": "eq", "value": "pending"},
            {"field": "hours_since.status_changed", "op": "gte", "value": seconds * SECOND}]


REMIND = [{"type": "notify", "to": ["requester"], "subject": "Are you still there? / 还在吗？",
           "body": "We are waiting for your answer. 我们在等您的回复。"}]


async def test_pending_reminded_once_then_solved_then_closed(api, pool, timers) -> None:
    remind = await save_automation(pool, "remind", pending_for(2), REMIND)
    solve = await save_automation(pool, "solve", pending_for(4),
                                  [{"type": "set_field", "field": "status", "value": "solved"}])
    close = await save_automation(pool, "close", [
        {"field": "status", "op": "eq", "value": "solved"},
        {"field": "hours_since.solved", "op": "gte", "value": 2 * SECOND}],
        [{"type": "set_field", "field": "status", "value": "closed"}])
    ticket = await new_ticket(api)
    await patch(api, ticket["id"], {"status": "pending"})

    await eventually(lambda: notifications(pool, ticket["id"]), 1)
    await eventually(lambda: status_of(pool, ticket["id"]), "solved")
    await eventually(lambda: status_of(pool, ticket["id"]), "closed")
    assert await notifications(pool, ticket["id"]) == 1, "the reminder fired once in its episode"
    assert [a["changes"]["status"]["after"] for a in await audit_by(pool, ticket["id"], f"automation:{solve}")] == [
        "solved"]
    assert [a["changes"]["status"]["after"] for a in await audit_by(pool, ticket["id"], f"automation:{close}")] == [
        "closed"]
    async with pool.acquire() as conn:
        fired = await conn.fetch("SELECT ref, episode FROM ticket_timers WHERE ticket_id = $1::uuid "
                                 "AND fired_at IS NOT NULL ORDER BY ref", ticket["id"])
        pending = await conn.fetchval("SELECT count(*) FROM ticket_timers WHERE ticket_id = $1::uuid "
                                      "AND fired_at IS NULL", ticket["id"])
    assert sorted(r["ref"] for r in fired) == sorted([remind, solve, close]) and pending == 0


async def test_an_automation_due_in_two_seconds_acts_within_one_second(api, pool, timers) -> None:
    tag = await save_automation(pool, "tag after 2 s pending", pending_for(2),
                                [{"type": "add_tags", "tags": ["waited"]}])
    ticket = await new_ticket(api)
    await patch(api, ticket["id"], {"status": "pending"})
    await eventually(lambda: tagged(pool, ticket["id"]), True)
    async with pool.acquire() as conn:
        due = await conn.fetchval("SELECT status_changed_at + interval '2 seconds' FROM tickets WHERE id = $1::uuid",
                                  ticket["id"])
        acted = await conn.fetchval("SELECT at FROM ticket_audit WHERE ticket_id = $1::uuid AND actor = $2 "
                                    "AND action <> 'automation_fired'", ticket["id"], f"automation:{tag}")
    lag = (acted - due).total_seconds()
    assert 0 <= lag < 1.0, f"acted {lag:.3f} s after its due time"


async def tagged(pool, ticket_id: str) -> bool:  # type: ignore[no-untyped-def]
    async with pool.acquire() as conn:
        return "waited" in await conn.fetchval("SELECT tags FROM tickets WHERE id = $1::uuid", ticket_id)


async def test_a_new_episode_fires_again_and_a_left_episode_does_not(api, pool, timers) -> None:
    await save_automation(pool, "remind", pending_for(2), REMIND)
    ticket = await new_ticket(api)
    await patch(api, ticket["id"], {"status": "pending"})
    await eventually(lambda: notifications(pool, ticket["id"]), 1)
    await asyncio.sleep(1.0)
    assert await notifications(pool, ticket["id"]) == 1  # still pending, same episode: once

    await patch(api, ticket["id"], {"status": "open"})
    await patch(api, ticket["id"], {"status": "pending"})  # a new pending spell
    await eventually(lambda: notifications(pool, ticket["id"]), 2)

    await patch(api, ticket["id"], {"status": "open"})
    await patch(api, ticket["id"], {"status": "pending"})
    await patch(api, ticket["id"], {"status": "open"})  # left before it was due
    await asyncio.sleep(3.0)
    assert await notifications(pool, ticket["id"]) == 2


async def test_on_hold_past_a_date_reopens(api, pool, timers) -> None:
    reopen = await save_automation(pool, "reopen after hold", [
        {"field": "status", "op": "eq", "value": "on_hold"},
        {"field": "hours_since.custom_fields.hold_until", "op": "gte", "value": 0}],
        [{"type": "set_field", "field": "status", "value": "open"}])
    ticket = await new_ticket(api)
    hold_until = (datetime.now(UTC) + timedelta(seconds=2)).isoformat()
    await patch(api, ticket["id"], {"status": "on_hold", "custom_fields": {"hold_until": hold_until}})
    await eventually(lambda: status_of(pool, ticket["id"]), "open")
    assert len(await audit_by(pool, ticket["id"], f"automation:{reopen}")) == 1


async def test_saving_an_automation_plans_existing_tickets_and_deleting_drops_their_timers(api, pool, timers) -> None:
    from ticket_svc.automation import service as rules

    ticket = await new_ticket(api)
    await patch(api, ticket["id"], {"status": "pending"})  # pending before any automation exists
    remind = await save_automation(pool, "remind later", pending_for(3600), REMIND)

    async def pending_refs() -> list[str]:
        async with pool.acquire() as conn:
            return [r["ref"] for r in await conn.fetch(
                "SELECT ref FROM ticket_timers WHERE ticket_id = $1::uuid AND fired_at IS NULL", ticket["id"])]

    await eventually(pending_refs, [remind])  # the sweep planned it
    async with pool.acquire() as conn, conn.transaction():
        await rules.delete(conn, rules.AUTOMATION, rules_id(remind), if_match=None)
    rules.invalidate()
    await eventually(pending_refs, [])


def rules_id(value: str):  # type: ignore[no-untyped-def]
    import uuid

    return uuid.UUID(value)


async def test_start_up_sweeps_only_when_the_rules_changed(api, pool) -> None:
    await save_automation(pool, "remind", pending_for(3600), REMIND)
    for _ in range(3):
        await patch(api, (await new_ticket(api))["id"], {"status": "pending"})
    # never planned under these rules: the start-up sweep walks the open tickets
    assert await timer_automations.sweep(pool, only_if_stale=True) >= 3
    assert await timer_automations.sweep(pool, only_if_stale=True) == 0  # a restart: nothing changed
    assert await timer_automations.sweep(pool) == 0  # a notified replica: another one finished already

    second = await save_automation(pool, "remind again", pending_for(7200), REMIND)
    assert await timer_automations.sweep(pool, only_if_stale=True) >= 3
    async with pool.acquire() as conn:
        planned = await conn.fetchval("SELECT count(*) FROM ticket_timers WHERE ref = $1 AND fired_at IS NULL", second)
    assert planned >= 3
