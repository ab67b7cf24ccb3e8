"""Process definitions, pure: what a definition may say, and every refusal with the field it names."""

from __future__ import annotations

import copy
import uuid
from typing import Any

import pytest
from pydantic import ValidationError

from ticket_svc.processes.definitions import (
    MAX_STEPS,
    ApprovalStepDef,
    CountersignStepDef,
    ProcessIn,
    ReturnTo,
    TaskStepDef,
    applies,
    definition_errors,
    dump_steps,
    follow_up_text,
    parse_steps,
    party_ref,
    referenced_teams,
    step_by_key,
)
from ticket_svc.routing.rules import TicketFacts

TEAM = str(uuid.UUID(int=7))


def refund() -> dict[str, Any]:
    """The worked example of docs/workflow.md ("Definitions")."""
    return {"steps": [
        {"key": "approval", "name": "Supervisor approval", "kind": "approval",
         "when": {"conditions": [{"field": "custom_fields.refund_amount", "op": "gt", "value": 1000}]},
         "approvers": {"roles": ["supervisor"]}, "rule": "any", "on_reject": "close",
         "expires_after_minutes": 1440, "target_minutes": 240},
        {"key": "refund", "name": "Pay the refund", "kind": "task", "target_minutes": 480},
        {"key": "confirm", "name": "Customer confirms", "kind": "customer_confirmation",
         "timeout_minutes": 2880, "on_timeout": "close", "via": "reply_or_link"},
    ]}


def approval(**settings: Any) -> dict[str, Any]:
    return {"key": "ok", "name": "Approve", "kind": "approval", "approvers": {"users": ["u1", "u2", "u3"]},
            "rule": "all", **settings}


def task(key: str) -> dict[str, Any]:
    return {"key": key, "name": key, "kind": "task"}


def countersign(**settings: Any) -> dict[str, Any]:
    return {"key": "sign", "name": "Countersign", "kind": "countersign",
            "parties": [{"role": "supervisor"}, {"user": "legal-1"}], **settings}


