"""End to end inside notify-svc, on the real broker and database: events on tickets.events and
users.events go through the service's consumer (inbox), become notification deliveries, and the
dispatcher sends each once through the (recording) e-mail adapter as an automatic message."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import pytest

from helpdesk_common import events
from helpdesk_common.testing import produce, running_app, service_env, wait_for

from notify_svc.channels.base import OutboundMessage, SendResult

pytestmark = pytest.mark.timeout(180)


class RecordingAdapter:
    def __init__(self, channel: str) -> None:
        self.channel = channel
        self.sent: list[OutboundMessage] = []

    async def send(self, message: OutboundMessage) -> SendResult:
        self.sent.append(message)
        return SendResult("sent", provider_id=f"p-{len(self.sent)}")

    async def close(self) -> None:
        return None


@pytest.fixture
async def notify(infra, notify_db, secret_key, monkeypatch):
    topics = service_env(monkeypatch, infra, "NOTIFY_", notify_db)
    monkeypatch.setenv("NOTIFY_SECRET_KEY", secret_key)
    monkeypatch.setenv("NOTIFY_DISPATCHER_POLL_INTERVAL_S", "0.2")
    monkeypatch.setenv("NOTIFY_NOTIFICATION_DEFAULT_LANGUAGE", "zh-CN")
    from notify_svc.config import Settings
    from notify_svc.main import create_app

    email = RecordingAdapter("email")
    app = create_app(Settings(), adapters={"email": email})
    async with running_app(app) as client:
        client.topics, client.email, client.bootstrap = topics, email, infra.kafka_bootstrap

        async def raw_state():
            async with app.state.runtime.raw_connection() as conn:
                return {"inbox": [tuple(r) for r in await conn.fetch("SELECT consumer, event_type FROM inbox")],
                        "deliveries": [tuple(r) for r in await conn.fetch("SELECT kind, status, attempts FROM deliveries")],
                        "consumers": [(c.name, c.healthy) for c in app.state.runtime.consumers]}

        async def agent_known():
            async with app.state.runtime.raw_connection() as conn:
                return await conn.fetchval("SELECT count(*) FROM notification_users") > 0

        client.raw_state = raw_state
        client.agent_known = agent_known
        yield client


async def test_events_become_notifications_sent_once(notify) -> None:
    agent_id, ticket_id = uuid.uuid4(), uuid.uuid4()
    agent = events.UserCreated(source="gateway", subject=str(agent_id), data=events.UserCreatedData(
        user_id=agent_id, version=1, display_name="Li Na", role="agent", active=True, email="li.na@example.com"))
    created = events.TicketCreated(source="ticket-svc", subject=str(ticket_id), data=events.TicketCreatedData(
        ticket_id=ticket_id, subject="Printer offline", status="new", priority="normal", channel="email",
        requester=events.Requester(name="Wang Fang", email="wang.fang@example.com"), created_by="channel:email",
        created_at=datetime.now(UTC), number=101, language="en"))
    assigned = events.TicketAssigned(source="ticket-svc", subject=str(ticket_id), data=events.TicketAssignedData(
        ticket_id=ticket_id, number=101, status="open", priority="normal", assignee_id=str(agent_id),
        actor="system:routing", reason="round_robin", assigned_at=datetime.now(UTC), version=2))
    await produce(notify.bootstrap, notify.topics, agent)
    # users.events and tickets.events are separate topics, in no order to each other: the agent
    # must be known before the assignment (else it is skipped as "unknown user", and logged)
    await wait_for(notify.agent_known, timeout=90)
    await produce(notify.bootstrap, notify.topics, created, created, assigned)  # a redelivered ticket.created

    async def both_sent():
        return len(notify.email.sent) >= 2 and notify.email.sent

    try:
        sent = await wait_for(both_sent, timeout=90)
    except AssertionError:
        rows = await notify.raw_state()
        raise AssertionError(f"not sent; state: {rows}") from None
    await asyncio.sleep(1.0)  # nothing more comes
    assert len(notify.email.sent) == 2
    by_to = {m.route["to"]: m for m in sent}
    ack = by_to["wang.fang@example.com"]
    assert ack.automatic and ack.language == "en" and ack.subject == "[#101] We received your request: Printer offline"
    assert ack.extra["number"] == 101
    assignment = by_to["li.na@example.com"]
    assert assignment.automatic and assignment.subject == "[#101] 工单已分配给您：Printer offline"
    assert assignment.delivery_id != ack.delivery_id
