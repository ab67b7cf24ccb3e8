"""The report endpoints over HTTP on rollup rows written straight into the read model's schema."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from analytics_svc.readmodel.histogram import one_hot

from .conftest import ADMIN, TEAM_X, TEAM_Y, rollup, sla_rollup, sla_target, ticket_row, ticket_rollups

H = timedelta(hours=1)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


async def test_daily_trend_in_shanghai_sums_the_utc_hours_of_each_local_day(reports_api, raw):
    # Shanghai is UTC+8: 2026-12-01 15:00Z is still 1 Dec 23:00 local, 16:00Z is 2 Dec 00:00
    await ticket_rollups(raw, bucket=at("2026-12-01T15:00:00Z"), team=TEAM_X, created=2)
    await ticket_rollups(raw, bucket=at("2026-12-01T16:00:00Z"), team=TEAM_X, created=3)
    await ticket_rollups(raw, bucket=at("2026-12-02T15:00:00Z"), team=TEAM_Y, created=5)
    r = await reports_api.get("/v1/analytics/trends", headers=ADMIN, params={
        "metric": "tickets_created", "interval": "day", "tz": "Asia/Shanghai",
        "from": "2026-11-30T00:00:00+08:00", "to": "2026-12-03T00:00:00+08:00"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert [s["key"] for s in body["series"]] == ["all"]
    points = body["series"][0]["points"]
    assert [p["bucket"] for p in points] == ["2026-11-30T00:00:00+08:00", "2026-12-01T00:00:00+08:00",
                                             "2026-12-02T00:00:00+08:00"]
    assert [(p["value"], p["n"]) for p in points] == [(0, 0), (2, 2), (3 + 5, 8)]
    assert body["previous"] is None and body["direction"] == "neutral"


async def test_trend_split_by_team_keeps_the_top_and_sums_the_rest_as_other(reports_api, raw):
    bucket = at("2026-12-01T10:00:00Z")
    teams = [uuid.uuid4() for _ in range(3)]
    for team, n, minutes in zip(teams, (5, 3, 1), (10, 20, 40), strict=True):
        await ticket_rollups(raw, bucket=bucket, team=team, first_reply_n=n, first_reply_sum=n * minutes)
    r = await reports_api.get("/v1/analytics/trends", headers=ADMIN, params={
        "metric": "first_reply_minutes", "interval": "day", "by": "team", "top": 2,
        "from": "2026-12-01T00:00:00Z", "to": "2026-12-02T00:00:00Z"})
    assert r.status_code == 200, r.text
    series = {s["key"]: s["points"][0] for s in r.json()["series"]}
    assert list(series) == [str(teams[0]), str(teams[1]), "other"]
    assert (series[str(teams[0])]["value"], series[str(teams[0])]["n"]) == (10.0, 5)
    assert (series["other"]["value"], series["other"]["n"]) == (40.0, 1)


async def test_compare_previous_period_and_null_without_denominator(reports_api, raw):
    await ticket_rollups(raw, bucket=at("2026-12-02T08:00:00Z"), csat_n=4, csat_satisfied=3, csat_rating_sum=17)
    await ticket_rollups(raw, bucket=at("2026-12-01T08:00:00Z"), csat_n=2, csat_satisfied=2, csat_rating_sum=10)
    r = await reports_api.get("/v1/analytics/trends", headers=ADMIN, params={
        "metric": "csat_percent", "interval": "day", "compare": "previous",
        "from": "2026-12-02T00:00:00Z", "to": "2026-12-04T00:00:00Z"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert [p["value"] for p in body["series"][0]["points"]] == [75.0, None]  # no answers on the 3rd: null, not 0
    assert body["previous"]["from"].startswith("2026-11-30T00:00:00")
    assert [p["value"] for p in body["previous"]["series"][0]["points"]] == [None, 100.0]


async def test_percentile_trend_from_histograms(reports_api, raw):
    bucket = at("2026-12-01T10:00:00Z")
    for minutes in (3.5, 3.5, 3.5, 500):
        await ticket_rollups(raw, bucket=bucket, team=TEAM_X if minutes < 100 else TEAM_Y, first_reply_n=1,
                             first_reply_sum=minutes, first_reply_hist=one_hot(minutes))
    r = await reports_api.get("/v1/analytics/trends", headers=ADMIN, params={
        "metric": "first_reply_minutes_p50", "from": "2026-12-01T00:00:00Z", "to": "2026-12-02T00:00:00Z"})
    assert r.status_code == 200, r.text
    point = r.json()["series"][0]["points"][0]
    assert point["n"] == 4 and 3 <= point["value"] < 4  # the median lies in the [3, 4) bin
    by_team = (await reports_api.get("/v1/analytics/breakdown", headers=ADMIN, params={
        "metric": "first_reply_minutes_p90", "by": "team", "from": "2026-12-01T00:00:00Z",
        "to": "2026-12-02T00:00:00Z"})).json()
    figures = {i["key"]: (i["value"], i["n"]) for i in by_team["items"]}
    assert figures[str(TEAM_X)][1] == 3 and 3 <= figures[str(TEAM_X)][0] < 4
    assert figures[str(TEAM_Y)][1] == 1 and 480 <= figures[str(TEAM_Y)][0] < 600  # 500 is in [480, 600)


async def test_kolkata_days_start_at_the_utc_hour_holding_local_midnight(reports_api, raw):
    # Kolkata is +05:30: local midnight of 2 Dec is 18:30Z on 1 Dec; the 18:00Z hour is the 2nd's
    await ticket_rollups(raw, bucket=at("2026-12-01T17:00:00Z"), created=1)
    await ticket_rollups(raw, bucket=at("2026-12-01T18:00:00Z"), created=10)
    r = await reports_api.get("/v1/analytics/trends", headers=ADMIN, params={
        "metric": "tickets_created", "tz": "Asia/Kolkata",
        "from": "2026-12-01T00:00:00+05:30", "to": "2026-12-03T00:00:00+05:30"})
    assert [p["value"] for p in r.json()["series"][0]["points"]] == [1, 10]


async def test_new_york_dst_day_has_25_hours(reports_api, raw):
    # 1 Nov 2026 is the fall-back day in New York: 04:00Z to 05:00Z the next day, 25 hours
    for hour in range(25):
        await ticket_rollups(raw, bucket=at("2026-11-01T04:00:00Z") + hour * H, created=1)
    await ticket_rollups(raw, bucket=at("2026-11-02T05:00:00Z"), created=7)
    r = await reports_api.get("/v1/analytics/trends", headers=ADMIN, params={
        "metric": "tickets_created", "tz": "America/New_York",
        "from": "2026-11-01T00:00:00-04:00", "to": "2026-11-03T00:00:00-05:00"})
    points = r.json()["series"][0]["points"]
    assert [(p["bucket"], p["value"]) for p in points] == [("2026-11-01T00:00:00-04:00", 25),
                                                           ("2026-11-02T00:00:00-05:00", 7)]


async def test_breakdown_by_tag_with_chinese_values(reports_api, raw):
    bucket = at("2026-12-01T10:00:00Z")
    await ticket_rollups(raw, bucket=bucket, extra={"tag": "退款"}, solved=3, resolution_sum=300)
    await ticket_rollups(raw, bucket=bucket, extra={"tag": "billing"}, solved=1, resolution_sum=50)
    r = await reports_api.get("/v1/analytics/breakdown", headers=ADMIN, params={
        "metric": "resolution_minutes", "by": "tag", "from": "2026-12-01T00:00:00Z", "to": "2026-12-02T00:00:00Z"})
    assert r.status_code == 200, r.text
    assert r.json()["items"] == [{"key": "退款", "value": 100.0, "n": 3}, {"key": "billing", "value": 50.0, "n": 1}]


async def test_leaderboard_ranks_lower_times_first(reports_api, raw):
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    for agent, minutes in (("a-slow", 90), ("a-fast", 5), ("a-mid", 30)):
        await ticket_rollups(raw, bucket=now, agent=agent, first_reply_n=2, first_reply_sum=2 * minutes)
    await rollup(raw, dim="agent", bucket=now, value="a-none", created=1)  # no replies: no value, left out
    r = await reports_api.get("/v1/analytics/leaderboard", headers=ADMIN, params={
        "metric": "first_reply_minutes", "entity": "agent", "period": "today"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["direction"] == "lower_is_better"
    assert [(i["rank"], i["key"], i["value"], i["n"]) for i in body["items"]] == [
        (1, "a-fast", 5.0, 2), (2, "a-mid", 30.0, 2), (3, "a-slow", 90.0, 2)]


async def test_sla_compliance_per_policy_metric_and_step(reports_api, raw):
    bucket = at("2026-12-01T10:00:00Z")
    await sla_rollup(raw, dim="all", bucket=bucket, policy="gold", metric="first_response", achieved=3, breached=1)
    await sla_rollup(raw, dim="all", bucket=bucket, policy="gold", metric="step:approval", achieved=0, breached=2)
    await sla_rollup(raw, dim="team", bucket=bucket, value=str(TEAM_X), policy="gold", metric="first_response",
                     achieved=3, breached=1)
    r = await reports_api.get("/v1/analytics/sla", headers=ADMIN, params={
        "from": "2026-12-01T00:00:00Z", "to": "2026-12-02T00:00:00Z"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert [(i["metric"], i["step"], i["compliance_percent"]) for i in body["items"]] == [
        ("first_response", None, 75.0), ("step:approval", "approval", 0.0)]
    assert body["total"] == {"achieved": 3, "breached": 3, "n": 6, "compliance_percent": 50.0}
    by_team = (await reports_api.get("/v1/analytics/sla", headers=ADMIN, params={
        "by": "team", "from": "2026-12-01T00:00:00Z", "to": "2026-12-02T00:00:00Z"})).json()
    assert [(i["key"], i["n"]) for i in by_team["items"]] == [(str(TEAM_X), 4)]


async def test_at_risk_soonest_first_and_overdue(reports_api, raw):
    now = datetime.now(UTC)
    created = now - 2 * H
    soon = await ticket_row(raw, created_at=created, team_id=TEAM_X, number=1, status="open")
    warned = await ticket_row(raw, created_at=created, team_id=TEAM_X, number=2, status="open")
    calm = await ticket_row(raw, created_at=created, team_id=TEAM_X, number=3, status="open")
    late = await ticket_row(raw, created_at=created, team_id=TEAM_Y, number=4, status="open")
    solved = await ticket_row(raw, created_at=created, team_id=TEAM_X, number=5, status="solved", resolved=True)
    await sla_target(raw, ticket_id=soon, metric="first_response", due_at=now + timedelta(minutes=10),
                     target_minutes=60, event_at=now)
    await sla_target(raw, ticket_id=warned, metric="resolution", due_at=now + timedelta(hours=5), colour="yellow",
                     target_minutes=480, event_at=now)
    await sla_target(raw, ticket_id=calm, metric="resolution", due_at=now + timedelta(hours=5),
                     target_minutes=480, event_at=now)
    await sla_target(raw, ticket_id=late, metric="first_response", due_at=now - timedelta(minutes=3),
                     colour="breached", event_at=now)
    await sla_target(raw, ticket_id=solved, metric="first_response", due_at=now + timedelta(minutes=1),
                     event_at=now)
    r = await reports_api.get("/v1/analytics/at-risk", headers=ADMIN)
    assert r.status_code == 200, r.text
    body = r.json()
    assert [i["number"] for i in body["at_risk"]] == [1, 2]
    assert [i["number"] for i in body["overdue"]] == [4] and body["overdue"][0]["minutes_left"] < 0
    only_x = (await reports_api.get("/v1/analytics/at-risk", headers=ADMIN, params={"team_id": str(TEAM_X)})).json()
    assert only_x["overdue"] == [] and len(only_x["at_risk"]) == 2


@pytest.mark.parametrize(("params", "field"), [
    ({"metric": "nope"}, "query.metric"),
    ({"metric": "tickets_created", "interval": "fortnight"}, "query.interval"),
    ({"metric": "tickets_created", "by": "colour"}, "query.by"),
    ({"metric": "tickets_created", "tz": "Mars/Olympus"}, "query.tz"),
    ({"metric": "tickets_created", "format": "pdf"}, "query.format"),
    ({"metric": "tickets_created", "compare": "last_year"}, "query.compare"),
    ({"metric": "tickets_created", "from": "2026-12-02T00:00:00Z", "to": "2026-12-01T00:00:00Z"}, "query.from"),
    ({"metric": "tickets_created", "interval": "hour", "from": "2026-01-01T00:00:00Z", "to": "2026-12-01T00:00:00Z"},
     "query.to"),
    ({"metric": "tickets_created", "from": "2026-12-01T00:00:00"}, "query.from"),
])
async def test_trend_parameters_are_422_problems_naming_them(reports_api, params, field):
    r = await reports_api.get("/v1/analytics/trends", headers=ADMIN, params=params)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["errors"][0]["field"] == field


async def test_unknown_metric_lists_the_catalogue(reports_api):
    r = await reports_api.get("/v1/analytics/breakdown", headers=ADMIN, params={"metric": "x", "by": "team"})
    assert r.status_code == 422
    assert "first_reply_minutes_p90" in r.json()["errors"][0]["message"]
    r = await reports_api.get("/v1/analytics/leaderboard", headers=ADMIN,
                              params={"metric": "nps", "period": "forever"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "query.period"
    r = await reports_api.get("/v1/analytics/leaderboard", headers=ADMIN, params={"metric": "nps", "entity": "tag"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "query.entity"


async def test_hourly_trend_shows_the_repeated_fall_back_hour_twice(reports_api, raw):
    for hour in range(4):  # 04:00Z..07:00Z = 00:00-04, 01:00-04, 01:00-05, 02:00-05 in New York
        await ticket_rollups(raw, bucket=at("2026-11-01T04:00:00Z") + hour * H, created=hour + 1)
    r = await reports_api.get("/v1/analytics/trends", headers=ADMIN, params={
        "metric": "tickets_created", "interval": "hour", "tz": "America/New_York",
        "from": "2026-11-01T00:00:00-04:00", "to": "2026-11-01T03:00:00-05:00"})
    points = r.json()["series"][0]["points"]
    assert [(p["bucket"], p["value"]) for p in points] == [
        ("2026-11-01T00:00:00-04:00", 1), ("2026-11-01T01:00:00-04:00", 2), ("2026-11-01T01:00:00-05:00", 3),
        ("2026-11-01T02:00:00-05:00", 4)]


async def test_weekly_and_monthly_buckets_in_shanghai(reports_api, raw):
    # Monday 30 Nov 2026 00:00 in Shanghai is Sunday 29 Nov 16:00Z; 1 Dec 00:00 is 30 Nov 16:00Z
    await ticket_rollups(raw, bucket=at("2026-11-29T15:00:00Z"), created=1)  # Sunday 23:00 local: week 48
    await ticket_rollups(raw, bucket=at("2026-11-29T16:00:00Z"), created=2)  # Monday 00:00 local: week 49
    await ticket_rollups(raw, bucket=at("2026-11-30T16:00:00Z"), created=4)  # 1 Dec local
    weeks = (await reports_api.get("/v1/analytics/trends", headers=ADMIN, params={
        "metric": "tickets_created", "interval": "week", "tz": "Asia/Shanghai",
        "from": "2026-11-23T00:00:00+08:00", "to": "2026-12-07T00:00:00+08:00"})).json()
    assert [(p["bucket"], p["value"]) for p in weeks["series"][0]["points"]] == [
        ("2026-11-23T00:00:00+08:00", 1), ("2026-11-30T00:00:00+08:00", 6)]
    months = (await reports_api.get("/v1/analytics/trends", headers=ADMIN, params={
        "metric": "tickets_created", "interval": "month", "tz": "Asia/Shanghai",
        "from": "2026-11-01T00:00:00+08:00", "to": "2027-01-01T00:00:00+08:00"})).json()
    assert [(p["bucket"], p["value"]) for p in months["series"][0]["points"]] == [
        ("2026-11-01T00:00:00+08:00", 3), ("2026-12-01T00:00:00+08:00", 4)]
