"""Issue 12's notifications on a real PostgreSQL, through the consumer's handlers: an approval
request tells each approver (by the rule's agent channel, rendered in the tenant's language),
a decision that ends the step tells the assignee, a trigger's ``notify`` action reaches the
recipients it names; rules switched off send nothing, and a redelivered event sends once."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from helpdesk_common import events
from notify_svc.config import Settings
from notify_svc.notifications import rules
from notify_svc.notifications.handlers import handlers

pytestmark = pytest.mark.timeout(120)

EXPIRES = datetime(2026, 12, 2, 14, 0, tzinfo=UTC)


def _settings(language: str = "zh-CN") -> Settings:
    return Settings(notification_default_language=language, notification_agent_url="https://desk.example.com/")


async def _apply(raw, event, *, language: str = "zh-CN") -> None:
    handler = handlers(_settings(language))[event.type]
    async with raw.transaction():
        await handler(raw, event)


def _user(user_id: uuid.UUID, name: str, role: str = "agent", email: str | None = None) -> events.UserCreated:
    return events.UserCreated(source="gateway", subject=str(user_id), data=events.UserCreatedData(
        user_id=user_id, version=1, display_name=name, role=role, active=True,
        email=email or f"{name.lower().replace(' ', '.')}@example.com"))


def _ticket(*, assignee: uuid.UUID | None = None, email: str | None = "wang.fang@example.com") -> events.TicketCreated:
    tid = uuid.uuid4()
    return events.TicketCreated(source="ticket-svc", subject=str(tid), data=events.TicketCreatedData(
        ticket_id=tid, subject="退款申请 / Refund request", status="open", priority="high", channel="email",
        requester=events.Requester(name="王芳", email=email), created_by="user:someone",  # no acknowledgement
        created_at=datetime.now(UTC), number=77, language="zh-CN",
        assignee_id=str(assignee) if assignee else None))


def _requested(ticket_id: uuid.UUID, approvers: list[str], *, kind: str = "approval", rule: str = "all",
               n: int | None = None) -> events.TicketApprovalRequested:
    return events.TicketApprovalRequested(source="ticket-svc", subject=str(ticket_id),
                                          data=events.TicketApprovalRequestedData(
        ticket_id=ticket_id, number=77, step_id=uuid.uuid4(), step="refund_approval", name="退款审批",
        kind=kind, approvers=approvers, rule=rule, n=n, expires_at=EXPIRES, requested_at=datetime.now(UTC)))


def _decided(ticket_id: uuid.UUID, *, by: uuid.UUID, status: str = "completed", assignee: uuid.UUID | None = None,
             decision: str = "approve") -> events.TicketApprovalDecided:
    return events.TicketApprovalDecided(source="ticket-svc", subject=str(ticket_id),
                                        data=events.TicketApprovalDecidedData(
        ticket_id=ticket_id, number=77, assignee_id=str(assignee) if assignee else None, step_id=uuid.uuid4(),
        step="refund_approval", kind="approval", decision=decision, decided_by=f"user:{by}", comment="金额核对无误",
        step_status=status, decided_at=datetime.now(UTC)))


async def _deliveries(raw, ticket_id: uuid.UUID) -> list[dict]:
    return [dict(r) for r in await raw.fetch(
        "SELECT kind, channel, dedupe_key, payload, status FROM deliveries WHERE ticket_id = $1 "
        "ORDER BY payload->>'recipient_ref'", ticket_id)]


async def _log(raw, ticket_id: uuid.UUID) -> list[tuple]:
    return [tuple(r) for r in await raw.fetch(
        "SELECT key, recipient, status, reason, rule FROM notification_log WHERE ticket_id = $1 "
        "ORDER BY key, recipient", ticket_id)]


async def test_an_approval_request_tells_both_approvers_once_in_the_tenants_language(raw) -> None:
    boss, finance = uuid.uuid4(), uuid.uuid4()
    for u in (_user(boss, "Zhang Wei", "supervisor"), _user(finance, "Chen Jing")):
        await _apply(raw, u)
    await raw.execute("INSERT INTO notification_contacts (user_id, wecom_userid) VALUES ($1, 'chenjing')", finance)
    ticket = _ticket()
    await _apply(raw, ticket)
    asked = _requested(ticket.data.ticket_id, [f"user:{boss}", str(finance).upper()])
    await _apply(raw, asked)
    await _apply(raw, asked)  # redelivered past the inbox (a replay): the dedupe key holds

    rows = await _deliveries(raw, ticket.data.ticket_id)
    assert [(r["kind"], r["channel"], r["payload"]["route"]) for r in rows] == sorted(
        [("notification", "email", {"to": "zhang.wei@example.com"}),
         ("notification", "email", {"to": "chen.jing@example.com"})],  # the rule's channel is e-mail
        key=lambda r: f"user:{boss}" if r[2]["to"].startswith("zhang") else f"user:{finance}")
    for row in rows:
        payload = row["payload"]
        assert row["dedupe_key"] == f"notification:{asked.id}:approval_requested:{payload['recipient_ref']}"
        assert payload["language"] == "zh-CN" and payload["number"] == 77
        assert payload["subject"] == "[#77] 待您审批：退款审批"
        assert "规则：所有审批人均须同意。" in payload["body_text"]
        assert "截止时间：2026-12-02 14:00 UTC" in payload["body_text"]
        assert f"https://desk.example.com/tickets/{ticket.data.ticket_id}" in payload["body_text"]
        assert "退款审批" in payload["body_html"] and "<a href=" in payload["body_html"]
    names = {r["payload"]["recipient"]["name"] for r in rows}
    assert names == {"Zhang Wei", "Chen Jing"} and all(r["payload"]["recipient"]["name"] in r["payload"]["body_text"]
                                                         for r in rows)
    assert await _log(raw, ticket.data.ticket_id) == sorted([
        ("approval_requested", f"user:{boss}", "queued", None, None),
        ("approval_requested", f"user:{finance}", "queued", None, None)])

    # English tenant, a countersign turn, and the rule redirected to WeCom: the contact's id
    await raw.execute("UPDATE notification_rules SET agent_channel = 'wecom' WHERE key = 'approval_requested'")
    turn = _requested(ticket.data.ticket_id, [str(finance)], kind="countersign", rule="sequential")
    await _apply(raw, turn, language="en")
    [row] = [r for r in await _deliveries(raw, ticket.data.ticket_id) if str(turn.id) in r["dedupe_key"]]
    assert row["channel"] == "wecom" and row["payload"]["route"] == {"userid": "chenjing"}
    assert row["payload"]["subject"] == "[#77] Signature needed: 退款审批"
    assert "needs your signature" in row["payload"]["body_text"]
    assert "the parties sign in order; it is your turn" in row["payload"]["body_text"]
    assert "Decide by: 2026-12-02 14:00 UTC" in row["payload"]["body_text"]
    two_of_three = _requested(ticket.data.ticket_id, [str(finance)], rule="n_of_m", n=2)
    await _apply(raw, two_of_three)
    [row] = [r for r in await _deliveries(raw, ticket.data.ticket_id) if str(two_of_three.id) in r["dedupe_key"]]
    assert "规则：须有 2 位审批人同意。" in row["payload"]["body_text"]


async def test_a_disabled_rule_or_team_override_sends_nothing(raw) -> None:
    approver = uuid.uuid4()
    await _apply(raw, _user(approver, "Zhang Wei", "supervisor"))
    ticket = _ticket()
    await _apply(raw, ticket)
    await raw.execute("UPDATE notification_rules SET enabled = false WHERE key = 'approval_requested'")
    await _apply(raw, _requested(ticket.data.ticket_id, [str(approver)]))
    assert await _deliveries(raw, ticket.data.ticket_id) == []
    assert await _log(raw, ticket.data.ticket_id) == []
    # switched on again for everyone, but off for this ticket's team
    team = uuid.uuid4()
    await raw.execute("UPDATE notification_rules SET enabled = true WHERE key = 'approval_requested'")
    await raw.execute("INSERT INTO notification_rule_teams (rule_key, team_id, enabled) "
                      "VALUES ('approval_requested', $1, false)", team)
    asked = _requested(ticket.data.ticket_id, [str(approver)])
    asked.data.team_id = team
    await _apply(raw, asked)
    assert await _deliveries(raw, ticket.data.ticket_id) == []
    # an approver notify-svc never heard of: recorded, not sent
    await raw.execute("DELETE FROM notification_rule_teams WHERE team_id = $1", team)
    stranger = uuid.uuid4()
    await _apply(raw, _requested(ticket.data.ticket_id, [str(stranger)]))
    assert await _log(raw, ticket.data.ticket_id) == [
        ("approval_requested", f"user:{stranger}", "skipped", "unknown user (not in users.events)", None)]


async def test_the_assignee_learns_the_step_ended_but_not_from_each_vote_nor_their_own_decision(raw) -> None:
    agent, boss = uuid.uuid4(), uuid.uuid4()
    for u in (_user(agent, "Li Na"), _user(boss, "Zhang Wei", "supervisor")):
        await _apply(raw, u)
    ticket = _ticket(assignee=agent)
    await _apply(raw, ticket)
    tid = ticket.data.ticket_id
    await _apply(raw, _decided(tid, by=boss, status="pending", assignee=agent))  # one vote of several
    assert await _deliveries(raw, tid) == []
    await _apply(raw, _decided(tid, by=agent, status="completed", assignee=agent))  # the agent decided it
    assert await _deliveries(raw, tid) == []
    approved = _decided(tid, by=boss, assignee=agent)
    await _apply(raw, approved, language="en")
    [row] = await _deliveries(raw, tid)
    assert row["payload"]["route"] == {"to": "li.na@example.com"}
    assert row["payload"]["subject"] == "[#77] Approved: refund_approval"
    assert "was completed (final decision by Zhang Wei)" in row["payload"]["body_text"]
    assert "Comment: 金额核对无误" in row["payload"]["body_text"]
    rejected = _decided(tid, by=boss, status="rejected", assignee=agent, decision="reject")
    await _apply(raw, rejected)  # zh-CN tenant
    [row] = [r for r in await _deliveries(raw, tid) if str(rejected.id) in r["dedupe_key"]]
    assert row["payload"]["subject"] == "[#77] 已驳回：refund_approval"
    assert "（由 Zhang Wei 作出最终决定）" in row["payload"]["body_text"]


def _notify(ticket_id: uuid.UUID, to: list[str], *, assignee: uuid.UUID | None = None,
            at: datetime | None = None) -> events.TicketNotificationRequested:
    return events.TicketNotificationRequested(
        source="ticket-svc", subject=str(ticket_id), time=at or datetime.now(UTC),
        data=events.TicketNotificationRequestedData(
            ticket_id=ticket_id, number=77, rule="VIP 工单提醒", to=to, subject="VIP 客户在等待 / VIP waiting",
            body="请尽快处理。\nPlease handle it soon.", assignee_id=assignee, at=at or datetime.now(UTC)))


async def test_a_triggers_notify_action_reaches_the_assignee_a_user_and_the_requester_once(raw) -> None:
    agent, other = uuid.uuid4(), uuid.uuid4()
    for u in (_user(agent, "Li Na"), _user(other, "Chen Jing")):
        await _apply(raw, u)
    ticket = _ticket(assignee=agent)
    await _apply(raw, ticket)
    tid = ticket.data.ticket_id
    asked = _notify(tid, ["assignee", f"user:{other}", f"user:{agent}", "requester", "the boss"], assignee=agent)
    await _apply(raw, asked)
    await _apply(raw, asked)  # redelivered: nothing more

    rows = {r["payload"]["recipient_ref"]: r for r in await _deliveries(raw, tid)}
    assert set(rows) == {f"user:{agent}", f"user:{other}", "customer"}  # the assignee named twice: once
    assert rows[f"user:{agent}"]["payload"]["route"] == {"to": "li.na@example.com"}
    assert rows[f"user:{other}"]["payload"]["route"] == {"to": "chen.jing@example.com"}
    assert rows["customer"]["payload"]["route"] == {"to": "wang.fang@example.com", "cc": []}
    for row in rows.values():
        payload = row["payload"]
        assert row["kind"] == "notification" and row["dedupe_key"].startswith(f"notification:{asked.id}:")
        assert payload["subject"] == "VIP 客户在等待 / VIP waiting" and payload["rule"] == "VIP 工单提醒"
        assert payload["body_text"] == "请尽快处理。\nPlease handle it soon." and payload["automatic"] is True
        assert payload["number"] == 77
    assert await _log(raw, tid) == sorted([
        ("notification_requested", "customer", "queued", None, "VIP 工单提醒"),
        ("notification_requested", "notify:the boss", "skipped",
         "not assignee, team_supervisors, supervisors, requester or user:<id>", "VIP 工单提醒"),
        ("notification_requested", f"user:{agent}", "queued", None, "VIP 工单提醒"),
        ("notification_requested", f"user:{other}", "queued", None, "VIP 工单提醒")])


async def test_a_notify_action_respects_the_opt_out_and_says_who_could_not_be_reached(raw) -> None:
    boss = uuid.uuid4()
    await _apply(raw, _user(boss, "Zhang Wei", "supervisor"))
    ticket = _ticket(email="quiet@example.com")
    await _apply(raw, ticket)
    supervised = _notify(ticket.data.ticket_id, ["supervisors", "followers"])
    await _apply(raw, supervised)
    [row] = await _deliveries(raw, ticket.data.ticket_id)
    assert row["payload"]["recipient_ref"] == f"user:{boss}" and row["payload"]["route"] == {"to": "zhang.wei@example.com"}
    assert [(r, s, why) for _, r, s, why, _ in await _log(raw, ticket.data.ticket_id)] == [
        ("notify:followers", "skipped", "followers are not known to notify-svc: name them as user:<id>"),
        (f"user:{boss}", "queued", None)]
    await raw.execute("DELETE FROM notification_log WHERE event_id = $1", supervised.id)
    await raw.execute("DELETE FROM deliveries WHERE event_id = $1", supervised.id)
    await raw.execute("INSERT INTO notification_opt_outs (kind, value, opted_out) VALUES ('email', 'quiet@example.com', true)")
    tid = ticket.data.ticket_id
    await _apply(raw, _notify(tid, ["requester", "assignee"]))
    assert await _deliveries(raw, tid) == []
    assert [(k, r, s, why) for k, r, s, why, _ in await _log(raw, tid)] == [
        ("notification_requested", "assignee", "skipped", "the ticket has no assignee"),
        ("notification_requested", "customer", "skipped", "the customer opted out of notifications")]
    stale = _notify(tid, ["requester"], at=datetime.now(UTC) - timedelta(days=2))
    await raw.execute("DELETE FROM notification_opt_outs")
    await _apply(raw, stale)
    assert await _deliveries(raw, tid) == []


def test_approvers_are_named_by_id_or_user_ref_and_counted_once() -> None:
    a, b = uuid.uuid4(), uuid.uuid4()
    users = {str(u): rules.UserView(user_id=str(u), name=n, email=f"{n}@example.com") for u, n in ((a, "a"), (b, "b"))}
    occ = rules.Occurrence("approval_requested", uuid.uuid4(), datetime.now(UTC), str(uuid.uuid4()),
                           approvers=(f"user:{a}", str(a).upper(), str(b)))
    rule = rules.Rule("approval_requested", True, ("approvers", "users"), user_ids=(str(b),))
    intents = rules.evaluate(occ, rule=rule, ticket=rules.TicketView(ticket_id=occ.ticket_id), users=users,
                             supervisors=[], customer_opted_out=False, now=datetime.now(UTC))
    assert [(i.recipient, i.channel, i.skip) for i in intents] == [(f"user:{a}", "email", None),
                                                                   (f"user:{b}", "email", None)]
    assert rules.evaluate(occ, rule=rules.Rule("approval_requested", True, ("assignee",)),
                          ticket=rules.TicketView(ticket_id=occ.ticket_id), users=users, supervisors=[],
                          customer_opted_out=False, now=datetime.now(UTC))[0].skip == "the ticket has no assignee"
