"""Every field × op a condition allows, as a table: (field, op, value, facts, expected)."""

from __future__ import annotations

import pytest

from ticket_svc.routing.rules import FIELD_OPS, Condition, RuleError, TicketFacts

F = TicketFacts(
    channel="wechat",
    type="refund",
    priority="high",
    language="zh-CN",
    tags=("vip", "Billing"),
    customer_tier="gold",
    subject="订单退款申请 Order #42 REFUND",
    custom_fields={"order_total": 250, "region": "华东", "score": "7.5", "flags": ["a", "b"], "gift": False,
                   "empty": ""},
)
BARE = TicketFacts()  # nothing known: channel/type/language/tier None, no tags, empty subject

CASES = [
    # channel
    ("channel", "eq", "wechat", F, True),
    ("channel", "eq", "email", F, False),
    ("channel", "ne", "email", F, True),
    ("channel", "ne", "wechat", F, False),
    ("channel", "ne", "email", BARE, True),  # missing fact satisfies negative ops
    ("channel", "in", ["wechat", "wecom"], F, True),
    ("channel", "in", ["email", "web"], F, False),
    ("channel", "not_in", ["email", "web"], F, True),
    ("channel", "not_in", ["wechat"], F, False),
    ("channel", "exists", True, F, True),
    ("channel", "exists", True, BARE, False),
    ("channel", "exists", False, BARE, True),
    ("channel", "exists", None, F, True),  # no value means "exists: true"
    # type
    ("type", "eq", "Refund", F, True),  # case-insensitive
    ("type", "ne", "question", F, True),
    ("type", "in", ["question", "refund"], F, True),
    ("type", "not_in", ["refund"], F, False),
    ("type", "exists", True, BARE, False),
    ("type", "eq", "refund", BARE, False),
    # language
    ("language", "eq", "zh-cn", F, True),
    ("language", "in", ["en", "zh-CN"], F, True),
    ("language", "not_in", ["en"], F, True),
    ("language", "ne", "zh-CN", F, False),
    ("language", "exists", False, F, False),
    # customer_tier
    ("customer_tier", "eq", "gold", F, True),
    ("customer_tier", "eq", "gold", BARE, False),
    ("customer_tier", "in", ["vip", "gold"], F, True),
    ("customer_tier", "not_in", ["vip", "gold"], BARE, True),
    ("customer_tier", "ne", "vip", F, True),
    ("customer_tier", "exists", True, F, True),
    # priority: names and rank order low < normal < high < urgent
    ("priority", "eq", "high", F, True),
    ("priority", "eq", "HIGH", F, True),
    ("priority", "ne", "high", F, False),
    ("priority", "in", ["urgent", "high"], F, True),
    ("priority", "not_in", ["urgent", "high"], F, False),
    ("priority", "gt", "normal", F, True),
    ("priority", "gt", "high", F, False),
    ("priority", "gte", "high", F, True),
    ("priority", "gte", "urgent", F, False),
    ("priority", "lt", "urgent", F, True),
    ("priority", "lt", "high", F, False),
    ("priority", "lte", "high", F, True),
    ("priority", "lte", "normal", F, False),
    ("priority", "lt", "normal", BARE, False),  # BARE is "normal"
    ("priority", "gte", "low", BARE, True),
    # subject: substring, case-insensitive, Chinese, full-width
    ("subject", "contains", "退款", F, True),
    ("subject", "contains", "退货", F, False),
    ("subject", "contains", "refund", F, True),
    ("subject", "contains", "ＲＥＦＵＮＤ", F, True),  # full-width typed on a Chinese keyboard
    ("subject", "contains", "order #42", F, True),
    ("subject", "not_contains", "退款", F, False),
    ("subject", "not_contains", "发票", F, True),
    ("subject", "not_contains", "x", BARE, True),
    ("subject", "contains", "x", BARE, False),
    ("subject", "eq", "订单退款申请 order #42 refund", F, True),
    ("subject", "ne", "hello", F, True),
    ("subject", "in", ["hello", "订单退款申请 Order #42 refund"], F, True),
    ("subject", "not_in", ["hello"], F, True),
    ("subject", "exists", True, BARE, False),  # "" counts as absent
    ("subject", "exists", True, F, True),
    # tags: any element matches, case-insensitive
    ("tags", "has_tag", "vip", F, True),
    ("tags", "has_tag", "billing", F, True),
    ("tags", "has_tag", "spam", F, False),
    ("tags", "has_tag", "vip", BARE, False),
    ("tags", "in", ["spam", "VIP"], F, True),
    ("tags", "in", ["spam"], F, False),
    ("tags", "not_in", ["spam"], F, True),
    ("tags", "not_in", ["spam", "vip"], F, False),
    ("tags", "not_in", ["spam"], BARE, True),
    ("tags", "exists", True, F, True),
    ("tags", "exists", True, BARE, False),
    # custom fields: numbers
    ("custom_fields.order_total", "gt", 200, F, True),
    ("custom_fields.order_total", "gt", 250, F, False),
    ("custom_fields.order_total", "gte", 250, F, True),
    ("custom_fields.order_total", "lt", 250.5, F, True),
    ("custom_fields.order_total", "lte", 249, F, False),
    ("custom_fields.order_total", "eq", 250, F, True),
    ("custom_fields.order_total", "eq", 250.0, F, True),
    ("custom_fields.order_total", "ne", 251, F, True),
    ("custom_fields.order_total", "in", [100, 250], F, True),
    ("custom_fields.order_total", "not_in", [100, 250], F, False),
    ("custom_fields.score", "gte", 7.5, F, True),  # numeric text compares as a number
    ("custom_fields.region", "gt", 1, F, False),  # non-numeric text never orders
    ("custom_fields.missing", "gt", 0, F, False),
    ("custom_fields.missing", "lt", 0, F, False),
    # custom fields: text, lists, booleans, presence
    ("custom_fields.region", "eq", "华东", F, True),
    ("custom_fields.region", "contains", "华", F, True),
    ("custom_fields.region", "not_contains", "华南", F, True),
    ("custom_fields.region", "in", ["华南", "华东"], F, True),
    ("custom_fields.order_total", "contains", "25", F, False),  # contains is for text only
    ("custom_fields.flags", "eq", "b", F, True),  # list: any element
    ("custom_fields.flags", "in", ["z", "a"], F, True),
    ("custom_fields.flags", "not_in", ["a"], F, False),
    ("custom_fields.flags", "contains", "A", F, True),
    ("custom_fields.gift", "eq", False, F, True),
    ("custom_fields.gift", "eq", 0, F, False),  # booleans never equal numbers
    ("custom_fields.gift", "exists", True, F, True),  # False is a value
    ("custom_fields.empty", "exists", True, F, False),
    ("custom_fields.missing", "exists", False, F, True),
    ("custom_fields.missing", "eq", "x", F, False),
    ("custom_fields.missing", "ne", "x", F, True),
    ("custom_fields.missing", "not_contains", "x", F, True),
]


