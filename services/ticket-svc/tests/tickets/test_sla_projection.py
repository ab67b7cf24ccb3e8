"""sla-svc events through the real broker into the ticket's SLA colour and list filter."""

import uuid
from datetime import UTC, datetime, timedelta

from helpdesk_common import events
from helpdesk_common.identity import Principal
from helpdesk_common.testing import identity_headers, produce, wait_for
from ticket_svc.sla import colour

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
    await produce(infra.kafka_bootstrap, full_client.topics, alert("warning", tid, "first_response", first_due, 0.9))
    await wait_for(lambda: state("red"))
    await produce(infra.kafka_bootstrap, full_client.topics, alert("breached", tid, "first_response", first_due))
    body = await wait_for(lambda: state("breached"))
    assert datetime.fromisoformat(body["sla"]["next_due_at"]) == resolution_due
    listed = (await full_client.get("/v1/tickets", params={"sla_state": "breached"}, headers=identity_headers(AGENT))).json()
    assert [t["id"] for t in listed["items"]] == [created["id"]]
    none = (await full_client.get("/v1/tickets", params={"sla_state": "none"}, headers=identity_headers(AGENT))).json()
    assert [t["id"] for t in none["items"]] == [other["id"]]