def structural_errors(body: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(ValidationError) as caught:
        ProcessIn.model_validate(body)
    return [(".".join(str(p) for p in e["loc"]), e["type"]) for e in caught.value.errors()]


def cross_errors(body: dict[str, Any]) -> list[tuple[str, str]]:
    return [(".".join(str(p) for p in e.loc), e.code) for e in definition_errors(ProcessIn.model_validate(body))]


def test_the_refund_example_is_valid_and_round_trips_through_storage() -> None:
    process = ProcessIn.model_validate(refund())
    assert definition_errors(process) == []
    stored = dump_steps(process.steps)
    assert stored[0]["n"] is None and stored[2]["via"] == "reply_or_link"  # defaults written out
    again = parse_steps(copy.deepcopy(stored))
    assert again == process.steps
    assert dump_steps(again) == stored


# --------------------------------------------------------------------------- structure (the schema)

STRUCTURAL = [
    # (case, steps, loc of the error, pydantic error type)
    ("no steps", [], "steps", "too_short"),
    ("too many steps", [task(f"t{i}") for i in range(MAX_STEPS + 1)], "steps", "too_long"),
    ("unknown kind", [{"key": "a", "name": "A", "kind": "vote"}], "steps.0", "union_tag_invalid"),
    ("kind missing", [{"key": "a", "name": "A"}], "steps.0", "union_tag_not_found"),
    ("setting of another kind", [{**task("a"), "approvers": {"users": ["u"]}}], "steps.0.task.approvers",
     "extra_forbidden"),
    ("unknown setting", [approval(quorum=2)], "steps.0.approval.quorum", "extra_forbidden"),
    ("key with capitals", [task("Refund")], "steps.0.task.key", "string_pattern_mismatch"),
    ("key starting with a digit", [task("1st")], "steps.0.task.key", "string_pattern_mismatch"),
    ("key of 64 characters", [task("k" * 64)], "steps.0.task.key", "string_pattern_mismatch"),
    ("key with a colon", [task("step:a")], "steps.0.task.key", "string_pattern_mismatch"),
    ("blank name", [{**task("a"), "name": " \t"}], "steps.0.task.name", "string_too_short"),
    ("unknown rule", [approval(rule="most")], "steps.0.approval.rule", "literal_error"),
    ("n of zero", [approval(rule="n_of_m", n=0)], "steps.0.approval.n", "greater_than_equal"),
    ("n as a string", [approval(rule="n_of_m", n="2")], "steps.0.approval.n", "value_error"),
    ("unknown role", [approval(approvers={"roles": ["owner"]})], "steps.0.approval.approvers.roles.0", "literal_error"),
    ("team that is no uuid", [approval(approvers={"teams": ["sales"]})], "steps.0.approval.approvers.teams.0",
     "uuid_parsing"),
    ("too many users", [approval(approvers={"users": [f"u{i}" for i in range(101)]})],
     "steps.0.approval.approvers.users", "too_long"),
    ("unknown on_reject", [approval(on_reject="reopen")], "steps.0.approval.on_reject.literal['close','continue_flagged']",
     "literal_error"),
    ("return_to not a key", [approval(on_reject={"return_to": "Start"})],
     "steps.0.approval.on_reject.ReturnTo.return_to", "string_pattern_mismatch"),
    ("expiry of zero minutes", [approval(expires_after_minutes=0)], "steps.0.approval.expires_after_minutes",
     "greater_than_equal"),
    ("target beyond a year", [{**task("a"), "target_minutes": 366 * 24 * 60 + 1}], "steps.0.task.target_minutes",
     "less_than_equal"),
    ("no parties", [countersign(parties=[])], "steps.0.countersign.parties", "too_short"),
    ("unknown order", [countersign(order="random")], "steps.0.countersign.order", "literal_error"),
    ("confirmation without timeout", [{"key": "c", "name": "C", "kind": "customer_confirmation"}],
     "steps.0.customer_confirmation.timeout_minutes", "missing"),
    ("unknown on_timeout", [{"key": "c", "name": "C", "kind": "customer_confirmation", "timeout_minutes": 60,
                             "on_timeout": "escalate"}], "steps.0.customer_confirmation.on_timeout", "literal_error"),
    ("unknown via", [{"key": "c", "name": "C", "kind": "customer_confirmation", "timeout_minutes": 60,
                      "via": "sms"}], "steps.0.customer_confirmation.via", "literal_error"),
    ("condition on an unknown field", [{**task("a"), "when": {"conditions": [{"field": "colour", "op": "eq",
                                                                              "value": "red"}]}}],
     "steps.0.task.when.conditions.0.field", "unknown_field"),
    ("condition with an op the field does not take", [{**task("a"), "when": {"conditions": [
        {"field": "channel", "op": "gt", "value": "email"}]}}], "steps.0.task.when.conditions.0.op", "op_not_allowed"),
    ("condition with a wrong operand", [{**task("a"), "when": {"any_conditions": [
        {"field": "custom_fields.refund_amount", "op": "gt", "value": "a lot"}]}}],
     "steps.0.task.when.any_conditions.0.value", "invalid_value"),
    ("unknown key in when", [{**task("a"), "when": {"all": []}}], "steps.0.task.when.all", "extra_forbidden"),
]


@pytest.mark.parametrize(("steps", "loc", "kind"), [case[1:] for case in STRUCTURAL],
                         ids=[case[0] for case in STRUCTURAL])
def test_structural_refusals_name_the_field(steps: list[Any], loc: str, kind: str) -> None:
    assert (loc, kind) in structural_errors({"steps": steps})


def test_routing_validates_conditions_the_same_way() -> None:
    """The condition model is routing's own: the same body is refused there with the same code."""
    from ticket_svc.routing.rules import RuleIn

    condition = {"field": "priority", "op": "gt", "value": "extreme"}
    with pytest.raises(ValidationError) as routing:
        RuleIn.model_validate({"name": "r", "conditions": [condition]})
    with pytest.raises(ValidationError) as process:
        ProcessIn.model_validate({"steps": [{**task("a"), "when": {"conditions": [condition]}}]})
    assert [(e["type"], e["msg"]) for e in routing.value.errors()] == [(e["type"], e["msg"]) for e in process.value.errors()]


# --------------------------------------------------------------------------- rules across values

CROSS = [
    # (case, steps, [(loc, code), ...])
    ("repeated key", [task("a"), task("b"), task("a")], [("steps.2.task.key", "cross_field")]),
    ("return_to a later step", [approval(on_reject={"return_to": "later"}), task("later")],
     [("steps.0.approval.on_reject.return_to", "cross_field")]),
    ("return_to itself", [task("first"), approval(on_reject={"return_to": "ok"})],
     [("steps.1.approval.on_reject.return_to", "cross_field")]),
    ("return_to no step", [task("first"), approval(on_reject={"return_to": "nowhere"})],
     [("steps.1.approval.on_reject.return_to", "cross_field")]),
    ("countersign return_to a later step", [countersign(on_reject={"return_to": "after"}), task("after")],
     [("steps.0.countersign.on_reject.return_to", "cross_field")]),
    ("no approvers", [approval(approvers={})], [("steps.0.approval.approvers", "cross_field")]),
    ("n_of_m without n", [approval(rule="n_of_m")], [("steps.0.approval.n", "cross_field")]),
    ("n with rule any", [approval(rule="any", n=1)], [("steps.0.approval.n", "cross_field")]),
    ("n beyond the named users", [approval(rule="n_of_m", n=4)], [("steps.0.approval.n", "cross_field")]),
    ("n beyond the distinct users", [approval(rule="n_of_m", n=2, approvers={"users": ["u1", "u1"]})],
     [("steps.0.approval.n", "cross_field")]),
    ("party listed twice", [countersign(parties=[{"user": "a"}, {"role": "agent"}, {"user": "a"}])],
     [("steps.0.countersign.parties.2", "cross_field")]),
    ("every failure at once", [task("a"), approval(rule="n_of_m", approvers={}, on_reject={"return_to": "zz"}),
                               task("a")],
     [("steps.2.task.key", "cross_field"), ("steps.1.approval.approvers", "cross_field"),
      ("steps.1.approval.n", "cross_field"), ("steps.1.approval.on_reject.return_to", "cross_field")]),
]


@pytest.mark.parametrize(("steps", "expected"), [case[1:] for case in CROSS], ids=[case[0] for case in CROSS])
def test_rules_across_values_name_the_field(steps: list[Any], expected: list[tuple[str, str]]) -> None:
    assert cross_errors({"steps": steps}) == expected


VALID = [
    ("n equal to the named users", [approval(rule="n_of_m", n=3)]),
    ("n beyond the users when a team also approves", [approval(rule="n_of_m", n=5,
                                                               approvers={"users": ["u1"], "teams": [TEAM]})]),
    ("n with a role only", [approval(rule="n_of_m", n=2, approvers={"roles": ["supervisor"]})]),
    ("return_to an earlier step", [task("work"), approval(on_reject={"return_to": "work"})]),
    ("continue flagged", [approval(on_reject="continue_flagged")]),
    ("empty when: always", [{**task("a"), "when": {}}]),
    ("parallel countersign", [countersign(order="parallel", parties=[{"team": TEAM}, {"role": "supervisor"}])]),
    ("a key of 63 characters", [task("k" * 63)]),
    ("Chinese names", [{**task("a"), "name": "财务复核"}]),
]


@pytest.mark.parametrize("steps", [case[1] for case in VALID], ids=[case[0] for case in VALID])
def test_valid_definitions_have_no_errors(steps: list[Any]) -> None:
    assert cross_errors({"steps": steps}) == []


def test_approvers_are_deduplicated_in_order() -> None:
    step = ProcessIn.model_validate({"steps": [approval(approvers={"users": ["b", "a", "b"], "roles": ["agent", "agent"]})]}).steps[0]
    assert isinstance(step, ApprovalStepDef)
    assert step.approvers.users == ["b", "a"] and step.approvers.roles == ["agent"]


def test_errors_have_the_shape_of_request_validation_errors() -> None:
    [error] = definition_errors(ProcessIn.model_validate({"steps": [approval(rule="n_of_m")]}))
    assert error.as_pydantic() == {"loc": ("body", "steps", 0, "approval", "n"), "msg": "n is required with rule n_of_m",
                                   "type": "cross_field"}


# --------------------------------------------------------------------------- reading a definition


def test_when_uses_routing_semantics() -> None:
    steps = ProcessIn.model_validate(refund()).steps
    assert applies(steps[0], TicketFacts(custom_fields={"refund_amount": "1500.00"}))  # decimals are stored as text
    assert not applies(steps[0], TicketFacts(custom_fields={"refund_amount": "1000.00"}))
    assert not applies(steps[0], TicketFacts())  # a missing field fails a positive op
    assert applies(steps[1], TicketFacts())  # no when: always


def test_any_conditions_need_one_to_hold() -> None:
    [step] = ProcessIn.model_validate({"steps": [{**task("a"), "when": {
        "conditions": [{"field": "priority", "op": "gte", "value": "high"}],
        "any_conditions": [{"field": "customer_tier", "op": "eq", "value": "VIP"},
                           {"field": "tags", "op": "has_tag", "value": "legal"}]}}]}).steps
    assert applies(step, TicketFacts(priority="urgent", customer_tier="vip"))
    assert applies(step, TicketFacts(priority="high", tags=("legal",)))
    assert not applies(step, TicketFacts(priority="high"))
    assert not applies(step, TicketFacts(priority="normal", customer_tier="vip"))


def test_lookups_for_the_step_machine() -> None:
    steps = ProcessIn.model_validate({"steps": [task("work"), approval(on_reject={"return_to": "work"}),
                                                countersign(parties=[{"team": TEAM}])]}).steps
    found = step_by_key(steps, "ok")
    assert found is not None and found[0] == 1 and isinstance(found[1], ApprovalStepDef)
    assert step_by_key(steps, "missing") is None
    assert isinstance(steps[0], TaskStepDef) and isinstance(steps[2], CountersignStepDef)
    assert follow_up_text(steps[1].on_reject) == "return_to:work"
    assert follow_up_text("continue_flagged") == "continue_flagged"
    assert isinstance(steps[1].on_reject, ReturnTo)
    assert [party_ref(p) for p in steps[2].parties] == [f"team:{TEAM}"]
    assert referenced_teams(steps) == [(("steps", 2, "countersign", "parties", 0, "team"), uuid.UUID(TEAM))]
