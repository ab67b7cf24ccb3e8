"""Rule evaluation (order, stop, chaining, any-of) and the API models' validation errors."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from ticket_svc.routing.rules import (
    Action,
    ActionIn,
    Condition,
    Rule,
    RuleError,
    RuleIn,
    RoutingOutcome,
    TicketFacts,
    evaluate,
    replace_facts,
)

WECHAT_VIP = TicketFacts(channel="wechat", language="zh-CN", customer_tier="vip", subject="账号无法登录")


def rule(rule_id: str, position: int, *conditions: Condition, stop: bool = True, enabled: bool = True,
         any_of: tuple[Condition, ...] = (), **actions) -> Rule:
    return Rule(id=rule_id, name=rule_id, position=position, conditions=conditions, any_conditions=any_of,
                actions=Action(**actions), stop=stop, enabled=enabled)


# --------------------------------------------------------------------------- evaluation


def test_no_rules_leaves_the_ticket_as_it_is():
    facts = TicketFacts(priority="low", tags=("a",))
    assert evaluate([], facts) == RoutingOutcome(None, "low", ("a",), None, ())


def test_rules_run_in_position_order_not_list_order():
    rules = [
        rule("late", 20, set_team="late-team"),
        rule("early", 10, set_team="early-team"),
    ]
    assert evaluate(rules, WECHAT_VIP).team_id == "early-team"
    assert evaluate(rules, WECHAT_VIP).matched_rule_ids == ("early",)


def test_equal_positions_keep_the_given_order():
    # the repository lists ties oldest first; evaluation must agree with that listing
    rules = [rule("b", 1, set_team="B"), rule("a", 1, set_team="A"), rule("z", 0, set_team="Z", stop=False)]
    assert evaluate(rules, WECHAT_VIP).matched_rule_ids == ("z", "b")
    assert evaluate([rules[1], rules[0], rules[2]], WECHAT_VIP).matched_rule_ids == ("z", "a")


def test_stop_ends_evaluation():
    rules = [
        rule("first", 1, Condition("channel", "eq", "wechat"), set_priority="high", stop=True),
        rule("second", 2, set_team="never"),
    ]
    out = evaluate(rules, WECHAT_VIP)
    assert out.matched_rule_ids == ("first",) and out.team_id is None and out.priority == "high"


def test_non_matching_rules_are_skipped_even_when_they_would_stop():
    rules = [
        rule("email-only", 1, Condition("channel", "eq", "email"), set_team="mail"),
        rule("wechat", 2, Condition("channel", "eq", "wechat"), set_team="cn"),
    ]
    assert evaluate(rules, WECHAT_VIP).team_id == "cn"


def test_later_rule_sees_earlier_priority_and_tags():
    rules = [
        rule("vip", 1, Condition("customer_tier", "eq", "vip"), set_priority="high", add_tags=("vip",), stop=False),
        rule("escalate", 2, Condition("priority", "gte", "high"), Condition("tags", "has_tag", "vip"),
             set_team="cn-vip", add_tags=("escalated",)),
    ]
    out = evaluate(rules, WECHAT_VIP)
    assert out == RoutingOutcome("cn-vip", "high", ("vip", "escalated"), None, ("vip", "escalate"))


def test_later_rule_does_not_match_on_what_an_earlier_rule_removed():
    facts = replace_facts(WECHAT_VIP, tags=("spam-suspect",))
    rules = [
        rule("clear", 1, remove_tags=("SPAM-suspect",), stop=False),  # removal is case-insensitive
        rule("quarantine", 2, Condition("tags", "has_tag", "spam-suspect"), set_team="quarantine"),
    ]
    out = evaluate(rules, facts)
    assert out.tags == () and out.team_id is None and out.matched_rule_ids == ("clear",)


def test_last_matching_team_and_assignee_win_and_unset_actions_keep_earlier_values():
    rules = [
        rule("a", 1, set_team="t1", set_assignee="ann", stop=False),
        rule("b", 2, set_team="t2", stop=False),
        rule("c", 3, set_priority="urgent", stop=False),
    ]
    out = evaluate(rules, WECHAT_VIP)
    assert (out.team_id, out.assignee_id, out.priority) == ("t2", "ann", "urgent")
    assert out.matched_rule_ids == ("a", "b", "c")


def test_added_tags_are_not_duplicated():
    facts = replace_facts(WECHAT_VIP, tags=("VIP",))
    out = evaluate([rule("x", 1, add_tags=("vip", "cn", "cn"))], facts)
    assert out.tags == ("VIP", "cn")


def test_disabled_rules_are_ignored():
    rules = [rule("off", 1, set_team="off", enabled=False), rule("on", 2, set_team="on")]
    assert evaluate(rules, WECHAT_VIP).team_id == "on"


def test_a_rule_without_conditions_is_a_catch_all():
    rules = [
        rule("specific", 1, Condition("channel", "eq", "email"), set_team="mail"),
        rule("fallback", 99, set_team="general"),
    ]
    assert evaluate(rules, WECHAT_VIP).team_id == "general"


@pytest.mark.parametrize(("facts", "expected"), [
    (WECHAT_VIP, True),  # all hold, one of the any-of holds
    (replace_facts(WECHAT_VIP, language="en", subject="cannot log in"), False),  # no any-of holds
    (replace_facts(WECHAT_VIP, language="en", subject="无法登录"), True),  # the other any-of holds
    (replace_facts(WECHAT_VIP, channel="email"), False),  # an all-of fails
])
def test_all_of_and_any_of(facts, expected):
    r = rule("x", 1, Condition("channel", "in", ["wechat", "wecom"]),
             any_of=(Condition("language", "eq", "zh-CN"), Condition("subject", "contains", "登录")), set_team="cn")
    assert r.matches(facts) is expected
    assert (evaluate([r], facts).team_id == "cn") is expected


def test_evaluate_does_not_mutate_its_input():
    facts = TicketFacts(tags=("a",), custom_fields={"k": 1})
    evaluate([rule("x", 1, add_tags=("b",), set_priority="urgent")], facts)
    assert facts == TicketFacts(tags=("a",), custom_fields={"k": 1})


def test_action_refuses_contradictions_and_bad_priorities():
    with pytest.raises(RuleError):
        Action(add_tags=("vip",), remove_tags=("VIP",))
    with pytest.raises(RuleError):
        Action(set_priority="critical")


# --------------------------------------------------------------------------- API models


EXAMPLE = {
    "name": "WeChat VIP in Chinese",
    "position": 10,
    "conditions": [
        {"field": "channel", "op": "eq", "value": "wechat"},
        {"field": "language", "op": "in", "value": ["zh", "zh-CN", "zh-TW"]},
        {"field": "customer_tier", "op": "eq", "value": "vip"},
    ],
    "actions": {"set_team": "cn-vip", "set_priority": "high", "add_tags": ["vip"]},
    "stop": True,
}


def test_rule_in_to_rule_evaluates():
    r = RuleIn.model_validate(EXAMPLE).to_rule(rule_id="r1")
    assert (r.id, r.position, r.stop, r.enabled) == ("r1", 10, True, True)
    out = evaluate([r], WECHAT_VIP)
    assert out == RoutingOutcome("cn-vip", "high", ("vip",), None, ("r1",))


def test_stored_definition_round_trips_like_the_service_reloads_it():
    body = RuleIn.model_validate(EXAMPLE)
    definition = body.model_dump(mode="json", exclude={"name", "position", "enabled"})
    again = RuleIn.model_validate({**definition, "name": body.name, "position": body.position})
    assert again == body
    assert again.to_rule(rule_id="r1", enabled=False).enabled is False


def test_defaults():
    r = RuleIn.model_validate({"name": "catch-all"})
    assert (r.position, r.conditions, r.any_conditions, r.stop, r.enabled) == (0, [], [], True, True)
    assert r.actions == ActionIn()


def errors_of(body: dict) -> list[tuple[str, str, str]]:
    with pytest.raises(ValidationError) as caught:
        RuleIn.model_validate(body)
    return [(".".join(map(str, e["loc"])), e["type"], e["msg"]) for e in caught.value.errors()]


def with_condition(condition: dict, key: str = "conditions") -> dict:
    return {"name": "r", key: [condition]}


RULE_ERRORS = [
    (with_condition({"field": "colour", "op": "eq", "value": "red"}),
     "conditions.0.field", "unknown_field", "unknown field 'colour'"),
    (with_condition({"field": "custom_fields.", "op": "eq", "value": "x"}),
     "conditions.0.field", "unknown_field", "custom field key"),
    (with_condition({"field": "subject", "op": "gt", "value": 1}),
     "conditions.0.op", "op_not_allowed", "op 'gt' is not allowed for field 'subject'"),
    (with_condition({"field": "tags", "op": "eq", "value": "vip"}),
     "conditions.0.op", "op_not_allowed", "allowed: exists, has_tag, in, not_in"),
    (with_condition({"field": "subject", "op": "like", "value": "x"}),
     "conditions.0.op", "unknown_op", "unknown op 'like'"),
    (with_condition({"field": "custom_fields.amount", "op": "gt", "value": "100"}),
     "conditions.0.value", "invalid_value", "op 'gt' needs a number, got '100'"),
    (with_condition({"field": "custom_fields.amount", "op": "lte", "value": False}),
     "conditions.0.value", "invalid_value", "needs a number"),
    (with_condition({"field": "priority", "op": "gte", "value": "critical"}),
     "conditions.0.value", "invalid_value", "needs one of low, normal, high, urgent"),
    (with_condition({"field": "channel", "op": "eq", "value": "carrier-pigeon"}),
     "conditions.0.value", "invalid_value", "unknown channel 'carrier-pigeon'"),
    (with_condition({"field": "channel", "op": "in", "value": "wechat"}),
     "conditions.0.value", "invalid_value", "needs a non-empty list"),
    (with_condition({"field": "subject", "op": "contains"}),
     "conditions.0.value", "invalid_value", "op 'contains' needs a value"),
    (with_condition({"field": "subject", "op": "contains", "value": "x", "negate": True}),
     "conditions.0.negate", "extra_forbidden", ""),
    (with_condition({"field": "language", "op": "eq", "value": 3}, "any_conditions"),
     "any_conditions.0.value", "invalid_value", "needs a non-empty string"),
    ({"name": "r", "actions": {"set_priority": "critical"}}, "actions.set_priority", "literal_error", ""),
    ({"name": "r", "actions": {"add_tags": ["vip"], "remove_tags": ["VIP"]}},
     "actions", "invalid_value", "tags both added and removed: vip"),
    ({"name": "r", "actions": {"assign_to": "ann"}}, "actions.assign_to", "extra_forbidden", ""),
    ({"name": "r", "actions": {"add_tags": [""]}}, "actions.add_tags.0", "string_too_short", ""),
    ({"name": "", "position": 1}, "name", "string_too_short", ""),
    ({"name": "r", "position": -1}, "position", "greater_than_equal", ""),
    ({"name": "r", "priority": "high"}, "priority", "extra_forbidden", ""),
    ({"name": "r\x00"}, "", "value_error", "NUL characters are not allowed"),
]


@pytest.mark.parametrize(("body", "loc", "code", "message"), RULE_ERRORS,
                         ids=[f"{e[1]}:{e[2]}" for e in RULE_ERRORS])
def test_rule_in_validation_errors(body, loc, code, message):
    errors = errors_of(body)
    assert any(e_loc == loc and e_code == code and message in msg for e_loc, e_code, msg in errors), errors


def test_an_unknown_field_with_an_unknown_op_reports_both_without_noise_on_value():
    errors = errors_of(with_condition({"field": "colour", "op": "like", "value": 1}))
    assert [(loc, code) for loc, code, _ in errors] == [("conditions.0.field", "unknown_field"),
                                                        ("conditions.0.op", "unknown_op")]


def test_every_failing_condition_is_reported():
    body = {"name": "r", "conditions": [
        {"field": "subject", "op": "contains", "value": "ok"},
        {"field": "subject", "op": "gt", "value": 1},
        {"field": "priority", "op": "eq", "value": "meh"},
    ]}
    assert [loc for loc, _, _ in errors_of(body)] == ["conditions.1.op", "conditions.2.value"]


def test_api_values_are_normalised_in_the_stored_definition():
    body = RuleIn.model_validate(with_condition({"field": "priority", "op": "in", "value": ["High", "urgent"]}))
    assert body.model_dump(mode="json")["conditions"][0]["value"] == ["high", "urgent"]
    exists = RuleIn.model_validate(with_condition({"field": "tags", "op": "exists"}))
    assert exists.conditions[0].value is True
