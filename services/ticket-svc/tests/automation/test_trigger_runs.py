"""Triggers at run time on the real database: they fire on creation and update in the write's
transaction, through the ordinary write paths (events, audit), each firing recorded with the
rule that fired; loops stop at their bound; the dry run says what a real update then does;
notifications and webhook calls leave as events for notify-svc."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import text

from helpdesk_common import events
from helpdesk_common.identity import Principal
from helpdesk_common.testing import identity_headers

ADMIN = identity_headers(Principal(kind="user", id="u-admin", role="admin"))
AGENT = identity_headers(Principal(kind="user", id="u-agent", role="agent"))
WECHAT = identity_headers(Principal(kind="channel", id="key-wechat", channel="wechat"))
WEB = identity_headers(Principal(kind="channel", id="key-web", channel="web"))


async def new_trigger(client: Any, body: dict[str, Any]) -> dict[str, Any]:
    made = await client.post("/v1/triggers", json=body, headers=ADMIN)
    assert made.status_code == 201, made.text
    return made.json()


async def new_ticket(client: Any, headers: dict[str, str] = WEB, **extra: Any) -> dict[str, Any]:
    body = {"subject": "退款没有到账 / refund missing", "description": "订单 1234",
            "requester": {"name": "王芳", "email": "fang@example.com"}, **extra}
    made = await client.post("/v1/tickets", json=body, headers=headers)
    assert made.status_code == 201, made.text
    return made.json()


async def ticket(client: Any, ticket_id: str) -> dict[str, Any]:
    return (await client.get(f"/v1/tickets/{ticket_id}", headers=ADMIN)).json()


async def runs(client: Any, ticket_id: str) -> list[dict[str, Any]]:
    answer = await client.get(f"/v1/tickets/{ticket_id}/rule-runs", headers=ADMIN)
    assert answer.status_code == 200, answer.text
    return answer.json()["items"]


async def audit(client: Any, ticket_id: str) -> list[dict[str, Any]]:
    return (await client.get(f"/v1/tickets/{ticket_id}/audit", headers=ADMIN)).json()["items"]


async def outbox(db: Any, event_type: str, ticket_id: str) -> list[Any]:
    async with db.connect() as conn:
        rows = (await conn.execute(text("SELECT payload FROM outbox WHERE event_type = :t AND key = :k ORDER BY seq"),
                                   {"t": event_type, "k": ticket_id})).all()
    return [events.decode(r.payload) for r in rows]


async def vip_customer(db: Any, email: str) -> None:
    customer_id = uuid.uuid4()
    async with db.begin() as conn:
        await conn.execute(text("INSERT INTO customer_identity_projection (kind, value, customer_id) "
                                "VALUES ('email', :e, :c)"), {"e": email, "c": customer_id})
        await conn.execute(text("INSERT INTO customer_tier_projection (customer_id, tier, version) "
                                "VALUES (:c, 'vip', 1)"), {"c": customer_id})


async def test_a_vip_urgent_wechat_ticket_is_assigned_tagged_and_noted_by_the_rule(client: Any, db: Any) -> None:
    team = (await client.post("/v1/teams", json={"name": "VIP 专线"}, headers=ADMIN)).json()
    rule = await new_trigger(client, {
        "name": "VIP urgent WeChat → VIP team",
        "conditions": {"all": [{"field": "update.event", "op": "eq", "value": "created"},
                               {"field": "priority", "op": "eq", "value": "urgent"},
                               {"field": "channel", "op": "eq", "value": "wechat"},
                               {"field": "customer_tier", "op": "eq", "value": "vip"}]},
        "actions": [{"type": "assign", "team_id": team["id"]},
                    {"type": "add_tags", "tags": ["VIP-urgent"]},
                    {"type": "add_internal_note", "body": "VIP 紧急工单 #{{ticket.number}}: {{ticket.subject}}"}],
    })
    await vip_customer(db, "fang@example.com")
    vip = await new_ticket(client, WECHAT, priority="urgent")
    for other in (await new_ticket(client, WEB, priority="urgent"), await new_ticket(client, WECHAT)):
        assert await runs(client, other["id"]) == []  # not WeChat, or not urgent

    now = await ticket(client, vip["id"])
    assert now["team_id"] == team["id"] and now["tags"] == ["VIP-urgent"]
    # the creation's own answer shows what the trigger did in its transaction
    assert (vip["team_id"], vip["tags"], vip["version"]) == (now["team_id"], now["tags"], now["version"])
    messages = (await client.get(f"/v1/tickets/{vip['id']}/messages", headers=ADMIN)).json()["items"]
    note = messages[-1]
    assert (note["author_kind"], note["public"]) == ("system", False)
    assert note["body_text"] == f"VIP 紧急工单 #{vip['number']}: {vip['subject']}"

    [fired] = await runs(client, vip["id"])
    assert (fired["rule_kind"], fired["rule_id"], fired["rule_name"], fired["pass_number"], fired["bounded"]) == (
        "trigger", rule["id"], rule["name"], 1, False)
    assert fired["changes"] == {"team_id": team["id"], "tags": ["VIP-urgent"]}
    assert [e["type"] for e in fired["effects"]] == ["add_internal_note"]
    trail = await audit(client, vip["id"])
    by_rule = [a for a in trail if a["actor"] == f"trigger:{rule['id']}"]
    assert {a["action"] for a in by_rule} >= {"rule_applied", "assigned", "message_added", "trigger_fired"}
    assert next(a for a in by_rule if a["action"] == "trigger_fired")["changes"]["rule_name"] == rule["name"]
    assert [e.data.actor for e in await outbox(db, "ticket.assigned", vip["id"])] == [f"trigger:{rule['id']}"]


async def test_two_triggers_toggling_a_tag_fire_once_each_and_a_longer_loop_stops_at_the_bound(
        client: Any, db: Any) -> None:
    add = await new_trigger(client, {"name": "add x", "position": 0,
                                     "conditions": {"all": [{"field": "tags", "op": "not_in", "value": ["x"]}]},
                                     "actions": [{"type": "add_tags", "tags": ["x"]}]})
    remove = await new_trigger(client, {"name": "remove x", "position": 1,
                                        "conditions": {"all": [{"field": "tags", "op": "has_tag", "value": "x"}]},
                                        "actions": [{"type": "remove_tags", "tags": ["x"]}]})
    made = await new_ticket(client)
    fired = await runs(client, made["id"])
    assert [(r["rule_id"], r["pass_number"]) for r in fired] == [(add["id"], 1), (remove["id"], 1)]
    assert len({r["run_id"] for r in fired}) == 1 and not any(r["bounded"] for r in fired)
    assert (await ticket(client, made["id"]))["tags"] == []

    # an agent's update is a new run: each rule fires once more, and no more
    changed = await client.patch(f"/v1/tickets/{made['id']}", json={"priority": "high"}, headers=AGENT)
    assert changed.status_code == 200, changed.text
    fired = await runs(client, made["id"])
    assert len(fired) == 4 and len({r["run_id"] for r in fired}) == 2

    for rule in (add, remove):
        assert (await client.delete(f"/v1/triggers/{rule['id']}", headers=ADMIN)).status_code == 204
    # a chain placed against its order: each pass fires one more link, six links need six passes
    chain = []
    for n in range(6):
        conditions = {"all": [{"field": "tags", "op": "has_tag", "value": f"t{n - 1}"}]} if n else {"all": []}
        chain.append(await new_trigger(client, {"name": f"link {n}", "position": 100 - n, "conditions": conditions,
                                                "actions": [{"type": "add_tags", "tags": [f"t{n}"]}]}))
    looped = await new_ticket(client)
    fired = await runs(client, looped["id"])
    assert [r["rule_id"] for r in fired] == [c["id"] for c in chain[:5]]
    assert [r["pass_number"] for r in fired] == [1, 2, 3, 4, 5]
    assert all(r["bounded"] for r in fired)
    assert (await ticket(client, looped["id"]))["tags"] == ["t0", "t1", "t2", "t3", "t4"]
    assert sum(a["action"] == "trigger_fired" for a in await audit(client, looped["id"])) == 5


async def test_the_dry_run_says_what_a_real_update_then_does_and_writes_nothing(client: Any, db: Any) -> None:
    urgent = await new_trigger(client, {
        "name": "urgent → high attention", "position": 0,
        "conditions": {"all": [{"field": "priority", "op": "changed_to", "value": "urgent"}]},
        "actions": [{"type": "add_tags", "tags": ["attention"]}, {"type": "set_field", "field": "status",
                                                                   "value": "open"}]})
    opened = await new_trigger(client, {
        "name": "opened with attention", "position": 1,
        "conditions": {"all": [{"field": "status", "op": "changed_to", "value": "open"},
                               {"field": "tags", "op": "has_tag", "value": "attention"}]},
        "actions": [{"type": "notify", "to": ["assignee", "supervisors"], "subject": "Urgent #{{ticket.number}}",
                     "body": "{{ticket.subject}} needs attention"}]})
    await new_trigger(client, {"name": "never", "conditions": {"all": [{"field": "priority", "op": "eq",
                                                                        "value": "low"}]},
                               "actions": [{"type": "add_tags", "tags": ["low"]}]})
    await client.post("/v1/automations", json={
        "name": "remind after a day open", "conditions": {"all": [
            {"field": "status", "op": "eq", "value": "open"}, {"field": "hours_since.status_changed", "op": "gte",
                                                               "value": 24}]},
        "actions": [{"type": "notify", "to": ["assignee"], "subject": "Still open", "body": "Still open."}]},
        headers=ADMIN)
    made = await new_ticket(client)
    assert await runs(client, made["id"]) == []

    answer = await client.post("/v1/rules/dry-run", json={"ticket_id": made["id"], "changes": {"priority": "urgent"}},
                               headers=AGENT)
    assert answer.status_code == 200, answer.text
    plan = answer.json()
    assert (plan["passes"], plan["bounded"]) == (2, False)
    verdicts = {v["name"]: v for v in plan["triggers"]}
    assert (verdicts[urgent["name"]]["fires"], verdicts[urgent["name"]]["pass_number"]) == (True, 1)
    assert (verdicts[opened["name"]]["fires"], verdicts[opened["name"]]["pass_number"]) == (True, 1)
    assert verdicts["never"]["fires"] is False and verdicts["never"]["reasons"] == [
        {"condition": "all: priority eq 'low'", "holds": False}]
    assert plan["ticket"]["status"] == "open" and plan["ticket"]["tags"] == ["attention"]
    [reminder] = plan["automations"]
    assert reminder["state"] == "scheduled" and reminder["due_at"] is not None
    # nothing was written or sent
    assert (await ticket(client, made["id"]))["version"] == made["version"]
    assert await outbox(db, "ticket.notification_requested", made["id"]) == []

    real = await client.patch(f"/v1/tickets/{made['id']}", json={"priority": "urgent"}, headers=AGENT)
    assert real.status_code == 200, real.text
    assert (real.json()["status"], real.json()["tags"]) == ("open", ["attention"])  # the answer is up to date
    assert real.headers["etag"] == f'W/"{real.json()["version"]}"'
    assert (await ticket(client, made["id"]))["version"] == real.json()["version"]
    fired = await runs(client, made["id"])
    assert [(r["rule_name"], r["pass_number"]) for r in fired] == [
        (v["name"], v["pass_number"]) for v in plan["triggers"] if v["fires"]]
    assert [r["changes"] for r in fired] == [v["changes"] for v in plan["triggers"] if v["fires"]]
    after = await ticket(client, made["id"])
    assert (after["status"], after["tags"]) == ("open", ["attention"])
    [notification] = await outbox(db, "ticket.notification_requested", made["id"])
    assert notification.data.to == ["assignee", "team_supervisors"]
    assert notification.data.subject == f"Urgent #{made['number']}"
    assert notification.data.body == f"{made['subject']} needs attention"
    assert notification.data.rule == f"trigger:{opened['id']}"

    missing = await client.post("/v1/rules/dry-run", json={"ticket_id": str(uuid.uuid4())}, headers=AGENT)
    assert missing.status_code == 404
    assert (await client.post("/v1/rules/dry-run", json={"ticket_id": made["id"]}, headers=WEB)).status_code == 403


async def test_webhook_calls_and_process_starts_leave_as_events_or_skips(client: Any, db: Any) -> None:
    hook = str(uuid.uuid4())
    rule = await new_trigger(client, {
        "name": "tell the ERP", "conditions": {"all": [{"field": "update.event", "op": "eq", "value": "updated"},
                                                       {"field": "update.message", "op": "eq", "value": "public"},
                                                       {"field": "update.actor_kind", "op": "eq",
                                                        "value": "customer"}]},
        "actions": [{"type": "call_webhook", "webhook_id": hook, "payload": {"erp": "refund", "n": 1}},
                    {"type": "start_process", "process": "no_such_process"},
                    {"type": "set_field", "field": "custom_fields.erp_synced", "value": True}]})
    made = await new_ticket(client)
    assert await runs(client, made["id"]) == []  # a creation is not a customer's message update
    reply = await client.post(f"/v1/tickets/{made['id']}/messages", json={"body": "还没到账 / still missing"},
                              headers=WEB)
    assert reply.status_code == 201, reply.text
    [fired] = await runs(client, made["id"])
    assert fired["rule_id"] == rule["id"] and fired["changes"] == {"custom_fields": {"erp_synced": True}}
    assert [e["type"] for e in fired["effects"]] == ["call_webhook", "skipped"]
    assert "no_such_process" in fired["effects"][1]["reason"]
    [call] = await outbox(db, "ticket.webhook_requested", made["id"])
    assert (str(call.data.webhook_id), call.data.payload, call.data.number) == (hook, {"erp": "refund", "n": 1},
                                                                                made["number"])
    assert (await ticket(client, made["id"]))["custom_fields"] == {"erp_synced": True}
    # an agent's internal note is no customer's public message
    note = await client.post(f"/v1/tickets/{made['id']}/messages", json={"body": "checking", "public": False},
                             headers=AGENT)
    assert note.status_code == 201, note.text
    assert len(await runs(client, made["id"])) == 1


async def test_the_dry_run_counts_from_the_last_customer_and_agent_messages(client: Any, db: Any) -> None:
    from datetime import datetime, timedelta

    for anchor in ("customer_replied", "agent_replied"):
        made = await client.post("/v1/automations", json={
            "name": f"{anchor} an hour ago",
            "conditions": {"all": [{"field": f"hours_since.{anchor}", "op": "gte", "value": 1}]},
            "actions": [{"type": "add_tags", "tags": [anchor]}]}, headers=ADMIN)
        assert made.status_code == 201, made.text
    ticket_ = await new_ticket(client)
    plan = (await client.post("/v1/rules/dry-run", json={"ticket_id": ticket_["id"]}, headers=ADMIN)).json()
    by_name = {a["name"]: a for a in plan["automations"]}
    messages = (await client.get(f"/v1/tickets/{ticket_['id']}/messages", headers=ADMIN)).json()["items"]
    opened = datetime.fromisoformat(messages[0]["created_at"])
    assert datetime.fromisoformat(by_name["customer_replied an hour ago"]["due_at"]) == opened + timedelta(hours=1)
    assert by_name["agent_replied an hour ago"]["state"] == "never"  # no agent has written yet

    reply = await client.post(f"/v1/tickets/{ticket_['id']}/messages", json={"body": "我们在处理 / on it"},
                              headers=ADMIN)
    assert reply.status_code == 201, reply.text
    plan = (await client.post("/v1/rules/dry-run", json={"ticket_id": ticket_["id"]}, headers=ADMIN)).json()
    agent = next(a for a in plan["automations"] if a["name"] == "agent_replied an hour ago")
    assert agent["state"] == "scheduled"
    assert datetime.fromisoformat(agent["due_at"]) == datetime.fromisoformat(reply.json()["created_at"]) + timedelta(
        hours=1)
    assert agent["episode_key"] == f"agent_replied={datetime.fromisoformat(reply.json()['created_at']).isoformat()}"


async def test_what_the_ticket_refuses_is_skipped_with_the_reason_and_the_write_still_succeeds(
        client: Any, db: Any) -> None:
    team = (await client.post("/v1/teams", json={"name": "Gone soon"}, headers=ADMIN)).json()
    rule = await new_trigger(client, {
        "name": "to a team that will be deleted",
        "conditions": {"all": [{"field": "update.event", "op": "eq", "value": "created"}]},
        "actions": [{"type": "assign", "team_id": team["id"]}, {"type": "add_tags", "tags": ["seen"]}]})
    other = await new_trigger(client, {
        "name": "to nobody", "position": 5,
        "conditions": {"all": [{"field": "update.event", "op": "eq", "value": "created"}]},
        "actions": [{"type": "assign", "assignee_id": "no-such-agent"}]})
    assert (await client.delete(f"/v1/teams/{team['id']}", headers=ADMIN)).status_code == 204
    made = await new_ticket(client)
    assert (made["team_id"], made["tags"]) == (None, ["seen"])
    fired = {r["rule_id"]: r for r in await runs(client, made["id"])}
    assert fired[rule["id"]]["effects"] == [{"type": "skipped", "action": "assign",
                                             "reason": f"no team {team['id']}"}]
    assert fired[other["id"]]["effects"] == [{"type": "skipped", "action": "assign",
                                              "reason": "no active agent no-such-agent"}]


async def test_a_trigger_starts_a_process_and_another_reacts_to_its_current_step(client: Any, db: Any) -> None:
    saved = await client.put("/v1/processes/refund", json={"steps": [
        {"key": "triage", "name": "分诊 / triage", "kind": "task"},
        {"key": "pay", "name": "Pay", "kind": "task"}]}, headers=ADMIN)
    assert saved.status_code == 201, saved.text
    starter = await new_trigger(client, {
        "name": "refund requests run the refund process",
        "conditions": {"all": [{"field": "update.event", "op": "eq", "value": "created"},
                               {"field": "subject", "op": "contains", "value": "refund"}]},
        "actions": [{"type": "start_process", "process": "refund"}]})
    triage = await new_trigger(client, {
        "name": "tag tickets in triage",
        "conditions": {"all": [{"field": "step", "op": "eq", "value": "triage"}]},
        "actions": [{"type": "add_tags", "tags": ["in-triage"]}]})
    made = await new_ticket(client)
    process = await client.get(f"/v1/tickets/{made['id']}/process", headers=ADMIN)
    assert process.status_code == 200, process.text
    assert process.json()["ticket_type"] == "refund"
    [fired] = await runs(client, made["id"])
    assert fired["rule_id"] == starter["id"] and fired["effects"] == [
        {"type": "start_process", "process": "refund", "started": True}]
    # the next update sees the step the process is on
    changed = await client.patch(f"/v1/tickets/{made['id']}", json={"priority": "high"}, headers=ADMIN)
    assert changed.status_code == 200 and changed.json()["tags"] == ["in-triage"]
    assert [r["rule_id"] for r in await runs(client, made["id"])] == [starter["id"], triage["id"]]
    # a second start is refused (a process runs) and recorded, never an error
    again = await new_trigger(client, {"name": "start again", "conditions": {"all": [
        {"field": "priority", "op": "changed_to", "value": "urgent"}]},
        "actions": [{"type": "start_process", "process": "refund"}]})
    urgent = await client.patch(f"/v1/tickets/{made['id']}", json={"priority": "urgent"}, headers=ADMIN)
    assert urgent.status_code == 200, urgent.text
    last = (await runs(client, made["id"]))[-1]
    assert last["rule_id"] == again["id"] and last["effects"][0]["type"] == "skipped"
