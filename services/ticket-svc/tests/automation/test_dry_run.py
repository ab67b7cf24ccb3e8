"""Dry run: the same decisions as the real run, with the reasons."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ticket_svc.automation.actions import InternalNote
from ticket_svc.automation.conditions import TicketState
from ticket_svc.automation.dry_run import dry_run
from ticket_svc.automation.schedule import AutomationIn
from ticket_svc.automation.triggers import TriggerIn, run_triggers

NOW = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)


def trigger(name: str, position: int, all_: list[dict], actions: list[dict]):
    return TriggerIn.model_validate({"name": name, "position": position, "conditions": {"all": all_},
                                     "actions": actions}).to_trigger(trigger_id=position)


def automation(name: str, all_: list[dict]):
    return AutomationIn.model_validate({"name": name, "conditions": {"all": all_},
                                        "actions": [{"type": "set_field", "field": "status",
                                                     "value": "closed"}]}).to_automation(automation_id=name)


RULES = [
    trigger("big refund", 1, [{"field": "custom_fields.amount", "op": "gt", "value": 1000}],
            [{"type": "add_tags", "tags": ["approval"]}, {"type": "start_process", "process": "refund"}]),
    trigger("note approval", 2, [{"field": "tags", "op": "changed_to", "value": "approval"}],
            [{"type": "add_internal_note", "body": "needs approval"}]),
    trigger("urgent only", 3, [{"field": "priority", "op": "eq", "value": "urgent"}],
            [{"type": "add_tags", "tags": ["u"]}]),
]
AUTOMATIONS = [
    automation("close solved", [{"field": "status", "op": "eq", "value": "solved"},
                                {"field": "hours_since.solved", "op": "gte", "value": 96}]),
    automation("close stale", [{"field": "hours_since.updated", "op": "gte", "value": 1}]),
    automation("close in business hours", [{"field": "hours_since.created", "op": "gte", "value": 8,
                                             "calendar": "business"}]),
    automation("remind pending", [{"field": "status", "op": "eq", "value": "pending"},
                                  {"field": "hours_since.status_changed", "op": "gte", "value": 24}]),
]
TICKET = TicketState(status="solved", priority="normal", custom_fields={"amount": 5000},
                     created_at=NOW - timedelta(days=2), updated_at=NOW - timedelta(hours=3),
                     solved_at=NOW - timedelta(hours=1), status_changed_at=NOW - timedelta(hours=1))


def test_triggers_fire_as_the_real_run_does_with_reasons() -> None:
    report = dry_run(RULES, AUTOMATIONS, TICKET, NOW)
    real = run_triggers(RULES, TICKET, TICKET)
    assert [v.name for v in report.triggers if v.fires] == [r.rule.name for r in real.records]
    assert report.ticket == real.ticket
    big, note, urgent = report.triggers
    assert big.fires and big.pass_number == 1 and big.changes == {"tags": ("approval",)}
    assert big.reasons == (("all: custom_fields.amount gt 1000", True),)
    assert note.fires and note.effects == (InternalNote("needs approval"),)
    assert note.reasons == (("all: tags changed_to 'approval'", True),)
    assert not urgent.fires and urgent.pass_number is None
    assert urgent.reasons == (("all: priority eq 'urgent'", False),)


def test_automations_say_when_and_why() -> None:
    report = dry_run(RULES, AUTOMATIONS, TICKET, NOW)
    verdicts = {v.name: v for v in report.automations}
    solved = verdicts["close solved"]
    assert solved.state == "scheduled" and solved.due_at == NOW + timedelta(hours=95)
    assert solved.episode_key == f"solved={(NOW - timedelta(hours=1)).isoformat()}"
    assert solved.reasons[0] == ("all: status eq 'solved'", True)
    assert solved.reasons[1][1] is False and "true from" in solved.reasons[1][0]
    assert verdicts["close stale"].state == "due"
    assert verdicts["close stale"].due_at == NOW - timedelta(hours=2)
    pending = verdicts["remind pending"]
    assert pending.state == "never" and pending.due_at is None
    assert pending.reasons[0] == ("all: status eq 'pending'", False)
    business = verdicts["close in business hours"]
    assert business.state == "unknown" and "business-time function" in business.reasons[-1][0]


def test_business_hours_with_a_calendar_function() -> None:
    report = dry_run([], AUTOMATIONS, TICKET, NOW, lambda start, amount: start + 3 * amount)
    business = {v.name: v for v in report.automations}["close in business hours"]
    assert business.state == "due" and business.due_at == TICKET.created_at + timedelta(hours=24)


def test_a_given_update_is_what_the_change_conditions_see() -> None:
    before = TicketState(status="open", custom_fields={"amount": 5000}, tags=("approval",))
    report = dry_run(RULES, [], TICKET, NOW, before=before)
    fired = [v.name for v in report.triggers if v.fires]
    assert fired == ["big refund"]  # the tag was there before: not a change to it