@pytest.mark.parametrize(("field", "op", "value", "facts", "expected"), CASES,
                         ids=[f"{c[0]}-{c[1]}-{c[2]!r}-{i}" for i, c in enumerate(CASES)])
def test_condition_table(field, op, value, facts, expected):
    assert Condition(field, op, value).holds(facts) is expected


def test_table_covers_every_allowed_field_op_pair():
    covered = {("custom_fields" if f.startswith("custom_fields.") else f, op) for f, op, *_ in CASES}
    allowed = {(f, op) for f, ops in FIELD_OPS.items() for op in ops}
    assert allowed - covered == set()


INVALID = [
    ("nope", "eq", "x", "unknown_field"),
    ("custom_fields.", "eq", "x", "unknown_field"),
    ("custom_fields", "eq", "x", "unknown_field"),
    ("subject", "gt", 3, "op_not_allowed"),
    ("tags", "contains", "vip", "op_not_allowed"),
    ("channel", "has_tag", "x", "op_not_allowed"),
    ("priority", "exists", True, "op_not_allowed"),
    ("subject", "matches", "x", "unknown_op"),
    ("channel", "eq", "e-mail", "invalid_value"),
    ("priority", "eq", "critical", "invalid_value"),
    ("priority", "gt", 2, "invalid_value"),
    ("custom_fields.n", "gt", "10", "invalid_value"),
    ("custom_fields.n", "gt", True, "invalid_value"),
    ("custom_fields.n", "lt", float("nan"), "invalid_value"),
    ("subject", "contains", "", "invalid_value"),
    ("subject", "contains", None, "invalid_value"),
    ("channel", "in", [], "invalid_value"),
    ("channel", "in", "wechat", "invalid_value"),
    ("tags", "has_tag", 5, "invalid_value"),
    ("channel", "exists", "yes", "invalid_value"),
    ("custom_fields.x", "eq", {"a": 1}, "invalid_value"),
]


@pytest.mark.parametrize(("field", "op", "value", "code"), INVALID)
def test_invalid_conditions_are_refused_at_construction(field, op, value, code):
    with pytest.raises(RuleError) as caught:
        Condition(field, op, value)
    assert caught.value.code == code


def test_values_are_normalised():
    assert Condition("priority", "eq", " High ").value == "high"
    assert Condition("channel", "in", ["web", "chat"]).value == ("web", "chat")
    assert Condition("tags", "exists").value is True
