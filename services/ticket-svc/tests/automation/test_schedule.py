"""Automations: due_at and episode_key, as tables and as hypothesis laws."""

from __future__ import annotations

import functools
import os
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from ticket_svc.automation.conditions import TicketState
from ticket_svc.automation.schedule import AutomationIn, BusinessCalendarRequired, due_at, episode_key

SETTINGS = settings(max_examples=int(os.environ.get("AUTOMATION_PROPERTY_EXAMPLES", "200")), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])

T0 = datetime(2026, 11, 27, 16, 0, tzinfo=UTC)  # a Friday, 16:00 UTC = Saturday 00:00 in Shanghai


def automation(all_: list[dict], any_: list[dict] = (), active: bool = True, automation_id=None):
    body = {"name": "a", "active": active, "conditions": {"all": all_, "any": list(any_)},
            "actions": [{"type": "add_tags", "tags": ["x"]}]}
    return AutomationIn.model_validate(body).to_automation(automation_id=automation_id)


def since(anchor: str, hours, calendar: str = "calendar") -> dict:
    return {"field": f"hours_since.{anchor}", "op": "gte", "value": hours, "calendar": calendar}


def cond(field: str, op: str, value=None) -> dict:
    return {"field": field, "op": op, "value": value}


def shanghai_office_hours():
    """sla-svc's own arithmetic bound to a Mon-Fri 09:00-18:00 Shanghai calendar: the callable a
    scheduler would pass (ticket-svc's code never imports sla-svc; this test shows the contract)."""
    from sla_svc.calendars.business_time import BusinessCalendar, add_business_time

    day = ((9 * 60, 18 * 60),)
    calendar = BusinessCalendar(timezone=ZoneInfo("Asia/Shanghai"), weekly_hours=(day,) * 5 + ((), ()))
    return functools.partial(add_business_time, calendar)


PENDING_3_DAYS = automation([cond("status", "eq", "pending"), since("status_changed", 27, "business")])
SOLVED_4_DAYS = automation([cond("status", "eq", "solved"), since("solved", 96)])
PENDING = TicketState(status="pending", created_at=T0 - timedelta(days=3), status_changed_at=T0)


def test_business_hours_count_through_the_given_calendar() -> None:
    # from Saturday 00:00 Shanghai: Monday to Wednesday, 9 h a day -> Wednesday 18:00 Shanghai
    assert due_at(PENDING_3_DAYS, PENDING, shanghai_office_hours()) == datetime(2026, 12, 2, 10, 0, tzinfo=UTC)


def test_calendar_hours_are_plain_arithmetic() -> None:
    solved = TicketState(status="solved", solved_at=T0)
    assert due_at(SOLVED_4_DAYS, solved) == T0 + timedelta(hours=96)
    two_seconds = automation([since("updated", 2 / 3600)])
    assert due_at(two_seconds, TicketState(updated_at=T0)) == T0 + timedelta(seconds=2)


TABLE = [
    # (automation, ticket, expected due) - calendar hours
    (SOLVED_4_DAYS, TicketState(status="open", solved_at=T0), None),  # conditions fail now
    (SOLVED_4_DAYS, TicketState(status="solved"), None),  # no anchor: never
    (automation([since("created", 1), since("updated", 2)]),
     TicketState(created_at=T0, updated_at=T0 - timedelta(hours=5)), T0 + timedelta(hours=1)),  # the latest wins
    (automation([since("created", 0)]), TicketState(created_at=T0), T0),
    (automation([since("custom_fields.hold_until", 0), cond("status", "eq", "on_hold")]),
     TicketState(status="on_hold", custom_fields={"hold_until": "2026-12-01T09:00:00+08:00"}),
     datetime(2026, 12, 1, 1, 0, tzinfo=UTC)),
    (automation([since("custom_fields.hold_until", 0)]), TicketState(custom_fields={"hold_until": "soon"}), None),
    (automation([since("customer_replied", 24)], [cond("priority", "eq", "urgent"), cond("tags", "has_tag", "vip")]),
     TicketState(customer_replied_at=T0, tags=("VIP",)), T0 + timedelta(hours=24)),
    (automation([since("customer_replied", 24)], [cond("priority", "eq", "urgent")]),
     TicketState(customer_replied_at=T0), None),
    (automation([since("agent_replied", 1)], active=False), TicketState(agent_replied_at=T0), None),
    (automation([since("created", 1)]), TicketState(created_at=datetime(9999, 12, 31, 23, 30, tzinfo=UTC)), None),
]


@pytest.mark.parametrize(("rule", "ticket", "expected"), TABLE)
def test_due_at_table(rule, ticket, expected) -> None:
    assert due_at(rule, ticket) == expected


def test_business_hours_without_a_calendar_is_an_error_not_a_guess() -> None:
    with pytest.raises(BusinessCalendarRequired):
        due_at(PENDING_3_DAYS, PENDING)


def test_automation_schema_refuses_what_cannot_be_scheduled() -> None:
    with pytest.raises(ValidationError) as caught:
        AutomationIn.model_validate({"name": "a", "conditions": {"all": [cond("status", "eq", "pending")]},
                                     "actions": [{"type": "add_tags", "tags": ["x"]}]})
    assert [e["loc"] for e in caught.value.errors()] == [("conditions", "all")]
    with pytest.raises(ValidationError) as caught:
        AutomationIn.model_validate({"name": "a", "conditions": {"all": [since("created", 1)]},
                                     "actions": [{"type": "reboot"}]})
    assert [(e["loc"], e["type"]) for e in caught.value.errors()] == [(("actions", 0), "unknown_action")]


