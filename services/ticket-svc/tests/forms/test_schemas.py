"""Admin definitions: what a form save accepts, what it refuses and how it round-trips."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from ticket_svc.forms import FieldDef, FormIn

OPTIONS = [{"value": "refund", "label": "退款"}, {"value": "exchange", "label": "换货"}]


def form(*fields: dict[str, Any], ticket_type: str | None = "refund") -> FormIn:
    return FormIn.model_validate({"ticket_type": ticket_type, "fields": list(fields)})


def refused(*fields: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as info:
        form(*fields)
    return str(info.value)


def fd(type_: str, key: str = "f", **attrs: Any) -> dict[str, Any]:
    return {"key": key, "label": "字段名称", "type": type_, **attrs}


def test_a_full_form_with_chinese_labels_round_trips_through_json() -> None:
    saved = form(
        fd("text", "order_no", required=True, help_text="订单号，例如 A-1001", max_length=32),
        fd("long_text", "details"),
        fd("integer", "quantity", min=1, max=99, default=1),
        fd("decimal", "amount", min=0, max="99999.99", scale=2, default="0"),
        fd("date", "purchased_on"),
        fd("datetime", "callback_at", default="2024-05-01T09:30:00+08:00"),
        fd("single_select", "reason", options=OPTIONS, default="refund"),
        fd("multi_select", "channels", options=OPTIONS, max_selected=1, default=["exchange"]),
        fd("checkbox", "agreed", default=False),
        fd("email", "contact", default="A@Example.com"),
        fd("phone", "mobile"),
        fd("url", "receipt"),
        fd("pattern", "sku", pattern=r"[A-Z]{3}-\d{6}", default="ABC-123456"),
        fd("text", "legacy", active=False),
    )
    stored = saved.model_dump(mode="json")
    assert FormIn.model_validate(stored) == saved
    # what the service reads back from the database
    fields = TypeAdapter(list[FieldDef]).validate_python(stored["fields"])
    assert fields == saved.fields
    defaults = {f.key: f.default for f in fields if f.default is not None}
    assert defaults == {
        "quantity": 1, "amount": "0.00", "callback_at": "2024-05-01T01:30:00Z", "reason": "refund",
        "channels": ["exchange"], "agreed": False, "contact": "A@example.com", "sku": "ABC-123456",
    }
    assert fields[3].min == "0" and fields[3].max == "99999.99"
    assert fields[0].label == "字段名称" and fields[6].options[0].label == "退款"


def test_the_default_form_has_no_ticket_type_and_may_be_empty() -> None:
    assert form(ticket_type=None).fields == []


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ([fd("text", "a"), fd("integer", "a")], "field keys must be unique (repeated: a)"),
        ([fd("text", "Order")], "String should match pattern"),
        ([fd("text", "1st")], "String should match pattern"),
        ([fd("text", "a" * 65)], "String should match pattern"),
        ([fd("text", "订单")], "String should match pattern"),
        ([{**fd("text"), "label": "   "}], "label"),
        ([fd("colour")], "must be one of: text, long_text, integer"),
        ([fd("text", extra=1)], "Extra inputs are not permitted"),
        ([fd("text", help_text="x\x00y")], "NUL characters are not allowed"),
        # defaults are validated against the type
        ([fd("integer", default=True)], "default must be an integer"),
        ([fd("integer", min=1, max=10, default=11)], "default must be an integer between 1 and 10"),
        ([fd("decimal", default="NaN")], "default must be a decimal number"),
        ([fd("decimal", scale=1, default="1.25")], "default must have at most 1 decimal places"),
        ([fd("date", default="2024-02-30")], "default must be a date in YYYY-MM-DD form"),
        ([fd("datetime", default="2024-05-01T09:30:00")], "default must be a date-time"),
        ([fd("single_select", options=OPTIONS, default="other")], "default must be one of: refund, exchange"),
        ([fd("multi_select", options=OPTIONS, default=["refund", "refund"])], "default must not contain the same value twice"),
        ([fd("checkbox", default="yes")], "default must be true or false"),
        ([fd("email", default="nope")], "default must be an e-mail address"),
        ([fd("url", default="javascript:alert(1)")], "default must be an http or https URL"),
        ([fd("text", max_length=5, default="too long")], "default must be at most 5 characters"),
        ([fd("pattern", pattern=r"\d+", default="abc")], r"default must match the pattern \d+"),
        # selects
        ([fd("single_select")], "options must list at least one option"),
        ([fd("single_select", options=[])], "options must list at least one option"),
        ([fd("multi_select", options=[*OPTIONS, {"value": "refund", "label": "again"}])],
         "options must have unique values (repeated: refund)"),
        ([fd("single_select", options=[{"value": " padded", "label": "x"}])], "String should match pattern"),
        ([fd("single_select", options=[{"value": "a", "label": ""}])], "String should have at least 1 character"),
        ([fd("single_select", options=[{"value": "a"}])], "Field required"),
        ([fd("multi_select", options=OPTIONS, max_selected=3)], "max_selected must be between 1 and the number of options (2)"),
        ([fd("multi_select", options=OPTIONS, max_selected=0)], "max_selected must be between 1"),
        # numbers
        ([fd("integer", min=10, max=1)], "min must not be greater than max"),
        ([fd("decimal", min="10.5", max="10.25")], "min must not be greater than max"),
        ([fd("integer", min=1.5)], "min must be an integer between"),
        ([fd("integer", max=2**63)], "max must be an integer between"),
        ([fd("integer", min=True)], "min must be an integer between"),
        ([fd("decimal", min="Infinity")], "min must be a decimal number"),
        ([fd("decimal", scale=19)], "scale must be between 0 and 18"),
        ([fd("decimal", scale=-1)], "scale must be between 0 and 18"),
        ([fd("decimal", scale=1, max="1.25")], "max must have at most 1 decimal places"),
        # lengths
        ([fd("text", max_length=1001)], "max_length must be between 1 and 1000"),
        ([fd("text", max_length=0)], "max_length must be between 1 and 1000"),
        ([fd("long_text", max_length=65_537)], "max_length must be between 1 and 65536"),
        # attributes of other types are mistakes, not ignored settings
        ([fd("integer", options=OPTIONS)], "options does not apply to fields of type integer"),
        ([fd("text", min=1)], "min does not apply to fields of type text"),
        ([fd("checkbox", pattern="x")], "pattern does not apply to fields of type checkbox"),
        ([fd("single_select", options=OPTIONS, max_selected=1)], "max_selected does not apply"),
        # admin patterns
        ([fd("pattern")], "pattern is required for fields of type pattern"),
        ([fd("pattern", pattern="(unclosed")], "pattern does not compile"),
        ([fd("pattern", pattern="a" * 201)], "pattern must be at most 200 characters"),
        ([fd("pattern", pattern=r"(a+)+$")], "pattern must not nest repetitions"),
        ([fd("pattern", pattern=r"(\w*\s?)*$")], "pattern must not nest repetitions"),
        ([fd("pattern", pattern=r"(a?){25}a{25}")], "pattern must not nest repetitions"),
        ([fd("pattern", pattern=r"(ab|a)*c")], "pattern must not repeat an alternation"),
        ([fd("pattern", pattern=r"(a)\1")], "pattern must not use back-references"),
        ([fd("pattern", pattern=r".*.*.*x")], "pattern is too expensive to match"),
        ([fd("pattern", pattern=r"\w+\s?\w+\s?\w+!")], "pattern is too expensive to match"),
    ],
)
def test_invalid_definitions_are_refused(fields: list[dict[str, Any]], expected: str) -> None:
    assert expected in refused(*fields)


def test_all_problems_of_one_field_are_reported_together() -> None:
    text = refused(fd("decimal", options=OPTIONS, pattern="x", scale=40))
    assert "options does not apply" in text and "pattern does not apply" in text and "scale must be between" in text


def test_problems_of_several_fields_are_reported_together() -> None:
    with pytest.raises(ValidationError) as info:
        form(fd("integer", "a", min=5, max=1), fd("single_select", "b"), fd("text", "c", default=3))
    assert len(info.value.errors()) == 3


@pytest.mark.parametrize(
    "pattern",
    [
        r"[A-Z]{2}-\d{4,8}",
        r"^ORD\d+$",
        r"[A-Z]+-\d+",
        r"(\d{3}-)+\d{4}",  # fixed-count repetition inside a repetition cannot backtrack
        r"(?:foo|bar)-\d{1,5}",
        r"(a|b|c)+",  # single-character alternatives are a character class
        r"(?i)[a-z0-9._%+-]{1,64}@[a-z0-9.-]{1,100}",
        r"[\u4e00-\u9fff]{2,4}",
    ],
)
def test_ordinary_patterns_are_accepted(pattern: str) -> None:
    assert form(fd("pattern", pattern=pattern)).fields[0].pattern == pattern


def test_too_many_fields_are_refused() -> None:
    many = [fd("text", f"f{i}") for i in range(101)]
    assert "at most 100 active fields" in refused(*many)
    inactive = [fd("text", f"f{i}", active=False) for i in range(101)]
    assert len(form(*inactive).fields) == 101
    assert "List should have at most 200 items" in refused(*[fd("text", f"g{i}", active=False) for i in range(201)])


def test_blank_defaults_mean_no_default() -> None:
    fields = form(fd("text", "a", default="  "), fd("multi_select", "b", options=OPTIONS, default=[])).fields
    assert [f.default for f in fields] == [None, None]
