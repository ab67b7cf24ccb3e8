"""The executor as the automation scheduler calls it (shared interface: ``executor.execute``), on
the real database: the actions go through the ordinary write paths, the run is recorded under
the automation, the triggers then run on its change as an automation's update, and what the
ticket refuses is skipped with the reason instead of failing the transaction."""

from __future__ import annotations

from typing import Any

from prometheus_client import REGISTRY

from helpdesk_common.db import create_raw_pool
from helpdesk_common.identity import Principal
from helpdesk_common.testing import identity_headers
from ticket_svc.automation import executor, service
from ticket_svc.tickets import repository as tickets

ADMIN = identity_headers(Principal(kind="user", id="u-admin", role="admin"))
WEB = identity_headers(Principal(kind="channel", id="key-web", channel="web"))


def executions(kind: str, rule: str) -> float:
    return REGISTRY.get_sample_value("ticket_rule_executions_total", {"kind": kind, "rule": rule}) or 0.0


async def test_an_automation_runs_through_the_write_paths_and_its_change_runs_the_triggers(
        client: Any, ticket_db: str) -> None:
    automation = (await client.post("/v1/automations", json={
        "name": "Close solved tickets after 4 days",
        "conditions": {"all": [{"field": "status", "op": "eq", "value": "solved"},
                               {"field": "hours_since.solved", "op": "gte", "value": 96}]},
        "actions": [{"type": "set_field", "field": "priority", "value": "low"},
                    {"type": "add_internal_note", "body": "#{{ticket.number}} 自动处理 / handled automatically"},
                    {"type": "set_field", "field": "status", "value": "closed"}]}, headers=ADMIN)).json()
    trigger = (await client.post("/v1/triggers", json={
        "name": "mark what automations did",
        "conditions": {"all": [{"field": "update.actor_kind", "op": "eq", "value": "automation"}]},
        "actions": [{"type": "add_tags", "tags": ["by-automation"]}]}, headers=ADMIN)).json()
    made = (await client.post("/v1/tickets", json={"subject": "打印机 / printer", "requester": {"name": "Li", "email": "li@example.com"}},
                              headers=WEB)).json()
    [stored] = [a for a in await _active(ticket_db) if str(a.id) == automation["id"]]
    label = f"automation:{automation['id']}"
    before = executions("automation", automation["id"])

    pool = await create_raw_pool(ticket_db, size=1)
    try:
        async with pool.acquire() as conn, conn.transaction():
            ticket = await tickets.lock_ticket(conn, made["id"])
            row = await executor.execute(conn, ticket, list(stored.actions), rule=label, actor=label)
    finally:
        await pool.close()

    # new ticket → closed is illegal (the lifecycle): skipped, the rest done; then the trigger
    assert (row["priority"], row["status"], row["tags"]) == ("low", "new", ["by-automation"])
    fired = (await client.get(f"/v1/tickets/{made['id']}/rule-runs", headers=ADMIN)).json()["items"]
    assert [(r["rule_kind"], r["rule_id"], r["rule_name"]) for r in fired] == [
        ("automation", automation["id"], automation["name"]), ("trigger", trigger["id"], trigger["name"])]
    assert fired[0]["changes"] == {"priority": "low"}
    assert [e["type"] for e in fired[0]["effects"]] == ["add_internal_note", "skipped"]
    assert "cannot become closed" in fired[0]["effects"][1]["reason"]
    assert fired[0]["run_id"] != fired[1]["run_id"]
    messages = (await client.get(f"/v1/tickets/{made['id']}/messages", headers=ADMIN)).json()["items"]
    assert messages[-1]["body_text"] == f"#{made['number']} 自动处理 / handled automatically"
    audit = (await client.get(f"/v1/tickets/{made['id']}/audit", headers=ADMIN)).json()["items"]
    assert {(a["actor"], a["action"]) for a in audit} >= {
        (label, "rule_applied"), (label, "message_added"), (label, "automation_fired"),
        (f"trigger:{trigger['id']}", "rule_applied"), (f"trigger:{trigger['id']}", "trigger_fired")}
    assert executions("automation", automation["id"]) == before + 1
    metrics = (await client.get("/metrics")).text
    assert "ticket_trigger_evaluation_seconds_count" in metrics
    assert f'ticket_rule_executions_total{{kind="trigger",rule="{trigger["id"]}"}} 1.0' in metrics


async def _active(ticket_db: str) -> list[Any]:
    pool = await create_raw_pool(ticket_db, size=1)
    try:
        async with pool.acquire() as conn:
            service.invalidate()
            return await service.active_automations(conn)
    finally:
        await pool.close()