def test_episode_key_follows_the_anchors_only() -> None:
    first = episode_key(PENDING_3_DAYS, PENDING)
    assert first == "status_changed=2026-11-27T16:00:00+00:00"
    assert episode_key(PENDING_3_DAYS, TicketState(status="open", status_changed_at=T0, priority="high")) == first
    again = TicketState(status="pending", status_changed_at=T0 + timedelta(hours=5))
    assert episode_key(PENDING_3_DAYS, again) != first
    shanghai = T0.astimezone(timezone(timedelta(hours=8)))
    assert episode_key(PENDING_3_DAYS, TicketState(status_changed_at=shanghai)) == first
    assert episode_key(PENDING_3_DAYS, TicketState(status="pending")) is None


# --------------------------------------------------------------------------- properties

ANCHOR_NAMES = ("created", "updated", "status_changed", "customer_replied", "agent_replied", "solved")
ATTRS = {"created": "created_at", "updated": "updated_at", "status_changed": "status_changed_at",
         "customer_replied": "customer_replied_at", "agent_replied": "agent_replied_at", "solved": "solved_at"}
#: a few instants, so that two drawn tickets often share an anchor
INSTANTS = [T0 + timedelta(hours=h) for h in (-50, -3, 0, 7, 100)]
instants = st.one_of(st.none(), st.sampled_from(INSTANTS))


@st.composite
def ticket_states(draw: st.DrawFn) -> TicketState:
    times = {attr: draw(instants) for attr in ATTRS.values()}
    return TicketState(status=draw(st.sampled_from(["open", "pending", "solved"])),
                       priority=draw(st.sampled_from(["low", "high"])),
                       tags=tuple(draw(st.lists(st.sampled_from(["a", "b"]), unique=True))), **times)


@st.composite
def time_automations(draw: st.DrawFn, hours=None):
    anchors = draw(st.lists(st.sampled_from(ANCHOR_NAMES), min_size=1, max_size=3, unique=True))
    calendar = draw(st.sampled_from(["calendar", "business"]))
    extra = draw(st.lists(st.sampled_from([cond("status", "eq", "pending"), cond("priority", "eq", "high"),
                                           cond("tags", "has_tag", "a")]), max_size=2))
    times = [since(a, hours if hours is not None and i == 0 else draw(st.integers(0, 200)), calendar)
             for i, a in enumerate(anchors)]
    return automation(times + extra)


def office_hours_fn(start: datetime, amount: timedelta) -> datetime:
    """A monotone business clock for the laws: 09:00-17:00 UTC every day."""
    moment, remaining = start, amount
    while True:
        opening = moment.replace(hour=9, minute=0, second=0, microsecond=0)
        closing = moment.replace(hour=17, minute=0, second=0, microsecond=0)
        if moment < opening:
            moment = opening
        if moment >= closing:
            moment = opening + timedelta(days=1)
            continue
        if moment + remaining <= closing:
            return moment + remaining
        remaining -= closing - moment
        moment = opening + timedelta(days=1)


@SETTINGS
@given(ticket=ticket_states(), data=st.data(), low=st.floats(0, 500), extra=st.floats(0, 500))
def test_due_at_is_monotone_in_the_hours(ticket, data, low, extra) -> None:
    anchor = data.draw(st.sampled_from(ANCHOR_NAMES))
    calendar = data.draw(st.sampled_from(["calendar", "business"]))
    others = data.draw(st.lists(st.sampled_from([cond("status", "eq", "pending"), cond("tags", "has_tag", "a")]),
                                max_size=2))
    earlier = due_at(automation([since(anchor, low, calendar), *others]), ticket, office_hours_fn)
    later = due_at(automation([since(anchor, low + extra, calendar), *others]), ticket, office_hours_fn)
    assert (earlier is None) == (later is None)
    if earlier is not None:
        assert earlier <= later
        assert earlier >= getattr(ticket, ATTRS[anchor])


@SETTINGS
@given(rule=time_automations(), first=ticket_states(), second=ticket_states())
def test_episode_key_changes_exactly_when_the_episode_does(rule, first, second) -> None:
    anchors = {c.field.removeprefix("hours_since.") for c in rule.time_conditions}

    def episode(ticket: TicketState):
        return tuple(getattr(ticket, ATTRS[a]) for a in sorted(anchors))

    key_first, key_second = episode_key(rule, first), episode_key(rule, second)
    if None in episode(first) or None in episode(second):
        assert (key_first is None) == (None in episode(first))
        assert (key_second is None) == (None in episode(second))
        return
    assert (key_first == key_second) == (episode(first) == episode(second))


@SETTINGS
@given(rule=time_automations(), ticket=ticket_states())
def test_due_at_is_the_latest_time_condition_and_needs_an_episode(rule, ticket) -> None:
    due = due_at(rule, ticket, office_hours_fn)
    if episode_key(rule, ticket) is None:
        assert due is None
    if due is not None:
        assert all(due >= getattr(ticket, ATTRS[c.field.removeprefix("hours_since.")]) for c in rule.time_conditions)
