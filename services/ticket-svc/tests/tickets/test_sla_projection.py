"""sla-svc events through the real broker into the ticket's SLA colour and list filter."""

import random
import uuid
from datetime import UTC, datetime, timedelta

from helpdesk_common import events
from helpdesk_common.db import create_raw_pool
from helpdesk_common.identity import Principal
from helpdesk_common.testing import identity_headers, produce, wait_for
from ticket_svc.sla import colour, repository

CHANNEL = Principal(kind="channel", id="key-1", channel="web")
AGENT = Principal(kind="user", id="u-agent", role="agent")
NOW = datetime.now(UTC)


def alert(kind, ticket_id, metric, due, fraction=None):
    cls = {"warning": events.SlaWarning, "breached": events.SlaBreached}[kind]
    return cls(source="test", subject=str(ticket_id),
               data=events.SlaAlertData(ticket_id=ticket_id, metric=metric, due_at=due, fraction=fraction))


def applied(ticket_id, metric, due):
    return events.SlaApplied(source="test", subject=str(ticket_id), data=events.SlaAppliedData(
        ticket_id=ticket_id, metric=metric, policy="p", target_minutes=60, started_at=NOW, due_at=due))


def test_colour_rules():
    assert colour.state_after("sla.warning", fraction=0.5) == "yellow"
    assert colour.state_after("sla.warning", fraction=0.9) == "red"
    due1, due2 = NOW + timedelta(hours=1), NOW + timedelta(hours=2)
    assert colour.ticket_colour([("green", due2), ("yellow", due1)]) == ("yellow", due1)
    assert colour.ticket_colour([("breached", due1), ("green", due2)]) == ("breached", due2)
    assert colour.ticket_colour([("done", due1), ("paused", due2)]) == (None, None)


async def test_warnings_and_breach_colour_the_ticket_and_filter_the_list(full_client, infra):
    created = (await full_client.post("/v1/tickets", json={"subject": "SLA 测试", "requester": {"email": "s@x.cn"}},
                                      headers=identity_headers(CHANNEL))).json()
    other = (await full_client.post("/v1/tickets", json={"subject": "other", "requester": {"email": "o@x.cn"}},
                                    headers=identity_headers(CHANNEL))).json()
    tid = uuid.UUID(created["id"])
    first_due, resolution_due = NOW + timedelta(minutes=30), NOW + timedelta(hours=8)
    await produce(infra.kafka_bootstrap, full_client.topics, applied(tid, "first_response", first_due),
                  applied(tid, "resolution", resolution_due), alert("warning", tid, "first_response", first_due, 0.5))

    async def state(expected):
        body = (await full_client.get(f"/v1/tickets/{tid}", headers=identity_headers(AGENT))).json()
        return body if body["sla"]["state"] == expected else None

    body = await wait_for(lambda: state("yellow"))
    assert datetime.fromisoformat(body["sla"]["next_due_at"]) == first_due
    # sla.applied of the first response sets its due time in the same statement as the colour
    assert datetime.fromisoformat(body["sla"]["first_response_due_at"]) == first_due
    await produce(infra.kafka_bootstrap, full_client.topics, alert("warning", tid, "first_response", first_due, 0.9))
    await wait_for(lambda: state("red"))
    await produce(infra.kafka_bootstrap, full_client.topics, alert("breached", tid, "first_response", first_due))
    body = await wait_for(lambda: state("breached"))
    assert datetime.fromisoformat(body["sla"]["next_due_at"]) == resolution_due
    listed = (await full_client.get("/v1/tickets", params={"sla_state": "breached"}, headers=identity_headers(AGENT))).json()
    assert [t["id"] for t in listed["items"]] == [created["id"]]
    none = (await full_client.get("/v1/tickets", params={"sla_state": "none"}, headers=identity_headers(AGENT))).json()
    assert [t["id"] for t in none["items"]] == [other["id"]]


