"""Role scoping: admins see everything, supervisors their teams, agents themselves and their team;
a team or agent outside the scope is a 404, ticket-svc's outage a 503, channels a 403."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from .conftest import (
    ADMIN, AGENT_X1, AGENT_Y1, CHANNEL, LONER, SUPERVISOR_X, SUPERVISOR_XZ, TEAM_X, TEAM_Y, TEAM_Z, rollup,
    sla_rollup, sla_target, ticket_row, ticket_rollups,
)

DAY = {"from": "2026-12-01T00:00:00Z", "to": "2026-12-02T00:00:00Z"}
BUCKET = datetime(2026, 12, 1, 10, tzinfo=UTC)


@pytest.fixture
async def three_teams(raw):
    await ticket_rollups(raw, bucket=BUCKET, team=TEAM_X, agent="agent-x1", created=3)
    await ticket_rollups(raw, bucket=BUCKET, team=TEAM_X, agent="agent-x2", created=4)
    await ticket_rollups(raw, bucket=BUCKET, team=TEAM_Y, agent="agent-y1", created=20)
    await ticket_rollups(raw, bucket=BUCKET, team=TEAM_Z, created=100, extra={"channel": "email"})


def created(body: dict) -> int:
    return body["series"][0]["points"][0]["value"]


async def test_totals_are_narrowed_to_the_callers_teams(reports_api, three_teams):
    params = {"metric": "tickets_created", **DAY}
    expected = {"admin": (ADMIN, 127), "supervisor of X": (SUPERVISOR_X, 7), "supervisor of X and Z": (SUPERVISOR_XZ, 107),
                "agent of X (their team's figures)": (AGENT_X1, 7), "agent of Y": (AGENT_Y1, 20)}
    for who, (headers, total) in expected.items():
        r = await reports_api.get("/v1/analytics/trends", headers=headers, params=params)
        assert r.status_code == 200, (who, r.text)
        assert created(r.json()) == total, who


async def test_a_team_outside_the_scope_does_not_exist(reports_api, three_teams):
    params = {"metric": "tickets_created", **DAY}
    r = await reports_api.get("/v1/analytics/trends", headers=AGENT_X1, params={**params, "team_id": str(TEAM_Y)})
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"
    r = await reports_api.get("/v1/analytics/trends", headers=SUPERVISOR_X, params={**params, "team_id": str(TEAM_Z)})
    assert r.status_code == 404
    ok = await reports_api.get("/v1/analytics/trends", headers=SUPERVISOR_X, params={**params, "team_id": str(TEAM_X)})
    assert ok.status_code == 200 and created(ok.json()) == 7
    for path in ("/v1/analytics/kpis", "/v1/analytics/at-risk", "/v1/analytics/sla", "/v1/analytics/steps"):
        r = await reports_api.get(path, headers=AGENT_X1, params={"team_id": str(TEAM_Y)})
        assert r.status_code == 404, (path, r.text)


async def test_agents_see_their_own_agent_figures_only(reports_api, three_teams):
    params = {"metric": "tickets_created", **DAY}
    mine = await reports_api.get("/v1/analytics/trends", headers=AGENT_X1, params={**params, "agent_id": "agent-x1"})
    assert mine.status_code == 200 and created(mine.json()) == 3
    teammate = await reports_api.get("/v1/analytics/trends", headers=AGENT_X1, params={**params, "agent_id": "agent-x2"})
    assert teammate.status_code == 404
    board = await reports_api.get("/v1/analytics/leaderboard", headers=AGENT_X1,
                                  params={"metric": "tickets_created", "entity": "agent", "period": "90d"})
    assert board.status_code == 200
    # a supervisor ranks the agents of their teams, and no one else
    r = await reports_api.get("/v1/analytics/breakdown", headers=SUPERVISOR_X,
                              params={"metric": "tickets_created", "by": "agent", **DAY})
    assert {i["key"] for i in r.json()["items"]} == {"agent-x1", "agent-x2"}
    r = await reports_api.get("/v1/analytics/trends", headers=SUPERVISOR_X, params={**params, "agent_id": "agent-y1"})
    assert r.status_code == 404


async def test_breakdowns_by_team_list_only_visible_teams(reports_api, three_teams):
    params = {"metric": "tickets_created", "by": "team", **DAY}
    admin = (await reports_api.get("/v1/analytics/breakdown", headers=ADMIN, params=params)).json()
    assert {i["key"] for i in admin["items"]} == {str(TEAM_X), str(TEAM_Y), str(TEAM_Z)}
    sup = (await reports_api.get("/v1/analytics/breakdown", headers=SUPERVISOR_XZ, params=params)).json()
    assert {i["key"]: i["value"] for i in sup["items"]} == {str(TEAM_Z): 100, str(TEAM_X): 7}
    split = (await reports_api.get("/v1/analytics/trends", headers=AGENT_Y1,
                                   params={"metric": "tickets_created", "by": "team", **DAY})).json()
    assert [s["key"] for s in split["series"]] == [str(TEAM_Y)]


async def test_dimensions_spanning_every_team_are_for_admins(reports_api, three_teams):
    params = {"metric": "tickets_created", "by": "channel", **DAY}
    assert (await reports_api.get("/v1/analytics/breakdown", headers=ADMIN, params=params)).status_code == 200
    r = await reports_api.get("/v1/analytics/breakdown", headers=SUPERVISOR_X, params=params)
    assert r.status_code == 403 and r.headers["content-type"] == "application/problem+json"


async def test_sla_and_at_risk_are_scoped(reports_api, raw):
    await sla_rollup(raw, dim="team", bucket=BUCKET, value=str(TEAM_X), metric="first_response", achieved=1)
    await sla_rollup(raw, dim="team", bucket=BUCKET, value=str(TEAM_Y), metric="first_response", breached=5)
    await sla_rollup(raw, dim="all", bucket=BUCKET, metric="first_response", achieved=1, breached=5)
    sup = (await reports_api.get("/v1/analytics/sla", headers=SUPERVISOR_X, params=DAY)).json()
    assert sup["total"] == {"achieved": 1, "breached": 0, "n": 1, "compliance_percent": 100.0}
    now = datetime.now(UTC)
    for team, number in ((TEAM_X, 1), (TEAM_Y, 2)):
        ticket = await ticket_row(raw, created_at=now - timedelta(hours=1), team_id=team, number=number)
        # due one after the other (on equal due times the list's order is the random ticket ids')
        await sla_target(raw, ticket_id=ticket, metric="first_response",
                         due_at=now + timedelta(minutes=4 + number), event_at=now)
    mine = (await reports_api.get("/v1/analytics/at-risk", headers=AGENT_X1)).json()
    assert [i["number"] for i in mine["at_risk"]] == [1]
    everyone = (await reports_api.get("/v1/analytics/at-risk", headers=ADMIN)).json()
    assert [i["number"] for i in everyone["at_risk"]] == [1, 2]
    # ticket rows carry team and assignee together: both filters apply, each within the scope
    both = await reports_api.get("/v1/analytics/at-risk", headers=AGENT_X1,
                                 params={"team_id": str(TEAM_X), "agent_id": "agent-x1"})
    assert both.status_code == 200 and both.json()["at_risk"] == []  # those tickets have no assignee
    assert (await reports_api.get("/v1/analytics/at-risk", headers=AGENT_X1,
                                  params={"team_id": str(TEAM_X), "agent_id": "agent-y1"})).status_code == 404


async def test_an_agent_in_no_team_sees_their_own_figures(reports_api, raw):
    await rollup(raw, dim="agent", bucket=BUCKET, value="loner", created=2)
    await rollup(raw, dim="all", bucket=BUCKET, created=50)
    r = await reports_api.get("/v1/analytics/trends", headers=LONER, params={"metric": "tickets_created", **DAY})
    assert r.status_code == 200 and created(r.json()) == 2


async def test_ticket_svc_outage_is_a_503_problem_not_a_guess(reports_api, ticket_svc):
    ticket_svc.broken = True
    for path, params in (("/v1/analytics/trends", {"metric": "tickets_created"}), ("/v1/analytics/kpis", {})):
        r = await reports_api.get(path, headers=SUPERVISOR_X, params=params)
        assert r.status_code == 503, r.text
        assert r.headers["content-type"] == "application/problem+json" and "retry-after" in r.headers
    # admins need no lookup
    assert (await reports_api.get("/v1/analytics/kpis", headers=ADMIN)).status_code == 200


async def test_the_team_lookup_forwards_the_callers_identity(reports_api, ticket_svc):
    await reports_api.get("/v1/analytics/kpis", headers=AGENT_X1)
    assert ("me", "agent-x1") in ticket_svc.calls
    assert all(who != "admin-1" for _, who in ticket_svc.calls)


@pytest.mark.parametrize("path", ["/v1/analytics/trends?metric=tickets_created", "/v1/analytics/breakdown?metric=nps&by=team",
                                  "/v1/analytics/leaderboard?metric=nps", "/v1/analytics/sla", "/v1/analytics/at-risk",
                                  "/v1/analytics/kpis", "/v1/analytics/steps"])
async def test_channels_get_403_and_anonymous_401(reports_api, path):
    r = await reports_api.get(path, headers=CHANNEL)
    assert r.status_code == 403 and r.headers["content-type"] == "application/problem+json"
    assert (await reports_api.get(path)).status_code == 401


def test_the_out_of_scope_404_is_in_the_api_document():
    """Every report route that takes team_id / agent_id states the 404 (the agent's schemathesis run,
    tests/e2e/test_schemathesis_roles.py, met it undocumented)."""
    from analytics_svc.main import create_app

    document = create_app().openapi()
    scoped = [(path, item["get"]) for path, item in document["paths"].items()
              if "get" in item and any(p["name"] in ("team_id", "agent_id") for p in item["get"].get("parameters", []))]
    assert len(scoped) >= 5
    for path, operation in scoped:
        assert "application/problem+json" in operation["responses"]["404"]["content"], path
