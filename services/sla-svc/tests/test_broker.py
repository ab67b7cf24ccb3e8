"""The whole service on the test broker: ticket events in, SLA events out on sla.events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from aiokafka import AIOKafkaConsumer

from helpdesk_common import events
from helpdesk_common.identity import Principal
from helpdesk_common.testing import identity_headers, produce, wait_for

ADMIN = identity_headers(Principal(kind="user", id="admin", role="admin"))


async def test_breach_and_escalation_reach_the_topic_and_pause_comes_through(full, infra, make):
    team = "2b9f8a3c-1d5e-4f6a-9b7c-0d1e2f3a4b5c"
    r = await full.post("/v1/sla/policies", headers=ADMIN, json={
        "name": "fast", "conditions": {"channel": ["wechat"]},
        "targets": {"first_response": {"minutes": 1}, "resolution": {"minutes": 60}},
        "escalations": {"first_response": {"set_priority": "urgent", "set_team_id": team, "notify": ["supervisor"]}},
    })
    assert r.status_code == 201, r.text
    now = datetime.now(UTC)
    late = make.created(at=now - timedelta(minutes=2), channel="wechat")  # its first response is already overdue
    paused = make.created(at=now, channel="wechat")
    await produce(infra.kafka_bootstrap, full.topics, late, paused,
                  make.status(paused.data.ticket_id, "new", "pending", now + timedelta(seconds=1)))

    consumer = AIOKafkaConsumer(full.topics + events.SLA_TOPIC, bootstrap_servers=infra.kafka_bootstrap,
                                group_id=None, auto_offset_reset="earliest")
    await consumer.start()
    seen: list = []
    try:
        async def arrived():
            for records in (await consumer.getmany(timeout_ms=300)).values():
                seen.extend(events.decode(rec.value) for rec in records)
            kinds = {(e.subject, e.type) for e in seen}
            return {(str(late.data.ticket_id), "sla.escalation_requested"),
                    (str(paused.data.ticket_id), "sla.paused")} <= kinds
        await wait_for(arrived, timeout=30)
    finally:
        await consumer.stop()
    mine = [e for e in seen if e.subject == str(late.data.ticket_id)]
    assert [e.type for e in mine if e.data.metric == "first_response"] == [
        "sla.applied", "sla.breached", "sla.escalation_requested"]
    escalation = next(e for e in mine if e.type == "sla.escalation_requested")
    assert escalation.data.actions.model_dump(mode="json") == {
        "set_priority": "urgent", "set_team_id": team, "notify": ["supervisor"]}
    other = [(e.type, e.data.metric) for e in seen if e.subject == str(paused.data.ticket_id)]
    assert sorted(other) == sorted([("sla.applied", "first_response"), ("sla.applied", "resolution"),
                                    ("sla.paused", "first_response"), ("sla.paused", "resolution")])
