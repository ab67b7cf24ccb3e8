"""``POST /v1/tickets`` without an Idempotency-Key, with no routing rule, trigger, automation or
process configured, is one statement: the ticket, its message, its audit entry and
``ticket.created`` written atomically by themselves, with no BEGIN and COMMIT around them. Whatever
else a creation writes (a key's claim, a rule's assignment, a trigger's effect) runs in one
transaction with it, as before."""

from __future__ import annotations

import asyncio
import contextlib
from contextvars import ContextVar
from typing import Any

import pytest
from sqlalchemy import text

from helpdesk_common.identity import Principal
from helpdesk_common.testing import identity_headers, running_app, service_env

WEB = identity_headers(Principal(kind="channel", id="key-1", channel="web"))
ADMIN = identity_headers(Principal(kind="user", id="u-admin", role="admin"))
BODY = {"subject": "打印机坏了 / printer broken", "description": "Since this morning.",
        "requester": {"name": "王小明", "email": "xiaoming@example.com"}, "type": "incident"}


#: set while a request is being counted; a task started before (the relay, the schedulers)
#: does not see it, so their statements are not the request's
_COUNTING: ContextVar[bool] = ContextVar("counting", default=False)


class _LoggedPool:
    """The runtime's raw pool, logging the statements of the connections the counted request
    acquires (``statements``)."""

    def __init__(self, pool: Any) -> None:
        self._pool = pool
        self.sent: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pool, name)

    @contextlib.asynccontextmanager
    async def acquire(self, *args: Any, **kwargs: Any):
        def log(entry: Any) -> None:
            self.sent.append(entry.query)

        async with self._pool.acquire(*args, **kwargs) as conn:
            if not _COUNTING.get():
                yield conn
                return
            conn.add_query_logger(log)
            try:
                yield conn
            finally:
                await asyncio.sleep(0.05)  # a logger runs after its statement, on the next loop pass
                conn.remove_query_logger(log)

    async def statements(self, request) -> list[str]:
        """What ``request`` (a coroutine) ran, type introspection and the caches' plain reads
        (routing rules, triggers, automations, forms, process definitions: refreshed every few
        seconds, outside any transaction or in it) left out; a locking read stays in."""
        self.sent.clear()
        token = _COUNTING.set(True)
        try:
            response = await request
        finally:
            _COUNTING.reset(token)
        assert response.status_code in (200, 201), response.text
        return [q for q in self.sent if "typeinfo_tree" not in q and not _cache_read(q)]


def _cache_read(query: str) -> bool:
    return (query.startswith("SELECT ") and " FOR " not in query and "advisory" not in query
            and any(f"FROM {table}" in query for table in _CACHED))


_CACHED = ("routing_rules", "triggers", "automations", "forms", "process_definitions")


@pytest.fixture
async def api(infra, ticket_db, monkeypatch):
    service_env(monkeypatch, infra, "TICKET_", ticket_db)
    monkeypatch.setenv("TICKET_CONSUMERS_ENABLED", "false")
    from ticket_svc.config import Settings
    from ticket_svc.main import create_app

    from ticket_svc.automation import service as automation
    from ticket_svc.processes import runtime as processes
    from ticket_svc.routing import service as routing

    # this process's caches may hold another test database's rules
    routing.RULES.invalidate()
    automation.invalidate()
    monkeypatch.setattr(processes, "DEFINED", processes._Defined())
    app = create_app(Settings())
    async with running_app(app) as client:
        runtime = app.state.runtime
        logged = _LoggedPool(runtime.raw_pool)
        runtime.raw_pool = logged
        client.logged = logged
        yield client
        runtime.raw_pool = logged._pool


async def _rows(db, ticket_id: str) -> tuple[int, int, int]:
    async with db.connect() as conn:
        return tuple([await conn.scalar(text(f"SELECT count(*) FROM {table} WHERE {column} = :t"), {"t": ticket_id})
                      for table, column in (("messages", "ticket_id"), ("ticket_audit", "ticket_id"),
                                            ("outbox", "key"))])


async def test_a_plain_creation_is_one_statement_without_a_transaction(api, db):
    await api.post("/v1/tickets", json=BODY, headers=WEB)  # the caches' first reads
    sent = await api.logged.statements(api.post("/v1/tickets", json=BODY, headers=WEB))
    assert len(sent) == 1 and sent[0].startswith("WITH requester_customer AS ("), sent
    assert "t AS (INSERT INTO tickets" in sent[0], sent
    created = (await api.post("/v1/tickets", json=BODY, headers=WEB)).json()
    assert await _rows(db, created["id"]) == (1, 1, 1)  # its message, its audit entry, ticket.created


