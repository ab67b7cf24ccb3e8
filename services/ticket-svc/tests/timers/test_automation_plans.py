"""Planning automation timers, pure: which (ref, episode, due) rows a ticket gets, and whether a
fired timer is its episode's firing."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime, timedelta

from ticket_svc.automation.conditions import TicketState
from ticket_svc.automation.schedule import AutomationIn
from ticket_svc.timers.automations import is_due, plan_rows, uses_business_hours, uses_message_anchors

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
REMIND = uuid.UUID(int=1)
SOLVE = uuid.UUID(int=2)
BUSINESS = uuid.UUID(int=3)


def automation(auto_id: uuid.UUID, conditions: list[dict]):  # type: ignore[no-untyped-def]
    return AutomationIn.model_validate({
        "name": f"a{auto_id.int}", "conditions": {"all": conditions},
        "actions": [{"type": "add_tags", "tags": ["x"]}],
    }).to_automation(automation_id=auto_id)


def pending_for(hours: float, calendar: str = "calendar") -> list[dict]:
    return [{"field": "status", "op": "eq", "value": "pending"},
            {"field": "hours_since.status_changed", "op": "gte", "value": hours, "calendar": calendar}]


PENDING = TicketState(status="pending", created_at=T0 - timedelta(days=1), updated_at=T0, status_changed_at=T0)


def test_each_matching_automation_gets_its_due_time_and_episode() -> None:
    rows = plan_rows([automation(REMIND, pending_for(2 / 3600)), automation(SOLVE, pending_for(4 / 3600))],
                     PENDING, None)
    episode = f"status_changed={T0.isoformat()}"
    assert rows == [(str(REMIND), episode, T0 + timedelta(seconds=2)), (str(SOLVE), episode, T0 + timedelta(seconds=4))]


def test_no_timer_while_the_other_conditions_fail() -> None:
    assert plan_rows([automation(REMIND, pending_for(1))], dataclasses.replace(PENDING, status="open"), None) == []


def test_business_hours_without_a_calendar_are_not_planned_and_with_one_are() -> None:
    autos = [automation(REMIND, pending_for(1)), automation(BUSINESS, pending_for(8, "business"))]
    assert uses_business_hours(autos) and not uses_business_hours(autos[:1])
    assert [r[0] for r in plan_rows(autos, PENDING, None)] == [str(REMIND)]
    rows = plan_rows(autos, PENDING, lambda start, amount: start + amount * 3)
    assert rows[1] == (str(BUSINESS), f"status_changed={T0.isoformat()}", T0 + timedelta(hours=24))


def test_message_anchors_are_read_only_when_a_rule_counts_from_them() -> None:
    replied = automation(REMIND, [{"field": "hours_since.customer_replied", "op": "gte", "value": 1}])
    assert uses_message_anchors([replied]) and not uses_message_anchors([automation(SOLVE, pending_for(1))])


def test_a_fired_timer_acts_only_when_due_and_in_its_episode() -> None:
    remind = automation(REMIND, pending_for(2 / 3600))
    episode = f"status_changed={T0.isoformat()}"
    due = T0 + timedelta(seconds=2)
    assert is_due(remind, PENDING, None, episode=episode, now=due)
    assert is_due(remind, PENDING, None, episode=episode, now=due - timedelta(milliseconds=100))  # clock skew
    assert not is_due(remind, PENDING, None, episode=episode, now=due - timedelta(seconds=1))
    assert not is_due(remind, dataclasses.replace(PENDING, status="open"), None, episode=episode, now=due)
    moved = dataclasses.replace(PENDING, status_changed_at=T0 + timedelta(seconds=1))  # pending again
    assert not is_due(remind, moved, None, episode=episode, now=due + timedelta(seconds=5))
    business = automation(BUSINESS, pending_for(1, "business"))
    assert not is_due(business, PENDING, None, episode=episode, now=T0 + timedelta(days=9))
