"""The live board from the metric read model: the original keys keep their meaning, the new ones
(unassigned, overdue, at-risk, today's exact medians, CSAT %, SLA compliance, backlog ages,
as_of = the newest folded event) follow the shared definitions, and it is scoped by role."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from .conftest import ADMIN, AGENT_X1, SUPERVISOR_X, TEAM_X, TEAM_Y, rollup, sla_target, ticket_row, ticket_rollups

ORIGINAL_KEYS = {"tickets_created_today", "open_tickets", "tickets_total", "tickets_linked_to_customer",
                 "tickets_with_sla", "csat", "nps", "as_of", "tz"}
NEW_KEYS = {"unassigned_tickets", "overdue_tickets", "at_risk_tickets", "first_reply_minutes_p50_today",
            "resolution_minutes_p50_today", "csat_percent_today", "sla_compliance_percent_today", "backlog"}


async def test_board_from_the_read_model(reports_api, raw):
    now = datetime.now(UTC)
    hour = now.replace(minute=0, second=0, microsecond=0)
    newest = now - timedelta(seconds=5)
    # open tickets of several ages (team X), one unassigned; one solved today; one merged
    ages = [timedelta(minutes=10), timedelta(hours=2), timedelta(hours=30), timedelta(days=40)]
    open_ids = []
    for i, age in enumerate(ages):
        open_ids.append(await ticket_row(
            raw, created_at=now - age, team_id=TEAM_X, assignee_id=None if i == 0 else "agent-x1", status="open",
            customer_id=uuid.uuid4() if i else None, event_at=now - age))
    await ticket_row(raw, created_at=now - timedelta(minutes=50), team_id=TEAM_Y, status="solved", resolved=True,
                     resolved_at=now - timedelta(minutes=1), full_resolution_minutes=49.0,
                     first_reply_at=now - timedelta(minutes=40), first_reply_minutes=10.0, event_at=newest)
    await ticket_row(raw, created_at=now - timedelta(minutes=20), team_id=TEAM_X, status="open",
                     first_reply_at=now - timedelta(minutes=10), first_reply_minutes=4.0,
                     merged=True, event_at=now - timedelta(minutes=10))
    # running targets: one at risk (5 min left of 60), one overdue, one calm
    await sla_target(raw, ticket_id=open_ids[0], metric="first_response", due_at=now + timedelta(minutes=5),
                     event_at=now)
    await sla_target(raw, ticket_id=open_ids[1], metric="first_response", due_at=now - timedelta(minutes=5),
                     colour="breached", event_at=now)
    await sla_target(raw, ticket_id=open_ids[2], metric="resolution", due_at=now + timedelta(days=2),
                     target_minutes=4320, event_at=now)
    # today's rollups (the ticket counts, CSAT and SLA outcomes) and an old one; the all-time
    # counters come from the daily rows' created / linked / with_sla, not from ticket rows
    await ticket_rollups(raw, bucket=hour, team=TEAM_X, created=5, csat_n=4, csat_satisfied=3, csat_rating_sum=16,
                         sla_n=4, sla_achieved=3, nps_n=2, nps_promoters=1, nps_detractors=1, linked=2, with_sla=1)
    await ticket_rollups(raw, bucket=hour - timedelta(days=60), team=TEAM_X, created=1, linked=1, with_sla=1)
    await ticket_rollups(raw, bucket=hour, team=TEAM_Y, created=1, linked=1)

    r = await reports_api.get("/v1/analytics/kpis", headers=ADMIN)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body.keys() == ORIGINAL_KEYS | NEW_KEYS
    assert datetime.fromisoformat(body["as_of"]) == newest
    today_start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    created_today = 6 if hour >= today_start else 0
    assert body["tickets_created_today"] == created_today
    assert body["tickets_total"] == 7
    assert body["open_tickets"] == 4
    assert body["unassigned_tickets"] == 1
    assert body["tickets_linked_to_customer"] == 4
    assert body["tickets_with_sla"] == 2
    assert (body["overdue_tickets"], body["at_risk_tickets"]) == (1, 1)
    assert body["backlog"] == {"lt_1h": 1, "1h_8h": 1, "8h_24h": 0, "1d_3d": 1, "3d_7d": 0, "7d_30d": 0, "ge_30d": 1}
    if now - timedelta(minutes=50) >= today_start:  # not in the first hour after midnight UTC
        assert body["first_reply_minutes_p50_today"] == 7.0  # exact median of 10 and 4
        assert body["resolution_minutes_p50_today"] == 49.0
        assert body["csat_percent_today"] == 75.0 and body["sla_compliance_percent_today"] == 75.0
        assert body["csat"] == {"responses": 4, "average": 4.0, "satisfied_share": 0.75}
        assert body["nps"]["score"] == 0 and body["nps"]["passives"] == 0

    sup = (await reports_api.get("/v1/analytics/kpis", headers=SUPERVISOR_X)).json()
    assert (sup["tickets_total"], sup["open_tickets"], sup["overdue_tickets"]) == (6, 4, 1)
    assert (sup["tickets_linked_to_customer"], sup["tickets_with_sla"]) == (3, 2)
    agent = (await reports_api.get("/v1/analytics/kpis", headers=AGENT_X1)).json()
    assert agent["open_tickets"] == 4  # an agent's board is their team's
    assert (await reports_api.get("/v1/analytics/kpis", headers=AGENT_X1,
                                  params={"team_id": str(TEAM_Y)})).status_code == 404


async def test_empty_board_has_nulls_not_zeros(reports_api, raw):
    body = (await reports_api.get("/v1/analytics/kpis", headers=ADMIN)).json()
    assert body["as_of"] is None
    assert body["first_reply_minutes_p50_today"] is None and body["csat_percent_today"] is None
    assert body["sla_compliance_percent_today"] is None
    assert body["open_tickets"] == 0 and sum(body["backlog"].values()) == 0
    await rollup(raw, dim="all", bucket=datetime.now(UTC).replace(minute=0, second=0, microsecond=0), created=0)
    assert (await reports_api.get("/v1/analytics/kpis", headers=ADMIN, params={"tz": "Asia/Shanghai"})).json()["tz"] \
        == "Asia/Shanghai"
