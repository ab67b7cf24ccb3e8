"""The extended condition language, as tables: (field, op, value, before, after, context, expected)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from ticket_svc.automation.conditions import (
    AUTOMATION,
    NOTHING,
    TRIGGER,
    AutomationConditionsIn,
    Condition,
    ConditionsIn,
    TicketState,
    UpdateContext,
    anchor_instant,
    changed_fields,
)
from ticket_svc.routing.rules import RuleError

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
BEFORE = TicketState(status="open", priority="low", type="refund", channel="email", tags=("vip", "Billing"),
                     custom_fields={"amount": 1200, "region": "华东"}, customer_tier="gold", team_id="t1",
                     assignee_id=None, step=None, subject="退款 please")
AFTER = TicketState(status="solved", priority="high", type="refund", channel="email", tags=("billing", "urgent"),
                    custom_fields={"amount": 1500, "region": "华东"}, customer_tier="gold", team_id="t1",
                    assignee_id="u-7", step="approval", subject="退款 please")
AGENT = UpdateContext()
CUSTOMER_PUBLIC = UpdateContext(actor_kind="customer", message="public")

CASES = [
    # ticket fields as they are after the update (routing's semantics)
    ("status", "eq", "solved", BEFORE, AFTER, AGENT, True),
    ("status", "eq", "SOLVED", BEFORE, AFTER, AGENT, True),
    ("status", "in", ["open", "pending"], BEFORE, AFTER, AGENT, False),
    ("status", "not_in", ["open", "pending"], BEFORE, AFTER, AGENT, True),
    ("priority", "gte", "high", BEFORE, AFTER, AGENT, True),
    ("priority", "lt", "high", BEFORE, AFTER, AGENT, False),
    ("tags", "has_tag", "URGENT", BEFORE, AFTER, AGENT, True),
    ("custom_fields.amount", "gt", 1000, BEFORE, AFTER, AGENT, True),
    ("custom_fields.region", "eq", "华东", BEFORE, AFTER, AGENT, True),
    ("customer_tier", "eq", "GOLD", BEFORE, AFTER, AGENT, True),
    ("channel", "eq", "email", BEFORE, AFTER, AGENT, True),
    ("assignee_id", "exists", True, BEFORE, AFTER, AGENT, True),
    ("assignee_id", "exists", True, AFTER, BEFORE, AGENT, False),
    ("assignee_id", "eq", "u-7", BEFORE, AFTER, AGENT, True),
    ("team_id", "in", ["t1", "t2"], BEFORE, AFTER, AGENT, True),
    ("step", "eq", "approval", BEFORE, AFTER, AGENT, True),
    ("step", "exists", False, AFTER, BEFORE, AGENT, True),
    # the update itself
    ("update.event", "eq", "updated", BEFORE, AFTER, AGENT, True),
    ("update.event", "eq", "created", BEFORE, AFTER, AGENT, False),
    ("update.actor_kind", "eq", "customer", BEFORE, AFTER, CUSTOMER_PUBLIC, True),
    ("update.actor_kind", "ne", "customer", BEFORE, AFTER, AGENT, True),
    ("update.message", "in", ["public", "internal"], BEFORE, AFTER, CUSTOMER_PUBLIC, True),
    ("update.message", "eq", "none", BEFORE, AFTER, AGENT, True),
    # change operators
    ("status", "changed", None, BEFORE, AFTER, AGENT, True),
    ("status", "changed_to", "solved", BEFORE, AFTER, AGENT, True),
    ("status", "changed_to", "closed", BEFORE, AFTER, AGENT, False),
    ("status", "changed_from", "open", BEFORE, AFTER, AGENT, True),
    ("status", "changed_from", "pending", BEFORE, AFTER, AGENT, False),
    ("status", "not_changed", None, BEFORE, AFTER, AGENT, False),
    ("status", "not_changed_to", "closed", BEFORE, AFTER, AGENT, True),
    ("status", "not_changed_from", "open", BEFORE, AFTER, AGENT, False),
    ("status", "changed", True, AFTER, AFTER, AGENT, False),  # no update to the status
    ("status", "not_changed", None, AFTER, AFTER, AGENT, True),
    ("status", "changed_to", "solved", AFTER, AFTER, AGENT, False),  # solved already: not a change to it
    ("priority", "changed_from", "LOW", BEFORE, AFTER, AGENT, True),
    ("priority", "changed_to", "urgent", BEFORE, AFTER, AGENT, False),
    ("tags", "changed_to", "urgent", BEFORE, AFTER, AGENT, True),  # added
    ("tags", "changed_to", "billing", BEFORE, AFTER, AGENT, False),  # Billing -> billing is the same tag
    ("tags", "changed_from", "vip", BEFORE, AFTER, AGENT, True),  # removed
    ("tags", "changed_from", "urgent", BEFORE, AFTER, AGENT, False),
    ("custom_fields.amount", "changed", None, BEFORE, AFTER, AGENT, True),
    ("custom_fields.region", "changed", None, BEFORE, AFTER, AGENT, False),
    ("custom_fields.amount", "changed_from", 1200, BEFORE, AFTER, AGENT, True),
    ("assignee_id", "changed_to", "u-7", BEFORE, AFTER, AGENT, True),
    ("assignee_id", "changed_from", "u-7", AFTER, BEFORE, AGENT, True),
    ("step", "changed_to", "approval", BEFORE, AFTER, AGENT, True),
    ("team_id", "changed", None, BEFORE, AFTER, AGENT, False),
    # creation: everything the new ticket has counts as changed from nothing
    ("status", "changed_to", "solved", NOTHING, AFTER, AGENT, True),
    ("priority", "changed_from", "low", NOTHING, AFTER, AGENT, False),
    ("assignee_id", "changed", None, NOTHING, BEFORE, AGENT, False),  # None before and after
]


@pytest.mark.parametrize(("name", "op", "value", "before", "after", "context", "expected"), CASES)
def test_condition_table(name, op, value, before, after, context, expected) -> None:
    condition = Condition(name, op, value)
    changed = changed_fields(before, after)
    assert condition.holds(before, after, changed, context) is expected


def test_declared_changes_count_even_when_the_states_agree() -> None:
    """A custom status switched within its category is invisible in the states: the caller says so."""
    condition = Condition("status", "changed")
    assert not condition.holds(AFTER, AFTER, changed_fields(AFTER, AFTER), AGENT)
    assert condition.holds(AFTER, AFTER, changed_fields(AFTER, AFTER, {"status"}), AGENT)


def test_changed_fields_reports_custom_fields_per_key_and_ignores_tag_order() -> None:
    reordered = TicketState(tags=("b", "A"), custom_fields={"k": 1})
    assert changed_fields(TicketState(tags=("a", "B"), custom_fields={"k": 1}), reordered) == frozenset()
    assert changed_fields(TicketState(custom_fields={"k": 1}), TicketState(custom_fields={"k": 2})) == {
        "custom_fields", "custom_fields.k"}
    assert changed_fields(TicketState(custom_fields={"k": True}), TicketState(custom_fields={"k": 1})) == {
        "custom_fields", "custom_fields.k"}


INVALID = [
    # (kind, field, op, value, code)
    (TRIGGER, "nope", "eq", "x", "unknown_field"),
    (TRIGGER, "status", "eq", "bogus", "invalid_value"),
    (TRIGGER, "status", "contains", "x", "op_not_allowed"),
    (TRIGGER, "status", "changed_to", None, "invalid_value"),
    (TRIGGER, "status", "changed", "solved", "invalid_value"),
    (TRIGGER, "channel", "changed", None, "op_not_allowed"),  # a channel never changes
    (TRIGGER, "priority", "changed_to", "extreme", "invalid_value"),
    (TRIGGER, "update.event", "eq", "deleted", "invalid_value"),
    (TRIGGER, "hours_since.created", "gte", 3, "unknown_field"),  # time is for automations
    (TRIGGER, "assignee_id", "eq", "", "invalid_value"),
    (TRIGGER, "step", "in", [], "invalid_value"),
    (AUTOMATION, "status", "changed_to", "solved", "op_not_allowed"),
    (AUTOMATION, "update.event", "eq", "created", "unknown_field"),
    (AUTOMATION, "hours_since.nothing", "gte", 3, "unknown_field"),
    (AUTOMATION, "hours_since.created", "gt", 3, "op_not_allowed"),
    (AUTOMATION, "hours_since.created", "gte", -1, "invalid_value"),
    (AUTOMATION, "hours_since.created", "gte", 10**9, "invalid_value"),
    (AUTOMATION, "hours_since.created", "gte", True, "invalid_value"),
    (AUTOMATION, "hours_since.custom_fields.", "gte", 1, "unknown_field"),
]


@pytest.mark.parametrize(("kind", "name", "op", "value", "code"), INVALID)
def test_invalid_conditions_are_refused_with_their_reason(kind, name, op, value, code) -> None:
    with pytest.raises(RuleError) as caught:
        Condition(name, op, value, kind=kind)
    assert caught.value.code == code


def test_api_errors_name_the_failing_path() -> None:
    with pytest.raises(ValidationError) as caught:
        ConditionsIn.model_validate({"all": [{"field": "status", "op": "eq", "value": "open"}],
                                     "any": [{"field": "priority", "op": "changed_to", "value": "nope"}]})
    (error,) = caught.value.errors()
    assert error["loc"] == ("any", 0, "value")
    assert error["type"] == "invalid_value"
    with pytest.raises(ValidationError) as caught:
        ConditionsIn.model_validate({"all": [{"field": "status", "op": "eq", "value": "open", "extra": 1}]})
    assert caught.value.errors()[0]["loc"] == ("all", 0, "extra")


def test_automation_conditions_need_a_time_condition_in_all() -> None:
    with pytest.raises(ValidationError) as caught:
        AutomationConditionsIn.model_validate({"all": [{"field": "status", "op": "eq", "value": "pending"}]})
    assert caught.value.errors()[0]["loc"] == ("all",)
    with pytest.raises(ValidationError) as caught:
        AutomationConditionsIn.model_validate({
            "all": [{"field": "hours_since.created", "op": "gte", "value": 1}],
            "any": [{"field": "hours_since.updated", "op": "gte", "value": 1}]})
    assert caught.value.errors()[0]["loc"] == ("any",)
    with pytest.raises(ValidationError) as caught:
        AutomationConditionsIn.model_validate({
            "all": [{"field": "hours_since.created", "op": "gte", "value": 1},
                    {"field": "status", "op": "eq", "value": "pending", "calendar": "business"}]})
    assert caught.value.errors()[0]["loc"] == ("all", 1)
    ok = AutomationConditionsIn.model_validate({
        "all": [{"field": "hours_since.status_changed", "op": "gte", "value": 72, "calendar": "business"},
                {"field": "status", "op": "eq", "value": "pending"}]}).to_conditions()
    assert ok.all[0].calendar == "business" and ok.all[0].is_time


def test_anchor_instants_read_custom_field_dates_in_utc() -> None:
    ticket = TicketState(created_at=T0, custom_fields={"until": "2026-12-01T08:00:00+08:00", "day": "2026-12-01",
                                                       "junk": "tomorrow", "n": 5})
    assert anchor_instant(ticket, "created") == T0
    assert anchor_instant(ticket, "custom_fields.until") == datetime(2026, 12, 1, 0, 0, tzinfo=UTC)
    assert anchor_instant(ticket, "custom_fields.day") == datetime(2026, 12, 1, tzinfo=UTC)
    assert anchor_instant(ticket, "custom_fields.junk") is None
    assert anchor_instant(ticket, "custom_fields.n") is None
    assert anchor_instant(ticket, "custom_fields.missing") is None
    assert anchor_instant(ticket, "solved") is None
