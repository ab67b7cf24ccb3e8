"""The handlers on a real PostgreSQL: projections, then one delivery of kind ``notification`` per
(event, recipient) in the consumer's transaction, skips recorded with their reason, and a
redelivered event sending nothing twice."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from helpdesk_common import events
from notify_svc.config import Settings
from notify_svc.notifications.handlers import handlers

pytestmark = pytest.mark.timeout(120)

AGENT, SUPERVISOR = uuid.uuid4(), uuid.uuid4()


def _settings() -> Settings:
    return Settings(notification_default_language="zh-CN", notification_agent_url="https://desk.example.com/")


async def _apply(raw, event) -> None:
    handler = handlers(_settings())[event.type]
    async with raw.transaction():
        await handler(raw, event)


def created(*, language="en", created_by="channel:web", email="wang.fang@example.com", team_id=None):
    tid = uuid.uuid4()
    return events.TicketCreated(source="ticket-svc", subject=str(tid), data=events.TicketCreatedData(
        ticket_id=tid, subject="Printer offline", status="new", priority="high", channel="email",
        requester=events.Requester(name="王芳", email=email), created_by=created_by,
        created_at=datetime.now(UTC), number=42, language=language, team_id=team_id))


def user(user_id, role, version=1, email=None, **kw):
    return events.UserCreated(source="gateway", subject=str(user_id), data=events.UserCreatedData(
        user_id=user_id, version=version, display_name=kw.get("name", "Li Na"), role=role, active=kw.get("active", True),
        email=email))


async def deliveries(raw, ticket_id=None):
    return [dict(r) for r in await raw.fetch(
        "SELECT id, kind, channel, destination, dedupe_key, payload, ticket_id, event_id, status FROM deliveries "
        "WHERE kind = 'notification' AND ($1::uuid IS NULL OR ticket_id = $1) ORDER BY created_at, id", ticket_id)]


async def log(raw, ticket_id):
    return [(r["key"], r["recipient"], r["status"], r["reason"]) for r in await raw.fetch(
        "SELECT key, recipient, status, reason FROM notification_log WHERE ticket_id = $1 ORDER BY created_at, recipient",
        ticket_id)]


async def test_ticket_created_queues_one_acknowledgement_and_a_redelivery_sends_nothing_twice(raw) -> None:
    event = created(language="zh-CN")
    await _apply(raw, event)
    await _apply(raw, event)  # the same event again (the inbox would stop it; the dedupe key does too)
    rows = await deliveries(raw, event.data.ticket_id)
    assert len(rows) == 1
    row = rows[0]
    assert row["kind"] == "notification" and row["channel"] == "email" and row["destination"] == "smtp"
    assert row["event_id"] == event.id and row["status"] == "queued"
    assert row["dedupe_key"] == f"notification:{event.id}:ticket_received:customer"
    payload = row["payload"]
    assert payload["route"] == {"to": "wang.fang@example.com", "cc": []} and payload["number"] == 42
    assert payload["language"] == "zh-CN" and payload["automatic"] is True
    assert payload["subject"] == "[#42] 我们已收到您的请求：Printer offline"
    assert "工单编号为 #42" in payload["body_text"] and "#42" in payload["body_html"]
    assert await log(raw, event.data.ticket_id) == [("ticket_received", "customer", "queued", None)]


async def test_the_customers_language_then_the_tenant_default(raw) -> None:
    english, unknown = created(language="en-GB"), created(language="fr")
    for event in (english, unknown):
        await _apply(raw, event)
    assert (await deliveries(raw, english.data.ticket_id))[0]["payload"]["language"] == "en"
    # no French template: the tenant default (zh-CN in these settings), not English
    assert (await deliveries(raw, unknown.data.ticket_id))[0]["payload"]["language"] == "zh-CN"


async def test_agent_created_tickets_and_opted_out_customers(raw) -> None:
    by_agent = created(created_by=f"user:{AGENT}")
    await _apply(raw, by_agent)
    assert await deliveries(raw, by_agent.data.ticket_id) == [] and await log(raw, by_agent.data.ticket_id) == []

    await raw.execute("INSERT INTO notification_opt_outs (kind, value, opted_out) VALUES ('email', $1, true)",
                      "wang.fang@example.com")
    event = created(email="Wang.Fang@Example.com")
    await _apply(raw, event)
    assert await deliveries(raw, event.data.ticket_id) == []
    assert await log(raw, event.data.ticket_id) == [
        ("ticket_received", "customer", "skipped", "the customer opted out of notifications")]
    # and once customer-svc links the customer, an opt-out by customer id applies too
    other = created(email="someone@example.com")
    customer_id = uuid.uuid4()
    await raw.execute("INSERT INTO notification_opt_outs (kind, value, opted_out) VALUES ('customer', $1, true)",
                      str(customer_id))
    await _apply(raw, other)  # acknowledged: not linked yet
    await _apply(raw, events.TicketCustomerLinked(source="ticket-svc", subject=str(other.data.ticket_id),
                                                  data=events.TicketCustomerLinkedData(
                                                      ticket_id=other.data.ticket_id, customer_id=customer_id)))
    solved = events.TicketStatusChanged(source="ticket-svc", subject=str(other.data.ticket_id),
                                        data=events.TicketStatusChangedData(
                                            ticket_id=other.data.ticket_id, from_status="open", to_status="solved",
                                            changed_at=datetime.now(UTC), version=3))
    await _apply(raw, solved)
    assert await log(raw, other.data.ticket_id) == [
        ("ticket_received", "customer", "queued", None),
        ("ticket_solved", "customer", "skipped", "the customer opted out of notifications")]


async def test_an_opt_out_of_a_customer_linked_before_the_creation_arrived_applies_to_it(raw) -> None:
    """The creation's insert reads the opt-out of the row it leaves (its customer may come from a
    link that arrived first, on another partition)."""
    event, customer_id = created(email="linked.first@example.com"), uuid.uuid4()
    await raw.execute("INSERT INTO notification_opt_outs (kind, value, opted_out) VALUES ('customer', $1, true)",
                      str(customer_id))
    await _apply(raw, events.TicketCustomerLinked(source="customer-svc", subject=str(event.data.ticket_id),
                                                  data=events.TicketCustomerLinkedData(
                                                      ticket_id=event.data.ticket_id, customer_id=customer_id)))
    await _apply(raw, event)
    assert await deliveries(raw, event.data.ticket_id) == []
    assert await log(raw, event.data.ticket_id) == [
        ("ticket_received", "customer", "skipped", "the customer opted out of notifications")]


async def test_an_acknowledgement_takes_two_statements_with_its_log_entry(raw) -> None:
    """The projection row with the opt-out that applies and the rule with its templates, then the
    delivery with its log entry: two round trips (and BEGIN) per new ticket."""
    await _apply(raw, created())  # the first use of each statement loads its types
    event, sent = created(), []

    def record(entry) -> None:
        sent.append(entry.query)

    raw.add_query_logger(record)
    try:
        await _apply(raw, event)
    finally:
        raw.remove_query_logger(record)
    statements = [q for q in sent if "typeinfo_tree" not in q and not q[:1].isspace() and q != "COMMIT;"]
    assert len(statements) == 3 and statements[0] == "BEGIN;", statements
    [row] = await deliveries(raw, event.data.ticket_id)
    [entry] = await raw.fetch("SELECT status, channel, delivery_id FROM notification_log WHERE ticket_id = $1",
                              event.data.ticket_id)
    assert tuple(entry) == ("queued", "email", row["id"])


async def test_team_override_switches_the_rule_off_for_that_team(raw) -> None:
    team = uuid.uuid4()
    await raw.execute("INSERT INTO notification_rule_teams (rule_key, team_id, enabled) VALUES ('ticket_received', $1, false)",
                      team)
    quiet, normal = created(team_id=team), created(team_id=uuid.uuid4())
    for event in (quiet, normal):
        await _apply(raw, event)
    assert await deliveries(raw, quiet.data.ticket_id) == []
    assert len(await deliveries(raw, normal.data.ticket_id)) == 1


async def test_assignment_and_breach_reach_agents_by_their_channel(raw) -> None:
    await _apply(raw, user(AGENT, "agent", email="Li.Na@Example.com"))
    await _apply(raw, user(SUPERVISOR, "supervisor", name="王强", email="wang.qiang@example.com"))
    await _apply(raw, user(AGENT, "agent", version=0, name="stale", email="old@example.com"))  # older: ignored
    await raw.execute("INSERT INTO notification_contacts (user_id, dingtalk_userid) VALUES ($1, 'staff-7')", SUPERVISOR)
    await raw.execute("UPDATE notification_rules SET agent_channel = 'dingtalk' WHERE key = 'sla_breached'")
    ticket = created()
    await _apply(raw, ticket)
    tid = ticket.data.ticket_id
    assigned = events.TicketAssigned(source="ticket-svc", subject=str(tid), data=events.TicketAssignedData(
        ticket_id=tid, assignee_id=str(AGENT), actor=f"user:{SUPERVISOR}", reason="manual",
        assigned_at=datetime.now(UTC), version=2, number=42, status="open", priority="high"))
    await _apply(raw, assigned)
    breach = events.SlaBreached(source="sla-svc", subject=str(tid), data=events.SlaAlertData(
        ticket_id=tid, metric="first_response", due_at=datetime(2026, 11, 30, 6, 0, tzinfo=UTC),
        assignee_id=str(AGENT)))
    await _apply(raw, breach)
    await _apply(raw, breach)
    rows = await deliveries(raw, tid)
    summary = [(r["payload"]["key"], r["channel"], r["payload"]["route"]) for r in rows]
    assert summary[0][0] == "ticket_received"
    assert sorted(summary[1:], key=str) == sorted([
        ("ticket_assigned", "email", {"to": "li.na@example.com"}),
        ("sla_breached", "email", {"to": "li.na@example.com"}),
        ("sla_breached", "dingtalk", {"userid": "staff-7"}),
    ], key=str)
    assigned_row = next(r for r in rows if r["payload"]["key"] == "ticket_assigned")
    # agents get the tenant default language (zh-CN here) and a link to the ticket
    assert assigned_row["payload"]["subject"] == "[#42] 工单已分配给您：Printer offline"
    assert f"https://desk.example.com/tickets/{tid}" in assigned_row["payload"]["body_text"]
    breach_row = next(r for r in rows if r["channel"] == "dingtalk")
    assert "2026-11-30 06:00 UTC" in breach_row["payload"]["body_text"] and "Li Na" in breach_row["payload"]["body_text"]


async def test_the_user_projection_keeps_the_newest_version_and_takes_an_address_announced_later(raw) -> None:
    uid = uuid.uuid4()

    async def state():
        row = await raw.fetchrow("SELECT version, name, role, email FROM notification_users WHERE user_id = $1", uid)
        return tuple(row)

    await _apply(raw, user(uid, "agent", version=2, name="New"))  # from a gateway before the field: no address
    assert await state() == (2, "New", "agent", None)
    await _apply(raw, user(uid, "supervisor", version=1, name="Old", email="old@example.com"))  # older: nothing
    assert await state() == (2, "New", "agent", None)
    # the gateway's migration 0005: the same version again, with the address
    await _apply(raw, user(uid, "supervisor", version=2, name="ignored", email="Li.Na@Example.com"))
    assert await state() == (2, "New", "agent", "li.na@example.com")
    await _apply(raw, user(uid, "agent", version=2, email="other@example.com"))  # an address is not replaced so
    assert await state() == (2, "New", "agent", "li.na@example.com")
    await _apply(raw, user(uid, "admin", version=3, name="Newer"))  # a newer event without one keeps it
    assert await state() == (3, "Newer", "admin", "li.na@example.com")


async def test_the_creation_reads_its_rule_and_stored_template_with_the_ticket(raw) -> None:
    """``ticket.created`` takes the rule from the statement that projects the ticket: a stored
    template in the ticket's language is what is sent, and the rule switched off sends nothing."""
    await raw.execute("INSERT INTO notification_templates (key, language, subject, body_text, body_html) "
                      "VALUES ('ticket_received', 'zh-CN', '已收到 {{ ticket.number }}', '正文', '')")
    event = created(language="zh-CN")
    await _apply(raw, event)
    [row] = await deliveries(raw, event.data.ticket_id)
    assert row["payload"]["subject"] == "已收到 42", row["payload"]
    await raw.execute("UPDATE notification_rules SET enabled = false WHERE key = 'ticket_received'")
    quiet = created(language="zh-CN")
    await _apply(raw, quiet)
    assert await deliveries(raw, quiet.data.ticket_id) == []


async def test_a_creation_without_its_rule_sends_nothing(raw) -> None:
    """No ``ticket_received`` rule (the join finds none): the ticket is projected, nothing is queued."""
    event = created()

    class Undo(Exception):
        pass

    try:
        async with raw.transaction():
            await raw.execute("DELETE FROM notification_rules WHERE key = 'ticket_received'")
            await _apply(raw, event)
            assert await raw.fetchval("SELECT count(*) FROM notification_tickets WHERE ticket_id = $1",
                                      event.data.ticket_id) == 1
            assert await deliveries(raw, event.data.ticket_id) == []
            raise Undo
    except Undo:
        pass  # the seeded rule is back for the other tests


def test_the_projection_and_the_rule_share_no_column_name() -> None:
    """``insert_ticket`` returns ``t.*, r.*``: a name in both would hide one of them in the row."""
    from notify_svc.notifications import repository

    ticket = {c.strip() for c in repository._TICKET.split(",")} | {"opted_out_by"}
    rule = {c.strip() for c in repository._RULE.split(",")} | {"team_ids", "team_enabled", "templates"}
    assert not ticket & rule, ticket & rule
