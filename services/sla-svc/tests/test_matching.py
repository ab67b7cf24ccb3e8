"""Policy matching and timer plans as pure functions: table-driven cases and properties."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sla_svc.calendars.business_time import BusinessCalendar
from sla_svc.calendars.schemas import CalendarIn
from sla_svc.policies import matching
from sla_svc.policies.matching import TicketFacts
from sla_svc.timers import plan as plans
from sla_svc.timers.clock import CALENDAR_TIME, BusinessClock


def policy(name, **conditions):
    return matching.Policy(id=uuid.uuid4(), name=name, conditions=conditions,
                           targets={"first_response": matching.Target(minutes=30)})


POLICIES = [
    policy("vip-urgent", priority=["urgent"], customer_tier=["vip"]),
    policy("wechat", channel=["wechat", "wecom"]),
    policy("refunds", type=["refund"], tags=["payment", "chargeback"]),
    policy("region", custom_fields={"region": ["cn-east", "cn-north"]}),
    policy("any-tag", tags=["outage"]),
    policy("off-disabled-never-listed", priority=["low"], channel=["fax"]),
]


@pytest.mark.parametrize(("ticket", "expected"), [
    (TicketFacts(priority="urgent", customer_tier="vip", channel="wechat"), "vip-urgent"),  # first by position wins
    (TicketFacts(priority="urgent", customer_tier="gold", channel="wechat"), "wechat"),
    (TicketFacts(priority="high", channel="wecom"), "wechat"),
    (TicketFacts(priority="high", type="refund", tags=("chargeback", "x")), "refunds"),
    (TicketFacts(priority="high", type="refund", tags=("x",)), "default"),  # type alone is not enough
    (TicketFacts(priority="high", type="question", tags=("payment",)), "default"),
    (TicketFacts(priority="low", custom_fields={"region": "cn-east"}), "region"),
    (TicketFacts(priority="low", custom_fields={"region": ["eu", "cn-north"]}), "region"),  # multi-select
    (TicketFacts(priority="low", custom_fields={"region": "eu"}), "default"),
    (TicketFacts(priority="low", custom_fields={}), "default"),
    (TicketFacts(priority="normal", tags=("outage",)), "any-tag"),
    (TicketFacts(priority="low", channel="fax"), "off-disabled-never-listed"),
    (TicketFacts(priority="normal"), "default"),
])
def test_first_matching_policy_by_position_wins(ticket, expected):
    assert matching.select(POLICIES, ticket).name == expected


@pytest.mark.parametrize(("priority", "minutes"), [("urgent", 60), ("high", 240), ("normal", 480), ("low", 1440),
                                                   ("unknown", 480)])
def test_default_policy_keeps_todays_first_response_targets(priority, minutes):
    chosen = matching.select([], TicketFacts(priority=priority))
    assert chosen.id is None and chosen.name == "default"
    assert chosen.targets == {"first_response": matching.Target(minutes=minutes)}
    assert chosen.pause_statuses == ("pending", "on_hold") and chosen.warning_fractions == (0.5, 0.75, 0.9)


def test_empty_conditions_match_everything_and_stored_definitions_round_trip():
    pid = uuid.uuid4()
    cal = uuid.uuid4()
    team = uuid.uuid4()
    p = matching.from_definition(pid, "p", {
        "conditions": {}, "targets": {"resolution": {"minutes": 600, "time": "business", "calendar_id": str(cal)},
                                      "first_response": {"minutes": 30, "time": "calendar", "calendar_id": None}},
        "pause_statuses": ["pending"], "warning_fractions": [0.8],
        "escalations": {"resolution": {"set_priority": "urgent", "set_team_id": str(team), "notify": ["supervisor"]}},
    })
    assert matching.select([p], TicketFacts(priority="low")) is p
    assert p.targets["resolution"] == matching.Target(600, cal, business=True) and p.targets["first_response"] == matching.Target(30)
    assert p.escalations["resolution"].as_actions() == {"set_priority": "urgent", "set_team_id": str(team),
                                                        "notify": ["supervisor"]}
    assert matching.Escalation().as_actions() is None


T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def test_plan_in_calendar_time():
    p = plans.plan(CALENDAR_TIME, anchor=T0, target_s=3600, consumed_s=0, warning_fractions=[0.9, 0.5, 0.75])
    assert p.fractions == [0.5, 0.75, 0.9, 1.0]
    assert p.fire_at == [T0 + timedelta(minutes=m) for m in (30, 45, 54, 60)] and p.due_at == T0 + timedelta(hours=1)


def test_plan_carries_consumed_time_and_puts_passed_points_at_the_anchor():
    p = plans.plan(CALENDAR_TIME, anchor=T0, target_s=3600, consumed_s=40 * 60, warning_fractions=[0.5, 0.75, 0.9])
    assert p.fire_at == [T0, T0 + timedelta(minutes=5), T0 + timedelta(minutes=14), T0 + timedelta(minutes=20)]


SHANGHAI = BusinessCalendar.from_schema(CalendarIn(
    name="cn office", timezone="Asia/Shanghai",
    weekly_hours={d: [("09:00", "12:00"), ("13:00", "18:00")] for d in ("mon", "tue", "wed", "thu", "fri")}))


def test_plan_in_business_time_skips_lunch_nights_and_weekends():
    friday_5pm = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)  # 17:00 in Shanghai
    p = plans.plan(BusinessClock(SHANGHAI), anchor=friday_5pm, target_s=5 * 3600, consumed_s=0,
                   warning_fractions=[0.5])
    # 1 h on Friday; Monday 09:00-10:30 makes 2.5 h (the 50 % warning); 09:00-12:00 then 13:00-14:00 makes 5 h
    assert p.fire_at[0] == datetime(2026, 11, 30, 2, 30, tzinfo=UTC)  # Monday 10:30 local
    assert p.due_at == datetime(2026, 11, 30, 6, 0, tzinfo=UTC)  # Monday 14:00 local (lunch skipped)


@pytest.mark.parametrize(("status", "fired", "warnings", "colour"), [
    ("running", 0, 3, "green"), ("running", 1, 3, "yellow"), ("running", 2, 3, "yellow"), ("running", 3, 3, "red"),
    ("paused", 1, 3, "yellow"), ("running", 0, 0, "green"), ("breached", 4, 3, "breached"),
    ("fulfilled", 2, 3, None), ("cancelled", 0, 3, None),
])
def test_colour(status, fired, warnings, colour):
    assert plans.colour(status=status, fired_count=fired, warnings=warnings) == colour


@given(target=st.integers(1, 100_000), consumed=st.floats(0, 200_000),
       fractions=st.lists(st.floats(0.01, 0.99), max_size=5, unique=True))
def test_fire_points_are_sorted_and_end_at_the_due_time(target, consumed, fractions):
    p = plans.plan(CALENDAR_TIME, anchor=T0, target_s=target * 60.0, consumed_s=consumed, warning_fractions=fractions)
    assert p.fire_at == sorted(p.fire_at) and p.fire_at[-1] == p.due_at and p.fractions[-1] == 1.0
    assert p.due_at >= T0
    assert abs((p.due_at - T0).total_seconds() - max(0.0, target * 60.0 - consumed)) < 1e-3
