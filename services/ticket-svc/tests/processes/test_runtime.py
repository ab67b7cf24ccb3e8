"""Running processes on the real database: start on creation, skipping, deciding through the API,
the ticket's status and the process, follow-ups, refusals, idempotency, the approvals queue."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import text

from helpdesk_common.identity import Principal
from helpdesk_common.testing import identity_headers

ADMIN = Principal(kind="user", id="u-admin", role="admin")
AGENT = Principal(kind="user", id="u-agent", role="agent")
SUP_A = Principal(kind="user", id="sup-a", role="supervisor")
SUP_B = Principal(kind="user", id="sup-b", role="supervisor")
OUTSIDER = Principal(kind="user", id="u-outsider", role="agent")


def as_(principal: Principal, **extra: str) -> dict[str, str]:
    return {**identity_headers(principal), **extra}


def refund(*, on_reject: Any = "close", rule: str = "any", approvers: dict | None = None) -> dict[str, Any]:
    return {"steps": [
        {"key": "triage", "name": "Triage", "kind": "task"},
        {"key": "approval", "name": "主管审批", "kind": "approval",
         "when": {"conditions": [{"field": "custom_fields.amount", "op": "gt", "value": 1000}]},
         "approvers": approvers or {"users": [SUP_A.id, SUP_B.id]}, "rule": rule, "on_reject": on_reject,
         "target_minutes": 240},
        {"key": "confirm", "name": "Customer confirms", "kind": "customer_confirmation", "timeout_minutes": 2880},
    ]}


async def events_of(db: Any, ticket_id: Any, event_type: str) -> list[dict[str, Any]]:
    async with db.connect() as conn:
        rows = (await conn.execute(text(
            "SELECT payload FROM outbox WHERE key = :k AND event_type = :t ORDER BY seq"),
            {"k": str(ticket_id), "t": event_type})).all()
    return [r[0]["data"] if isinstance(r[0], dict) else __import__("json").loads(r[0])["data"] for r in rows]


async def audit_actions(db: Any, ticket_id: Any) -> list[str]:
    async with db.connect() as conn:
        rows = (await conn.execute(text("SELECT action FROM ticket_audit WHERE ticket_id = :t ORDER BY id"),
                                   {"t": ticket_id})).all()
    return [r[0] for r in rows]


async def new_ticket(client: Any, *, ticket_type: str = "refund", amount: int = 1500) -> dict[str, Any]:
    created = await client.post("/v1/tickets", headers=as_(ADMIN), json={
        "subject": "退款 refund", "description": "please", "type": ticket_type,
        "requester": {"email": "c@example.com"}, "custom_fields": {"amount": amount}})
    assert created.status_code == 201, created.text
    return created.json()


async def setup(client: Any, known_users: Any, body: dict[str, Any] | None = None) -> None:
    await known_users(SUP_A.id, SUP_B.id, role="supervisor")
    await known_users(AGENT.id, OUTSIDER.id)
    saved = await client.put("/v1/processes/refund", json=body or refund(), headers=as_(ADMIN))
    assert saved.status_code == 201, saved.text


async def decide(client: Any, ticket: Any, step: str, who: Principal, decision: str, **extra: Any) -> Any:
    return await client.post(f"/v1/tickets/{ticket['id']}/steps/{step}/decisions", headers=as_(who, **extra.pop(
        "headers", {})), json={"decision": decision, **extra})


async def process_of(client: Any, ticket: Any, who: Principal = ADMIN) -> dict[str, Any]:
    got = await client.get(f"/v1/tickets/{ticket['id']}/process", headers=as_(who))
    assert got.status_code == 200, got.text
    return got.json()


async def test_a_refund_runs_from_creation_to_the_customers_confirmation(client: Any, known_users: Any, db: Any) -> None:
    await setup(client, known_users)
    ticket = await new_ticket(client)
    process = await process_of(client, ticket)
    assert process["version"] == 1 and process["state"] == "running"
    assert process["current_step"] == {"key": "triage", "kind": "task", "status": "active"}

    done = await decide(client, ticket, "triage", ADMIN, "complete")
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "completed" and done.json()["outcome"] == "done"
    process = await process_of(client, ticket)
    assert process["current_step"] == {"key": "approval", "kind": "approval", "status": "active"}
    approval = process["steps"][1]
    assert approval["approvers"] == [SUP_A.id, SUP_B.id] and approval["waiting_for"] == [SUP_A.id, SUP_B.id]

    # solving is refused while the approvers have not said yes
    refused = await client.patch(f"/v1/tickets/{ticket['id']}", headers=as_(ADMIN), json={"status": "solved"})
    assert refused.status_code == 409 and refused.json()["code"] == "step_pending"
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["waiting_for"] == [SUP_A.id, SUP_B.id]

    approved = await decide(client, ticket, "approval", SUP_A, "approve", comment="可以 ok")
    assert approved.status_code == 200 and approved.json()["status"] == "completed"
    assert approved.json()["decisions"][0]["comment"] == "可以 ok"
    # the confirmation waits for the ticket to be solved
    process = await process_of(client, ticket)
    assert process["current_step"] == {"key": "confirm", "kind": "customer_confirmation", "status": "pending"}
    solved = await client.patch(f"/v1/tickets/{ticket['id']}", headers=as_(ADMIN), json={"status": "solved"})
    assert solved.status_code == 200, solved.text
    process = await process_of(client, ticket)
    assert process["current_step"]["status"] == "active" and process["steps"][2]["deadline"] is not None

    confirmed = await decide(client, ticket, "confirm", ADMIN, "confirm")
    assert confirmed.status_code == 200, confirmed.text
    got = await client.get(f"/v1/tickets/{ticket['id']}", headers=as_(ADMIN))
    assert got.json()["status"] == "closed"
    assert (await process_of(client, ticket))["state"] == "closed"

    started = await events_of(db, ticket["id"], "ticket.step_started")
    assert [e["step"] for e in started] == ["triage", "approval", "confirm"]
    assert started[1]["target_minutes"] == 240 and started[1]["process_version"] == 1
    completed = await events_of(db, ticket["id"], "ticket.step_completed")
    assert [(e["step"], e["outcome"]) for e in completed] == [("triage", "done"), ("approval", "approved"),
                                                              ("confirm", "confirmed")]
    requested = await events_of(db, ticket["id"], "ticket.approval_requested")
    assert len(requested) == 1 and requested[0]["approvers"] == [SUP_A.id, SUP_B.id]
    decided = await events_of(db, ticket["id"], "ticket.approval_decided")
    assert [(e["decided_by"], e["decision"], e["step_status"]) for e in decided] == [(SUP_A.id, "approve", "completed")]
    answer = await events_of(db, ticket["id"], "ticket.customer_confirmed")
    assert [(e["answer"], e["via"]) for e in answer] == [("confirmed", "agent")]
    actions = await audit_actions(db, ticket["id"])
    for action in ("process_started", "step_started", "step_decision", "step_completed", "process_closed"):
        assert action in actions, action


async def test_a_step_whose_condition_fails_is_skipped_and_emits_nothing(client: Any, known_users: Any,
                                                                        db: Any) -> None:
    await setup(client, known_users)
    ticket = await new_ticket(client, amount=800)
    assert (await decide(client, ticket, "triage", ADMIN, "complete")).status_code == 200
    process = await process_of(client, ticket)
    assert [(s["key"], s["status"]) for s in process["steps"]] == [
        ("triage", "completed"), ("approval", "skipped"), ("confirm", "pending")]
    started = await events_of(db, ticket["id"], "ticket.step_started")
    assert [e["step"] for e in started] == ["triage"]
    # solving completes nothing more and starts the confirmation
    assert (await client.patch(f"/v1/tickets/{ticket['id']}", headers=as_(ADMIN),
                               json={"status": "solved"})).status_code == 200
    assert (await process_of(client, ticket))["current_step"]["status"] == "active"


async def test_solving_completes_the_current_task(client: Any, known_users: Any, db: Any) -> None:
    await setup(client, known_users)
    ticket = await new_ticket(client, amount=10)
    solved = await client.patch(f"/v1/tickets/{ticket['id']}", headers=as_(ADMIN), json={"status": "solved"})
    assert solved.status_code == 200, solved.text
    process = await process_of(client, ticket)
    assert process["steps"][0]["status"] == "completed" and process["steps"][0]["decisions"][0]["via"] == "solve"
    assert process["current_step"] == {"key": "confirm", "kind": "customer_confirmation", "status": "active"}
    # the customer says no (recorded by an agent): the ticket reopens at the task before
    rejected = await decide(client, ticket, "confirm", ADMIN, "reject")
    assert rejected.status_code == 200 and rejected.json()["status"] == "rejected"
    got = await client.get(f"/v1/tickets/{ticket['id']}", headers=as_(ADMIN))
    assert got.json()["status"] == "open"
    process = await process_of(client, ticket)
    assert process["current_step"] == {"key": "triage", "kind": "task", "status": "active"}
    answer = await events_of(db, ticket["id"], "ticket.customer_confirmed")
    assert [e["answer"] for e in answer] == ["rejected"]


async def test_a_rejection_closes_returns_or_continues_flagged(client: Any, known_users: Any, db: Any) -> None:
    await setup(client, known_users, refund(rule="all"))
    closing = await new_ticket(client)
    await decide(client, closing, "triage", ADMIN, "complete")
    no = await decide(client, closing, "approval", SUP_B, "reject", comment="不行")
    assert no.status_code == 200 and no.json()["status"] == "rejected"
    got = await client.get(f"/v1/tickets/{closing['id']}", headers=as_(ADMIN))
    assert got.json()["status"] == "closed"
    assert "process_closed" in await audit_actions(db, closing["id"])

    second = await client.put("/v1/processes/refund", json=refund(rule="all", on_reject={"return_to": "triage"}),
                              headers=as_(ADMIN, **{"If-Match": 'W/"1"'}))
    assert second.status_code == 200, second.text
    back = await new_ticket(client)
    await decide(client, back, "triage", ADMIN, "complete")
    await decide(client, back, "approval", SUP_A, "reject")
    process = await process_of(client, back)
    assert process["version"] == 2
    assert [(s["key"], s["status"]) for s in process["steps"]] == [
        ("triage", "completed"), ("approval", "rejected"), ("triage", "active")]
    assert (await client.get(f"/v1/tickets/{back['id']}", headers=as_(ADMIN))).json()["status"] != "closed"

    third = await client.put("/v1/processes/refund", json=refund(rule="all", on_reject="continue_flagged"),
                             headers=as_(ADMIN, **{"If-Match": 'W/"2"'}))
    assert third.status_code == 200
    flagged = await new_ticket(client)
    await decide(client, flagged, "triage", ADMIN, "complete")
    await decide(client, flagged, "approval", SUP_A, "reject")
    process = await process_of(client, flagged)
    assert process["flagged"] is True and process["current_step"]["key"] == "confirm"


async def test_refusals_are_problems_with_the_machines_code(client: Any, known_users: Any) -> None:
    await setup(client, known_users, refund(rule="all"))
    ticket = await new_ticket(client)
    early = await decide(client, ticket, "approval", SUP_A, "approve")
    assert early.status_code == 409 and early.json()["code"] == "step_not_current"
    await decide(client, ticket, "triage", ADMIN, "complete")
    stranger = await decide(client, ticket, "approval", ADMIN, "approve")
    assert stranger.status_code == 403 and stranger.json()["code"] == "not_an_approver"
    assert stranger.headers["content-type"] == "application/problem+json"
    wrong = await decide(client, ticket, "approval", SUP_A, "sign")
    assert wrong.status_code == 422 and wrong.json()["code"] == "wrong_decision_for_kind"
    assert (await decide(client, ticket, "approval", SUP_A, "approve")).status_code == 200
    again = await decide(client, ticket, "approval", SUP_A, "reject")
    assert again.status_code == 409 and again.json()["code"] == "already_decided"
    finished = await decide(client, ticket, "triage", ADMIN, "complete")
    assert finished.status_code == 409 and finished.json()["code"] == "step_finished"
    unknown = await decide(client, ticket, "nope", ADMIN, "complete")
    assert unknown.status_code == 404 and unknown.json()["code"] == "no_step"
    # an agent who cannot see the ticket (another team's) and decides nothing on it: 404
    team = await client.post("/v1/teams", headers=as_(ADMIN), json={"name": "Billing"})
    assert team.status_code == 201, team.text
    moved = await client.patch(f"/v1/tickets/{ticket['id']}", headers=as_(ADMIN), json={"team_id": team.json()["id"]})
    assert moved.status_code == 200, moved.text
    hidden = await decide(client, ticket, "approval", OUTSIDER, "approve")
    assert hidden.status_code == 404
    assert (await client.get(f"/v1/tickets/{ticket['id']}/process", headers=as_(OUTSIDER))).status_code == 404
    # a named approver reads and decides although the ticket is not in their team
    assert (await client.get(f"/v1/tickets/{ticket['id']}/process", headers=as_(SUP_B))).status_code == 200


async def test_a_decision_retried_with_its_idempotency_key_has_one_effect(client: Any, known_users: Any,
                                                                          db: Any) -> None:
    await setup(client, known_users)
    ticket = await new_ticket(client)
    await decide(client, ticket, "triage", ADMIN, "complete")
    key = {"Idempotency-Key": str(uuid.uuid4())}
    first = await decide(client, ticket, "approval", SUP_A, "approve", headers=key)
    again = await decide(client, ticket, "approval", SUP_A, "approve", headers=key)
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json() and again.headers.get("idempotent-replayed") == "true"
    other = await decide(client, ticket, "approval", SUP_A, "reject", headers=key)
    assert other.status_code == 422 and other.json()["type"].endswith("idempotency-key-reused")
    assert len(await events_of(db, ticket["id"], "ticket.approval_decided")) == 1


async def test_the_approvals_queue_lists_what_waits_for_the_caller(client: Any, known_users: Any) -> None:
    await setup(client, known_users)
    tickets = [await new_ticket(client) for _ in range(3)]
    for ticket in tickets:
        await decide(client, ticket, "triage", ADMIN, "complete")
    page = await client.get("/v1/approvals?limit=2", headers=as_(SUP_A))
    assert page.status_code == 200, page.text
    body = page.json()
    assert len(body["items"]) == 2 and body["next_cursor"]
    rest = await client.get(f"/v1/approvals?limit=2&cursor={body['next_cursor']}", headers=as_(SUP_A))
    ids = [i["ticket"]["id"] for i in body["items"] + rest.json()["items"]]
    assert sorted(ids) == sorted(t["id"] for t in tickets) and rest.json()["next_cursor"] is None
    await decide(client, tickets[0], "approval", SUP_A, "approve")
    pending = (await client.get("/v1/approvals", headers=as_(SUP_A))).json()["items"]
    assert len(pending) == 2
    # any: A's approval finished the step, so it left B's queue too
    assert len((await client.get("/v1/approvals", headers=as_(SUP_B))).json()["items"]) == 2
    decided = (await client.get("/v1/approvals?state=decided", headers=as_(SUP_A))).json()["items"]
    assert [i["ticket"]["id"] for i in decided] == [tickets[0]["id"]]
    assert decided[0]["decisions"][0]["actor"] == SUP_A.id
    # completing the triage tasks is no approval: the admin's decided queue is empty
    assert (await client.get("/v1/approvals?state=decided", headers=as_(ADMIN))).json()["items"] == []
    theirs = await client.get(f"/v1/approvals?user_id={SUP_A.id}", headers=as_(ADMIN))
    assert theirs.status_code == 200 and len(theirs.json()["items"]) == 2
    refused = await client.get(f"/v1/approvals?user_id={SUP_A.id}", headers=as_(AGENT))
    assert refused.status_code == 403
    # a soft-deleted ticket leaves both queues (its process answers 404 until it is restored)
    assert (await client.delete(f"/v1/tickets/{tickets[0]['id']}", headers=as_(ADMIN))).status_code == 204
    assert (await client.get("/v1/approvals?state=decided", headers=as_(SUP_A))).json()["items"] == []
    assert (await client.delete(f"/v1/tickets/{tickets[1]['id']}", headers=as_(ADMIN))).status_code == 204
    assert len((await client.get("/v1/approvals", headers=as_(SUP_A))).json()["items"]) == 1


async def test_closing_by_hand_cancels_the_running_step(client: Any, known_users: Any, db: Any) -> None:
    await setup(client, known_users)
    ticket = await new_ticket(client, amount=10)
    assert (await client.patch(f"/v1/tickets/{ticket['id']}", headers=as_(ADMIN),
                               json={"status": "solved"})).status_code == 200
    closed = await client.patch(f"/v1/tickets/{ticket['id']}", headers=as_(ADMIN), json={"status": "closed"})
    assert closed.status_code == 200, closed.text
    process = await process_of(client, ticket)
    assert process["state"] == "cancelled" and process["steps"][-1]["status"] == "cancelled"
    completed = await events_of(db, ticket["id"], "ticket.step_completed")
    assert completed[-1]["step"] == "confirm" and completed[-1]["outcome"] == "cancelled"


async def test_a_type_change_starts_the_new_types_process(client: Any, known_users: Any) -> None:
    await setup(client, known_users)
    ticket = await new_ticket(client, ticket_type="question")
    assert (await client.get(f"/v1/tickets/{ticket['id']}/process", headers=as_(ADMIN))).status_code == 404
    changed = await client.patch(f"/v1/tickets/{ticket['id']}", headers=as_(ADMIN), json={"type": "refund"})
    assert changed.status_code == 200, changed.text
    assert (await process_of(client, ticket))["current_step"]["key"] == "triage"


async def test_a_sequential_countersign_asks_each_party_in_its_turn(client: Any, known_users: Any, db: Any) -> None:
    await known_users(SUP_A.id, SUP_B.id, role="supervisor")
    await known_users(AGENT.id, OUTSIDER.id)
    profile = await client.put(f"/v1/agents/{AGENT.id}", json={"display_name": "Agent"}, headers=as_(ADMIN))
    assert profile.status_code in (200, 201), profile.text
    team = await client.post("/v1/teams", headers=as_(ADMIN), json={"name": "Finance 财务", "members": [AGENT.id]})
    assert team.status_code == 201, team.text
    body = {"steps": [{"key": "sign", "name": "会签 countersign", "kind": "countersign",
                       "parties": [{"team": team.json()["id"]}, {"user": SUP_A.id}], "order": "sequential"}]}
    assert (await client.put("/v1/processes/refund", json=body, headers=as_(ADMIN))).status_code == 201
    ticket = await new_ticket(client)
    early = await decide(client, ticket, "sign", SUP_A, "sign")
    assert early.status_code == 409 and early.json()["code"] == "out_of_turn"
    assert [i["key"] for i in (await client.get("/v1/approvals", headers=as_(AGENT))).json()["items"]] == ["sign"]
    assert (await client.get("/v1/approvals", headers=as_(SUP_A))).json()["items"] == []
    first = await decide(client, ticket, "sign", AGENT, "sign")
    assert first.status_code == 200 and first.json()["waiting_for"] == [SUP_A.id]
    last = await decide(client, ticket, "sign", SUP_A, "sign")
    assert last.status_code == 200 and last.json()["status"] == "completed" and last.json()["outcome"] == "signed"
    requested = await events_of(db, ticket["id"], "ticket.approval_requested")
    assert [e["approvers"] for e in requested] == [[AGENT.id], [SUP_A.id]]
    assert (await process_of(client, ticket))["state"] == "finished"


async def test_a_first_step_nobody_can_decide_does_not_refuse_the_ticket(client: Any, known_users: Any,
                                                                        db: Any) -> None:
    await known_users(AGENT.id)
    team = await client.post("/v1/teams", headers=as_(ADMIN), json={"name": "Empty"})
    body = {"steps": [{"key": "approval", "name": "Approval", "kind": "approval", "rule": "all",
                       "approvers": {"teams": [team.json()["id"]]}}]}
    assert (await client.put("/v1/processes/refund", json=body, headers=as_(ADMIN))).status_code == 201
    ticket = await new_ticket(client)
    assert (await client.get(f"/v1/tickets/{ticket['id']}/process", headers=as_(ADMIN))).status_code == 404
    assert "process_not_started" in await audit_actions(db, ticket["id"])
    assert await events_of(db, ticket["id"], "ticket.step_started") == []


async def test_an_agent_reopening_withdraws_the_confirmation(client: Any, known_users: Any, db: Any) -> None:
    await setup(client, known_users)
    ticket = await new_ticket(client, amount=10)
    assert (await client.patch(f"/v1/tickets/{ticket['id']}", headers=as_(ADMIN),
                               json={"status": "solved"})).status_code == 200
    reopened = await client.patch(f"/v1/tickets/{ticket['id']}", headers=as_(ADMIN), json={"status": "open"})
    assert reopened.status_code == 200 and reopened.json()["status"] == "open"
    process = await process_of(client, ticket)
    assert [(s["key"], s["status"]) for s in process["steps"]] == [
        ("triage", "completed"), ("approval", "skipped"), ("confirm", "rejected"), ("triage", "active")]
    answer = await events_of(db, ticket["id"], "ticket.customer_confirmed")
    assert [(e["answer"], e["via"]) for e in answer] == [("rejected", "agent")]
    assert "step_decision" in await audit_actions(db, ticket["id"])


async def test_merging_cancels_the_running_step_and_decisions_are_counted(client: Any, known_users: Any,
                                                                         db: Any) -> None:
    from prometheus_client import REGISTRY

    def completed_tasks() -> float:
        return REGISTRY.get_sample_value("ticket_process_decisions_total",
                                         {"kind": "task", "decision": "complete"}) or 0.0

    await setup(client, known_users)
    source, target = await new_ticket(client), await new_ticket(client)
    before = completed_tasks()
    assert (await decide(client, source, "triage", ADMIN, "complete")).status_code == 200
    assert completed_tasks() == before + 1
    merged = await client.post(f"/v1/tickets/{source['id']}/merge", headers=as_(ADMIN),
                               json={"target_id": target["id"]})
    assert merged.status_code == 200, merged.text
    process = await process_of(client, source)
    assert process["state"] == "cancelled" and process["steps"][-1]["status"] == "cancelled"
    completed = await events_of(db, source["id"], "ticket.step_completed")
    assert (completed[-1]["step"], completed[-1]["outcome"]) == ("approval", "cancelled")
    late = await decide(client, source, "approval", SUP_A, "approve")
    assert late.status_code == 409 and late.json()["code"] == "step_finished"
    # the target's own process runs on
    assert (await process_of(client, target))["state"] == "running"


async def test_a_decision_whose_next_step_nobody_can_decide_is_refused_whole(client: Any, known_users: Any,
                                                                            db: Any) -> None:
    await known_users(AGENT.id)
    team = await client.post("/v1/teams", headers=as_(ADMIN), json={"name": "Nobody yet"})
    body = {"steps": [{"key": "triage", "name": "Triage", "kind": "task"},
                      {"key": "approval", "name": "Approval", "kind": "approval", "rule": "any",
                       "approvers": {"teams": [team.json()["id"]]}}]}
    assert (await client.put("/v1/processes/refund", json=body, headers=as_(ADMIN))).status_code == 201
    ticket = await new_ticket(client)
    refused = await decide(client, ticket, "triage", ADMIN, "complete")
    assert refused.status_code == 409 and refused.json()["code"] == "step_unstaffed"
    assert refused.json()["step"] == "approval"
    process = await process_of(client, ticket)
    assert [(s["key"], s["status"]) for s in process["steps"]] == [("triage", "active")]
    assert await events_of(db, ticket["id"], "ticket.step_completed") == []
    # once the team has a member, the same decision goes through
    profile = await client.put(f"/v1/agents/{AGENT.id}", json={"display_name": "Agent"}, headers=as_(ADMIN))
    assert profile.status_code in (200, 201)
    staffed = await client.patch(f"/v1/teams/{team.json()['id']}", headers=as_(ADMIN), json={"members": [AGENT.id]})
    assert staffed.status_code == 200, staffed.text
    assert (await decide(client, ticket, "triage", ADMIN, "complete")).status_code == 200
    assert (await process_of(client, ticket))["steps"][-1]["approvers"] == [AGENT.id]
