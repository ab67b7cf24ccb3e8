"""Actions: per-action validation (422 naming the field) and their pure application."""

from __future__ import annotations

import uuid

import pytest
from pydantic import TypeAdapter, ValidationError

from ticket_svc.automation.actions import (
    ActionIn,
    InternalNote,
    Notification,
    ProcessStart,
    Skipped,
    WebhookCall,
    apply_actions,
)
from ticket_svc.automation.conditions import TicketState
from ticket_svc.automation.triggers import TriggerIn

ACTIONS = TypeAdapter(list[ActionIn])
HOOK = uuid.UUID("00000000-0000-4000-8000-000000000001")


def actions(*items: dict) -> list:
    return ACTIONS.validate_python(list(items))


def errors_of(body: dict) -> list[tuple[tuple, str]]:
    with pytest.raises(ValidationError) as caught:
        TriggerIn.model_validate(body)
    return [(e["loc"], e["type"]) for e in caught.value.errors()]


def trigger(*items: dict) -> dict:
    return {"name": "r", "actions": list(items)}


INVALID = [
    ({"type": "delete_ticket"}, ("actions", 0), "unknown_action"),
    ({"kind": "set_field"}, ("actions", 0), "unknown_action"),
    ({"type": 7}, ("actions", 0), "unknown_action"),
    ({"type": "set_field", "field": "assignee_id", "value": "u"}, ("actions", 0, "set_field", "field"), "unknown_field"),
    ({"type": "set_field", "field": "status", "value": "new"}, ("actions", 0, "set_field", "value"), "invalid_value"),
    ({"type": "set_field", "field": "priority", "value": 3}, ("actions", 0, "set_field", "value"), "invalid_value"),
    ({"type": "set_field", "field": "custom_fields.x", "value": {"a": 1}},
     ("actions", 0, "set_field", "value"), "invalid_value"),
    ({"type": "set_field", "field": "custom_fields.x", "value": 2**70},
     ("actions", 0, "set_field", "value"), "invalid_value"),
    ({"type": "add_tags", "tags": []}, ("actions", 0, "add_tags", "tags"), "too_short"),
    ({"type": "add_tags", "tags": [" "]}, ("actions", 0, "add_tags", "tags", 0), "string_too_short"),
    ({"type": "assign"}, ("actions", 0, "assign"), "invalid_value"),
    ({"type": "add_internal_note", "body": ""}, ("actions", 0, "add_internal_note", "body"), "string_too_short"),
    ({"type": "notify", "to": ["boss"], "subject": "s", "body": "b"}, ("actions", 0, "notify", "to"), "invalid_value"),
    ({"type": "notify", "to": ["user:"], "subject": "s", "body": "b"}, ("actions", 0, "notify", "to"), "invalid_value"),
    ({"type": "call_webhook", "webhook_id": "https://example.com/hook"},
     ("actions", 0, "call_webhook", "webhook_id"), "uuid_parsing"),
    ({"type": "call_webhook", "webhook_id": str(HOOK), "url": "http://10.0.0.1/"},
     ("actions", 0, "call_webhook", "url"), "extra_forbidden"),
    ({"type": "start_process", "process": ""}, ("actions", 0, "start_process", "process"), "string_too_short"),
]


@pytest.mark.parametrize(("action", "loc", "code"), INVALID)
def test_invalid_actions_are_refused_naming_the_field(action, loc, code) -> None:
    assert (loc, code) in errors_of(trigger(action))


def test_a_trigger_needs_an_action() -> None:
    assert ((("actions",), "too_short") in errors_of({"name": "r", "actions": []}))


def test_set_field_applies_in_order_and_reports_only_real_changes() -> None:
    ticket = TicketState(status="open", priority="normal", type="question", custom_fields={"a": 1, "b": 2})
    result = apply_actions(ticket, actions(
        {"type": "set_field", "field": "priority", "value": "HIGH"},
        {"type": "set_field", "field": "priority", "value": "urgent"},
        {"type": "set_field", "field": "type", "value": "question"},  # unchanged: not reported
        {"type": "set_field", "field": "custom_fields.a", "value": None},  # null clears
        {"type": "set_field", "field": "custom_fields.c", "value": ["x", "y"]},
        {"type": "set_field", "field": "status", "value": "pending"},
    ))
    assert result.changes == {"priority": "urgent", "custom_fields": {"b": 2, "c": ["x", "y"]}, "status": "pending"}
    assert result.effects == ()


def test_an_illegal_status_move_is_skipped_with_its_reason() -> None:
    result = apply_actions(TicketState(status="closed"), actions({"type": "set_field", "field": "status",
                                                                  "value": "open"}))
    assert result.changes == {}
    assert result.effects == (Skipped("set_field", "a closed ticket cannot become open"),)


def test_tags_fold_like_routing_and_assignment_sets_team_and_agent() -> None:
    ticket = TicketState(tags=("VIP", "billing"))
    result = apply_actions(ticket, actions(
        {"type": "add_tags", "tags": ["vip", "退款"]},
        {"type": "remove_tags", "tags": ["Billing"]},
        {"type": "assign", "team_id": "t-9"},
        {"type": "assign", "assignee_id": "u-1"},
    ))
    assert result.changes == {"tags": ("VIP", "退款"), "team_id": "t-9", "assignee_id": "u-1"}


def test_side_effects_are_data_in_action_order() -> None:
    result = apply_actions(TicketState(), actions(
        {"type": "add_internal_note", "body": "Refund above 1000: approval needed"},
        {"type": "notify", "to": ["assignee", "user:u-42"], "subject": "Refund\nrequest", "body": "Please look"},
        {"type": "call_webhook", "webhook_id": str(HOOK), "payload": {"reason": "refund"}},
        {"type": "start_process", "process": "refund"},
    ))
    assert result.changes == {}
    assert result.effects == (
        InternalNote("Refund above 1000: approval needed"),
        Notification(("assignee", "user:u-42"), "Refund request", "Please look"),
        WebhookCall(str(HOOK), {"reason": "refund"}),
        ProcessStart("refund"),
    )