async def test_escalation_raises_priority_moves_team_and_notes(full_client, infra, known_users):
    admin = identity_headers(Principal(kind="user", id="u-admin", role="admin"))
    await known_users("esc-1")
    await full_client.put("/v1/agents/esc-1", json={"display_name": "Escalation desk", "status": "online"}, headers=admin)
    team = (await full_client.post("/v1/teams", json={"name": "escalations", "members": ["esc-1"]},
                                   headers=admin)).json()
    created = (await full_client.post("/v1/tickets", json={"subject": "超时未回复", "requester": {"email": "e@x.cn"}},
                                      headers=identity_headers(CHANNEL))).json()
    tid = uuid.UUID(created["id"])
    escalation = events.SlaEscalationRequested(source="test", subject=str(tid), data=events.SlaEscalationRequestedData(
        ticket_id=tid, metric="first_response",
        actions=events.SlaEscalationActions(set_priority="urgent", set_team_id=uuid.UUID(team["id"]), notify=["supervisor"])))
    await produce(infra.kafka_bootstrap, full_client.topics, escalation, escalation)  # twice: applied once

    # the escalation team's agent reads it (an agent of no team lost it with the triage queue)
    desk = identity_headers(Principal(kind="user", id="esc-1", role="agent"))

    async def escalated():
        body = (await full_client.get(f"/v1/tickets/{tid}", headers=desk)).json()
        return body if body["team_id"] == team["id"] else None

    body = await wait_for(escalated)
    assert body["priority"] == "urgent" and body["assignee_id"] == "esc-1"
    assert (await full_client.get(f"/v1/tickets/{tid}", headers=identity_headers(AGENT))).status_code == 404
    notes = [m for m in (await full_client.get(f"/v1/tickets/{tid}/messages", headers=desk)).json()["items"]
             if m["author_kind"] == "system"]
    assert len(notes) == 1 and "supervisor" in notes[0]["body_text"] and notes[0]["public"] is False
    audit = (await full_client.get(f"/v1/tickets/{tid}/audit", headers=desk)).json()["items"]
    assert any(a["actor"] == "system:sla" and a["changes"].get("priority") for a in audit)


def test_the_colour_sla_svc_names_wins():
    assert colour.state_after("sla.warning", fraction=0.75, colour="yellow") == "yellow"
    assert colour.state_after("sla.warning", fraction=0.5, colour="red") == "red"


async def test_the_statement_colours_as_ticket_colour_does(client, ticket_db):
    """``repository.SET_METRIC`` computes the colour in SQL: over random sets of metrics (a new
    one or one replacing its earlier state, a due time kept when the event has none) the ticket
    ends with what ``colour.ticket_colour`` says, in one statement."""
    opened = await client.post("/v1/tickets", headers=identity_headers(CHANNEL),
                               json={"subject": "颜色 colour", "requester": {"email": "colour@example.com"}})
    ticket_id = uuid.UUID(opened.json()["id"])
    states = [*colour.RANK, *colour.INACTIVE]
    metrics = ["first_response", "next_response", "resolution", "periodic_update"]
    rng = random.Random(19)
    pool = await create_raw_pool(ticket_db, size=1)
    try:
        async with pool.acquire() as conn:
            sent: list[str] = []
            conn.add_query_logger(lambda entry: sent.append(entry.query))
            for _ in range(300):
                await conn.execute("DELETE FROM sla_projection WHERE ticket_id = $1", ticket_id)
                stored = {}
                for name in rng.sample(metrics, rng.randint(0, 3)):
                    due = rng.choice([None, NOW + timedelta(minutes=rng.randint(-60, 600))])
                    stored[name] = (rng.choice(states), due)
                    await conn.execute("INSERT INTO sla_projection (ticket_id, metric, state, due_at) "
                                       "VALUES ($1, $2, $3, $4)", ticket_id, name, *stored[name])
                name, state = rng.choice(metrics), rng.choice(states)
                due = rng.choice([None, NOW + timedelta(minutes=rng.randint(-60, 600))])
                stored[name] = (state, due if due is not None or name not in stored else stored[name][1])
                sent.clear()
                await repository.set_metric(conn, ticket_id=ticket_id, metric=name, state=state, due_at=due)
                assert len(sent) == 1
                row = await conn.fetchrow("SELECT sla_state, sla_due_at FROM tickets WHERE id = $1", ticket_id)
                assert (row["sla_state"], row["sla_due_at"]) == colour.ticket_colour(stored.values()), stored
            # the same event again moves nothing, so the ticket is not written (no new change
            # position for the export); the first response's due time rides on its sla.applied
            xid = await conn.fetchval("SELECT change_xid::text FROM tickets WHERE id = $1", ticket_id)
            await repository.set_metric(conn, ticket_id=ticket_id, metric=name, state=state, due_at=due)
            assert await conn.fetchval("SELECT change_xid::text FROM tickets WHERE id = $1", ticket_id) == xid
            due = NOW + timedelta(minutes=42)
            await repository.set_metric(conn, ticket_id=ticket_id, metric="first_response", state="green", due_at=due,
                                        first_response_due=True, first_response_due_at=due)
            row = await conn.fetchrow("SELECT first_response_due_at, change_xid::text AS xid FROM tickets "
                                      "WHERE id = $1", ticket_id)
            assert row["first_response_due_at"] == due and row["xid"] != xid
    finally:
        await pool.close()
