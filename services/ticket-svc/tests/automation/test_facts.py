"""A ticket row as conditions see it (``facts.state_from_row``): every fact a condition or a
time anchor reads comes from the row, ids as text, a ticket never changed in status counting
from its creation."""

import uuid
from datetime import UTC, datetime, timedelta

from ticket_svc.automation import conditions, facts, schedule
from ticket_svc.automation.conditions import Condition, Conditions

CREATED = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
TEAM = uuid.uuid4()


def row(**over):
    base = {
        "id": uuid.uuid4(), "status": "pending", "priority": "urgent", "type": "refund", "channel": "wechat",
        "language": "zh-CN", "subject": "退款 / refund", "tags": ["vip", "billing"],
        "custom_fields": {"refund_amount": "1500.00"}, "customer_tier": "vip", "team_id": TEAM,
        "assignee_id": "u-1", "created_at": CREATED, "updated_at": CREATED + timedelta(hours=2),
        "status_changed_at": CREATED + timedelta(hours=1), "solved_at": None,
    }
    return {**base, **over}


def test_every_fact_comes_from_the_row():
    state = facts.state_from_row(row(), step="approval", customer_replied_at=CREATED + timedelta(minutes=5))
    assert state == conditions.TicketState(
        status="pending", priority="urgent", type="refund", channel="wechat", language="zh-CN",
        subject="退款 / refund", tags=("vip", "billing"), custom_fields={"refund_amount": "1500.00"},
        customer_tier="vip", team_id=str(TEAM), assignee_id="u-1", step="approval", created_at=CREATED,
        updated_at=CREATED + timedelta(hours=2), status_changed_at=CREATED + timedelta(hours=1),
        customer_replied_at=CREATED + timedelta(minutes=5), agent_replied_at=None, solved_at=None)


def test_conditions_read_the_facts_as_routing_does():
    state = facts.state_from_row(row(), step="approval")
    holds = Conditions(all=(Condition("channel", "eq", "wechat"), Condition("customer_tier", "eq", "VIP"),
                            Condition("team_id", "eq", str(TEAM)), Condition("step", "eq", "approval"),
                            Condition("custom_fields.refund_amount", "gt", 1000), Condition("tags", "has_tag", "Billing")))
    assert holds.matches(state, state, frozenset(), None)
    assert not Conditions(all=(Condition("step", "exists", False),)).matches(state, state, frozenset(), None)


def test_a_ticket_whose_status_never_changed_counts_from_its_creation():
    state = facts.state_from_row(row(status="new", status_changed_at=None))
    remind = schedule.AutomationIn.model_validate({
        "name": "new for 2 hours", "actions": [{"type": "add_tags", "tags": ["stale"]}],
        "conditions": {"all": [{"field": "status", "op": "eq", "value": "new"},
                               {"field": "hours_since.status_changed", "op": "gte", "value": 2}]},
    }).to_automation(automation_id="a")
    assert schedule.due_at(remind, state) == CREATED + timedelta(hours=2)
    assert facts.state_from_row(row(tags=None, custom_fields=None, subject=None)).tags == ()
