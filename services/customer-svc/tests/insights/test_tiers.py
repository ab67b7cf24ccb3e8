"""Tier rules: the schema refuses what cannot work (with the field's path), the first match wins,
no match keeps the tier."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from customer_svc.insights.segments import SEGMENT_KEYS
from customer_svc.insights.tiers import MAX_RULES, TierDecision, TierFacts, TierRules, decide_tier

RULES = TierRules.model_validate({"rules": [
    {"when": {"monetary_at_least": 10000, "current_tier_in": ["silver", "Gold"]}, "tier": "Gold"},
    {"when": {"segment_in": ["important_value", "important_retention"]}, "tier": "silver"},
    {"when": {"churn_risk_at_least": 70, "monetary_at_least": "5000.50"}, "tier": "at-risk VIP"},
    {"when": {"frequency_at_least": 3, "r_at_least": 4, "f_at_least": 4, "m_at_least": 2}, "tier": "ＢＲＯＮＺＥ"},
    {"when": {"monetary_below": 1}, "tier": "prospect"},
]}).rules


@pytest.mark.parametrize(("facts", "decision"), [
    # rule 0: 10000 >= 10000 and "SILVER" folds to "silver"; the rule's tier is stored folded
    (TierFacts(current_tier="SILVER", monetary=Decimal(10000)), TierDecision("gold", 0, True)),
    # rule 0 again, already gold: matched, not changed
    (TierFacts(current_tier="gold", monetary=Decimal("12000.00")), TierDecision("gold", 0, False)),
    # rule 0 wants silver or gold: a platinum customer falls through to rule 1 on its segment
    (TierFacts(current_tier="platinum", monetary=Decimal(20000), segment="important_value"),
     TierDecision("silver", 1, True)),
    # 9999.99 is below rule 0; rule 2 needs risk 70 and 5000.50
    (TierFacts(current_tier="silver", monetary=Decimal("9999.99"), churn_score=70), TierDecision("at-risk vip", 2, True)),
    (TierFacts(current_tier="silver", monetary=Decimal("5000.49"), churn_score=99), TierDecision("silver", None, False)),
    # rule 3: all four conditions hold (F 3, scores 4/4/2); NFKC turns the full-width name into "bronze"
    (TierFacts(current_tier=None, monetary=Decimal(300), frequency=3, r=4, f=4, m=2), TierDecision("bronze", 3, True)),
    # one condition of rule 3 fails (m 1 < 2): nothing else matches, the tier stays as it is
    (TierFacts(current_tier="Silver", monetary=Decimal(300), frequency=3, r=4, f=4, m=1),
     TierDecision("Silver", None, False)),
    # a customer without orders: monetary 0 < 1 matches rule 4; score conditions never hold for them
    (TierFacts(current_tier=None), TierDecision("prospect", 4, True)),
])
def test_first_match_wins_else_the_tier_stays(facts, decision):
    assert decide_tier(RULES, facts) == decision


def test_no_rules_keep_every_tier():
    assert decide_tier([], TierFacts(current_tier="gold", monetary=Decimal(10**9))) == TierDecision("gold", None, False)


def errors(body: object) -> list[tuple[tuple, str]]:
    with pytest.raises(ValidationError) as caught:
        TierRules.model_validate_json(json.dumps(body))
    return [(e["loc"], e["msg"]) for e in caught.value.errors()]


def rule(when: object, tier: object = "gold") -> dict:
    return {"rules": [{"when": when, "tier": tier}]}


@pytest.mark.parametrize(("body", "where", "says"), [
    (rule({}), ("rules", 0, "when"), "at least one condition"),
    (rule({"segment_in": ["important_value", "vip"]}), ("rules", 0, "when", "segment_in", 1), "important_value"),
    (rule({"segment_in": []}), ("rules", 0, "when", "segment_in"), "at least 1"),
    (rule({"monetary_at_least": True}), ("rules", 0, "when", "monetary_at_least"), "Decimal"),
    (rule({"monetary_at_least": "NaN"}), ("rules", 0, "when", "monetary_at_least"), "finite"),
    (rule({"monetary_at_least": -1}), ("rules", 0, "when", "monetary_at_least"), "greater than or equal to 0"),
    (rule({"monetary_at_least": "1e400"}), ("rules", 0, "when", "monetary_at_least"), "digits"),
    (rule({"monetary_at_least": 100, "monetary_below": 100}), ("rules", 0, "when"), "never matches"),
    (rule({"frequency_at_least": True}), ("rules", 0, "when", "frequency_at_least"), "integer"),
    (rule({"frequency_at_least": "3"}), ("rules", 0, "when", "frequency_at_least"), "integer"),
    (rule({"r_at_least": 6}), ("rules", 0, "when", "r_at_least"), "less than or equal to 5"),
    (rule({"churn_risk_at_least": 101}), ("rules", 0, "when", "churn_risk_at_least"), "less than or equal to 100"),
    (rule({"spend_at_least": 5}), ("rules", 0, "when", "spend_at_least"), "Extra inputs"),
    # the house check for unstorable text runs on the whole body first and names the path in its message
    (rule({"current_tier_in": ["gold\x00"]}), (), "NUL characters are not allowed (at rules[0].when.current_tier_in[0])"),
    (rule({"frequency_at_least": 1}, tier=""), ("rules", 0, "tier"), "at least 1"),
    (rule({"frequency_at_least": 1}, tier="a\nb"), ("rules", 0, "tier"), "pattern"),
    (rule({"frequency_at_least": 1}, tier=None), ("rules", 0, "tier"), "string"),
    ({"rules": [{"when": {"frequency_at_least": 1}}]}, ("rules", 0, "tier"), "required"),
    ({"rules": [{"when": {"frequency_at_least": 1}, "tier": "a"}] * (MAX_RULES + 1)}, ("rules",), "at most"),
    ({"rules": {"when": {}}}, ("rules",), "valid array"),
])
def test_bad_rules_name_the_field(body, where, says):
    found = errors(body)
    assert any(loc == where and says in message for loc, message in found), found


def test_a_rule_list_round_trips_through_json():
    parsed = TierRules.model_validate_json(TierRules(rules=RULES).model_dump_json())
    assert parsed.rules == RULES


facts = st.builds(
    TierFacts,
    current_tier=st.sampled_from([None, "gold", "silver", "platinum"]),
    monetary=st.decimals(min_value=0, max_value=10**6, places=2),
    frequency=st.integers(0, 50),
    r=st.none() | st.integers(1, 5), f=st.none() | st.integers(1, 5), m=st.none() | st.integers(1, 5),
    segment=st.none() | st.sampled_from(SEGMENT_KEYS),
    churn_score=st.none() | st.integers(0, 100),
)


@given(facts)
def test_the_decision_is_the_first_matching_rule(customer):
    decision = decide_tier(RULES, customer)
    alone = [decide_tier([rule], customer).rule_index == 0 for rule in RULES]  # each rule on its own
    if decision.rule_index is None:
        assert decision == TierDecision(customer.current_tier, None, False)
        assert not any(alone)
    else:
        assert decision.tier == RULES[decision.rule_index].tier
        assert alone.index(True) == decision.rule_index


@pytest.mark.parametrize(("amount", "value"), [
    ("5000.50", Decimal("5000.50")), (5000, Decimal(5000)), (5000.0, Decimal(5000)),
    (10**15 - 1, Decimal(10**15 - 1)), ("999999999999999.9999", Decimal("999999999999999.9999")),
])
def test_amounts_the_document_allows_are_taken(amount, value):
    rules = TierRules.model_validate({"rules": [{"when": {"monetary_at_least": amount}, "tier": "gold"}]})
    assert rules.rules[0].when.monetary_at_least == value
    assert rules.model_dump(mode="json")["rules"][0]["when"]["monetary_at_least"] == str(value)


@pytest.mark.parametrize("amount", [10**15, "1000000000000000", 5.5, "5.12345", "-1", -1, True, [], "NaN"])
def test_amounts_beyond_the_document_are_refused(amount):
    body = {"rules": [{"when": {"monetary_at_least": amount}, "tier": "gold"}]}
    assert [loc for loc, _ in errors(body)] == [("rules", 0, "when", "monetary_at_least")]
