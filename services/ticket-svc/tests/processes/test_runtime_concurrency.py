"""Decisions racing on one step, and the clock: expiry through the ticket timers."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import text

from helpdesk_common.db import create_raw_pool
from helpdesk_common.identity import Principal

from .test_runtime import ADMIN, as_, decide, events_of, new_ticket, process_of

APPROVERS = [Principal(kind="user", id=f"ap{i:02d}", role="supervisor") for i in range(20)]


def one_approval(rule: str, **settings: Any) -> dict[str, Any]:
    return {"steps": [
        {"key": "approval", "name": "Approval", "kind": "approval", "rule": rule,
         "approvers": {"users": [p.id for p in APPROVERS]}, **settings},
        {"key": "work", "name": "Work", "kind": "task"},
    ]}


async def test_20_concurrent_final_approvals_complete_the_step_once(client: Any, known_users: Any, db: Any) -> None:
    await known_users(*(p.id for p in APPROVERS), role="supervisor")
    assert (await client.put("/v1/processes/refund", json=one_approval("all"), headers=as_(ADMIN))).status_code == 201
    ticket = await new_ticket(client)
    answers = await asyncio.gather(*(decide(client, ticket, "approval", p, "approve") for p in APPROVERS))
    assert [a.status_code for a in answers] == [200] * 20, [a.text for a in answers if a.status_code != 200]
    assert sorted(a.json()["status"] for a in answers) == ["active"] * 19 + ["completed"]
    process = await process_of(client, ticket)
    step = process["steps"][0]
    assert step["status"] == "completed" and len(step["decisions"]) == 20 and step["waiting_for"] == []
    assert process["current_step"] == {"key": "work", "kind": "task", "status": "active"}
    completed = [e for e in await events_of(db, ticket["id"], "ticket.step_completed") if e["step"] == "approval"]
    assert len(completed) == 1 and completed[0]["outcome"] == "approved"
    assert len(await events_of(db, ticket["id"], "ticket.approval_decided")) == 20
    assert [e["step"] for e in await events_of(db, ticket["id"], "ticket.step_started")] == ["approval", "work"]


async def test_with_any_the_first_of_20_concurrent_approvals_wins(client: Any, known_users: Any, db: Any) -> None:
    await known_users(*(p.id for p in APPROVERS), role="supervisor")
    assert (await client.put("/v1/processes/refund", json=one_approval("any"), headers=as_(ADMIN))).status_code == 201
    ticket = await new_ticket(client)
    answers = await asyncio.gather(*(decide(client, ticket, "approval", p, "approve") for p in APPROVERS))
    codes = sorted(a.status_code for a in answers)
    assert codes == [200] + [409] * 19
    assert {a.json()["code"] for a in answers if a.status_code == 409} == {"step_finished"}
    step = (await process_of(client, ticket))["steps"][0]
    assert step["status"] == "completed" and len(step["decisions"]) == 1
    completed = [e for e in await events_of(db, ticket["id"], "ticket.step_completed") if e["step"] == "approval"]
    assert len(completed) == 1


async def test_an_approval_expires_through_the_step_deadline_timer(client: Any, known_users: Any, db: Any,
                                                                   ticket_db: str) -> None:
    from ticket_svc.timers.scheduler import TimerScheduler, asyncpg_dsn, running

    await known_users(*(p.id for p in APPROVERS), role="supervisor")
    body = one_approval("all", expires_after_minutes=60, on_reject="close")
    assert (await client.put("/v1/processes/refund", json=body, headers=as_(ADMIN))).status_code == 201
    ticket = await new_ticket(client)
    step = (await process_of(client, ticket))["steps"][0]
    assert step["deadline"] is not None
    async with db.begin() as conn:
        timers = (await conn.execute(text(
            "UPDATE ticket_timers SET due_at = now() - interval '1 second' "
            "WHERE kind = 'step_deadline' AND ticket_id = :t AND ref = :r RETURNING id"),
            {"t": ticket["id"], "r": step["id"]})).all()
    assert len(timers) == 1
    pool = await create_raw_pool(ticket_db, size=2)
    try:
        async with running(TimerScheduler(pool, asyncpg_dsn(ticket_db))):
            for _ in range(200):
                process = await process_of(client, ticket)
                if process["state"] != "running":
                    break
                await asyncio.sleep(0.05)
    finally:
        await pool.close()
    assert process["state"] == "closed" and process["steps"][0]["status"] == "expired"
    got = await client.get(f"/v1/tickets/{ticket['id']}", headers=as_(ADMIN))
    assert got.json()["status"] == "closed"
    completed = await events_of(db, ticket["id"], "ticket.step_completed")
    assert [(e["step"], e["outcome"]) for e in completed] == [("approval", "expired")]
    late = await decide(client, ticket, "approval", APPROVERS[0], "approve")
    assert late.status_code == 409 and late.json()["code"] == "step_finished"
