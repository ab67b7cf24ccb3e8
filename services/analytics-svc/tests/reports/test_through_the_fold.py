"""The reports over rows written by the real fold (``readmodel.handlers.HANDLERS``), not by hand:
what the consumer writes is what the API reads."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from analytics_svc.readmodel.handlers import HANDLERS, end_batch
from helpdesk_common import events

from .conftest import ADMIN, SUPERVISOR_X, TEAM_X, TEAM_Y

T0 = datetime(2026, 11, 20, 1, 30, tzinfo=UTC)  # 09:30 in Shanghai
M = timedelta(minutes=1)
SHANGHAI_DAY = {"tz": "Asia/Shanghai", "from": "2026-11-20T00:00:00+08:00", "to": "2026-11-21T00:00:00+08:00"}


def created(tid, team, assignee, tags):
    return events.TicketCreated(source="ticket-svc", subject=str(tid), data=events.TicketCreatedData(
        ticket_id=tid, subject="退款 refund", status="new", priority="high", type="question", channel="wechat",
        tags=list(tags), requester=events.Requester(email="a@b.co"), created_by="channel:k", created_at=T0,
        number=1, team_id=team, assignee_id=assignee, custom_fields={"brand": "=HYPERLINK(\"x\")"}))


def reply(tid, at):
    return events.TicketMessageAdded(source="ticket-svc", subject=str(tid), data=events.TicketMessageAddedData(
        ticket_id=tid, message_id=uuid.uuid4(), author_kind="agent", public=True, created_at=at))


def solved(tid, at):
    return events.TicketStatusChanged(source="ticket-svc", subject=str(tid), data=events.TicketStatusChangedData(
        ticket_id=tid, from_status="open", to_status="solved", changed_at=at, version=2))


async def fold(conn, *evts) -> None:
    for event in evts:
        async with conn.transaction():
            await HANDLERS[event.type](conn, event)
            await end_batch(conn)


async def test_reports_read_what_the_fold_writes(reports_api, raw):
    fast, slow = uuid.uuid4(), uuid.uuid4()
    await fold(raw, created(fast, TEAM_X, "agent-x1", ["退款", "vip"]), reply(fast, T0 + 10 * M),
               solved(fast, T0 + 20 * M), created(slow, TEAM_Y, "agent-y1", ["退款"]), reply(slow, T0 + 50 * M))

    trend = (await reports_api.get("/v1/analytics/trends", headers=ADMIN,
                                   params={"metric": "tickets_created", **SHANGHAI_DAY})).json()
    assert [p["value"] for p in trend["series"][0]["points"]] == [2]
    mine = (await reports_api.get("/v1/analytics/trends", headers=SUPERVISOR_X,
                                  params={"metric": "tickets_created", **SHANGHAI_DAY})).json()
    assert [p["value"] for p in mine["series"][0]["points"]] == [1]

    by_team = (await reports_api.get("/v1/analytics/breakdown", headers=ADMIN, params={
        "metric": "first_reply_minutes", "by": "team", **SHANGHAI_DAY})).json()
    assert {i["key"]: (i["value"], i["n"]) for i in by_team["items"]} == {str(TEAM_X): (10.0, 1),
                                                                          str(TEAM_Y): (50.0, 1)}
    by_tag = (await reports_api.get("/v1/analytics/breakdown", headers=ADMIN, params={
        "metric": "tickets_created", "by": "tag", **SHANGHAI_DAY})).json()
    assert {i["key"]: i["value"] for i in by_tag["items"]} == {"退款": 2, "vip": 1}

    board = (await reports_api.get("/v1/analytics/leaderboard", headers=ADMIN, params={
        "metric": "resolution_minutes", "entity": "agent", "period": "90d", "tz": "Asia/Shanghai"})).json()
    expected = [("agent-x1", 20.0)] if timedelta(0) < datetime.now(UTC) - T0 < timedelta(days=89) else []
    assert [(i["key"], i["value"]) for i in board["items"]] == expected

    kpis = (await reports_api.get("/v1/analytics/kpis", headers=ADMIN)).json()
    assert (kpis["tickets_total"], kpis["open_tickets"]) == (2, 1)
    assert datetime.fromisoformat(kpis["as_of"]) == T0 + 50 * M

    brand = await reports_api.get("/v1/analytics/breakdown", headers=ADMIN, params={
        "metric": "tickets_created", "by": "brand", "format": "csv", **SHANGHAI_DAY})
    assert "'=HYPERLINK" in brand.content.decode("utf-8-sig")
