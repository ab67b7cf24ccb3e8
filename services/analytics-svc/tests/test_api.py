"""The KPI endpoint over HTTP (without the bus)."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from analytics_svc.kpis import handlers
from helpdesk_common import events
from helpdesk_common.identity import Principal
from helpdesk_common.testing import identity_headers

# an admin: supervisors and agents are scoped by team (ticket-svc lookups; tests/reports/)
ADMIN = identity_headers(Principal(kind="user", id="u1", role="admin"))
CHANNEL = identity_headers(Principal(kind="channel", id="k", channel="api"))


async def test_kpis_document(api, raw):
    tid = uuid.uuid4()
    async with raw.transaction():
        await handlers.handle_ticket_created(raw, events.TicketCreated(
            source="t", subject=str(tid), data=events.TicketCreatedData(
                ticket_id=tid, subject="s", status="new", priority="low", requester=events.Requester(phone="+1 555"),
                created_by="channel:k", created_at=datetime.now(UTC))))
    before = datetime.now(UTC)
    r = await api.get("/v1/analytics/kpis", headers=ADMIN)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body.keys() >= {"tickets_created_today", "open_tickets", "tickets_total", "tickets_linked_to_customer",
                           "tickets_with_sla", "csat", "nps", "as_of", "tz"}
    assert (body["tickets_total"], body["open_tickets"], body["tickets_with_sla"]) == (1, 1, 0)
    as_of = datetime.fromisoformat(body["as_of"])
    assert body["as_of"].endswith("Z") and before - timedelta(seconds=1) <= as_of <= datetime.now(UTC)
    assert body["tz"] == "UTC"
    shanghai = (await api.get("/v1/analytics/kpis", params={"tz": "Asia/Shanghai"}, headers=ADMIN)).json()
    assert shanghai["tz"] == "Asia/Shanghai" and shanghai["tickets_total"] == 1


@pytest.mark.parametrize("tz", ["Nowhere/City", "localtime", "../../etc/passwd", "", "x" * 65, "Asia/Shanghai\x00"])
async def test_bad_zone_is_a_422_problem(api, tz):
    r = await api.get("/v1/analytics/kpis", params={"tz": tz}, headers=ADMIN)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["errors"][0]["field"] == "query.tz"


async def test_users_only(api):
    r = await api.get("/v1/analytics/kpis", headers=CHANNEL)
    assert r.status_code == 403 and r.headers["content-type"] == "application/problem+json"
    assert (await api.get("/v1/analytics/kpis")).status_code == 401
