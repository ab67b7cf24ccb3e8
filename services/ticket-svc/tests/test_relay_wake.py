"""The outbox relay is woken after a commit that wrote outbox rows, and only then: woken after
every transaction, it made a pass (a transaction, the advisory lock, the pending-rows query)
after nearly every request and consumer batch for nothing (helpdesk_common.outbox.watching_writes)."""

from __future__ import annotations

from sqlalchemy import text

from helpdesk_common import events
from helpdesk_common.identity import Principal
from helpdesk_common.outbox import enqueue_raw
from helpdesk_common.testing import identity_headers, running_app, service_env

CHANNEL = Principal(kind="channel", id="key-1", channel="web")


async def test_the_relay_is_woken_after_commits_that_wrote_outbox_rows_only(infra, ticket_db, monkeypatch) -> None:
    service_env(monkeypatch, infra, "TICKET_", ticket_db)
    monkeypatch.setenv("TICKET_CONSUMERS_ENABLED", "false")
    monkeypatch.setenv("TICKET_TIMERS_ENABLED", "false")
    from ticket_svc.config import Settings
    from ticket_svc.db import outbox
    from ticket_svc.main import create_app

    app = create_app(Settings())
    async with running_app(app) as api:
        runtime = app.state.runtime
        wakes: list[str] = []
        monkeypatch.setattr(runtime.relay, "notify", lambda: wakes.append("wake"))

        async with runtime.transaction() as conn:  # reads and writes, but no outbox row
            await conn.execute(text("SELECT count(*) FROM tickets"))
        async with runtime.raw_transaction() as conn:
            await conn.execute("SELECT 1")
        assert wakes == []

        async with runtime.raw_transaction() as conn:
            await enqueue_raw(conn, outbox, events.CustomerCreated(
                source="ticket-svc-test", subject="c-1",
                data=events.CustomerCreatedData(customer_id="7b0a3c4e-3c1f-4f7e-9f44-0c5d3e9b8a11", name=None,
                                                created_at="2026-12-02T00:00:00Z", identities=[])))
        assert wakes == ["wake"]

        created = await api.post("/v1/tickets", headers=identity_headers(CHANNEL), json={
            "subject": "打印机坏了 / printer broken", "description": "x",
            "requester": {"name": "Li", "email": "li@example.com"}})
        assert created.status_code == 201, created.text
        assert wakes == ["wake", "wake"]  # the ticket's events

        refused = await api.post("/v1/tickets", headers=identity_headers(CHANNEL), json={"subject": ""})
        assert refused.status_code == 422
        assert wakes == ["wake", "wake"]