async def test_an_idempotency_key_claims_in_the_tickets_transaction(api, db):
    await api.post("/v1/tickets", json=BODY, headers=WEB)
    keyed = {**WEB, "Idempotency-Key": "k-1"}
    sent = await api.logged.statements(api.post("/v1/tickets", json=BODY, headers=keyed))
    assert sent[0] == "BEGIN;" and sent[-1] == "COMMIT;" and len(sent) == 4, sent
    again = await api.post("/v1/tickets", json=BODY, headers=keyed)
    assert again.headers.get("idempotent-replayed") == "true"
    async with db.connect() as conn:
        assert await conn.scalar(text("SELECT count(*) FROM tickets")) == 2


async def test_a_routing_rule_or_a_trigger_puts_the_creation_in_a_transaction(api, db):
    await api.post("/v1/tickets", json=BODY, headers=WEB)
    team = (await api.post("/v1/teams", json={"name": "一线 / first line", "strategy": "manual"},
                           headers=ADMIN)).json()
    rule = await api.post("/v1/routing/rules", json={"name": "incidents", "actions": {"set_team": team["id"]}},
                          headers=ADMIN)
    assert rule.status_code == 201, rule.text
    from ticket_svc.routing import service as routing

    routing.RULES.invalidate()
    sent = await api.logged.statements(api.post("/v1/tickets", json=BODY, headers=WEB))
    assert sent[0] == "BEGIN;" and sent[-1] == "COMMIT;", sent
    routed = (await api.post("/v1/tickets", json=BODY, headers=WEB)).json()
    assert routed["team_id"] == team["id"]
    assert (await api.delete(f"/v1/routing/rules/{rule.json()['id']}", headers=ADMIN)).status_code == 204
    routing.RULES.invalidate()
    assert len(await api.logged.statements(api.post("/v1/tickets", json=BODY, headers=WEB))) == 1

    trigger = await api.post("/v1/triggers", json={
        "name": "tag new incidents", "conditions": {"all": [{"field": "type", "op": "eq", "value": "incident"}]},
        "actions": [{"type": "add_tags", "tags": ["新事件"]}]}, headers=ADMIN)
    assert trigger.status_code == 201, trigger.text
    sent = await api.logged.statements(api.post("/v1/tickets", json=BODY, headers=WEB))
    assert sent[0] == "BEGIN;" and sent[-1] == "COMMIT;", sent
    tagged = (await api.post("/v1/tickets", json=BODY, headers=WEB)).json()
    assert "新事件" in tagged["tags"]


async def test_a_refused_creation_writes_nothing(api, db):
    refused = await api.post("/v1/tickets", json={**BODY, "custom_fields": {"x": "y" * 70_000}}, headers=WEB)
    assert refused.status_code == 422, refused.text
    async with db.connect() as conn:
        assert await conn.scalar(text("SELECT count(*) FROM tickets")) == 0
        assert await conn.scalar(text("SELECT count(*) FROM outbox")) == 0


async def test_a_named_team_or_an_automation_puts_the_creation_in_a_transaction(api, db):
    await api.post("/v1/tickets", json=BODY, headers=WEB)
    team = (await api.post("/v1/teams", json={"name": "二线 / second line", "strategy": "manual"},
                           headers=ADMIN)).json()
    sent = await api.logged.statements(api.post("/v1/tickets", json={**BODY, "team_id": team["id"]}, headers=ADMIN))
    assert sent[0] == "BEGIN;" and "COMMIT;" in sent, sent  # (an admin's read of the requester is logged after)
    automation = await api.post("/v1/automations", json={
        "name": "close old incidents",
        "conditions": {"all": [{"field": "hours_since.created", "op": "gte", "value": 96}]},
        "actions": [{"type": "set_field", "field": "status", "value": "closed"}]}, headers=ADMIN)
    assert automation.status_code == 201, automation.text
    sent = await api.logged.statements(api.post("/v1/tickets", json=BODY, headers=WEB))
    assert sent[0] == "BEGIN;" and sent[-1] == "COMMIT;", sent
    async with db.connect() as conn:  # the new ticket's automation timer was planned with it
        assert await conn.scalar(text("SELECT count(*) FROM ticket_timers")) >= 1
