"""Every field type, valid and invalid values, through ``validate_create`` (one field "f").

Each row is (definition attributes, given value, expected stored value / expected message).
"""

from __future__ import annotations

from typing import Any

import pytest

from ticket_svc.forms import FIELD_TYPES, FieldDef, FieldErrors, validate_create

OPTIONS = [{"value": "a", "label": "选项甲"}, {"value": "b", "label": "Option B"}, {"value": "c", "label": "オプション"}]


def field(type_: str, **attrs: Any) -> FieldDef:
    return FieldDef(key="f", label="字段", type=type_, **attrs)


def stored(definition: dict[str, Any], value: Any) -> Any:
    return validate_create([field(**definition)], {"f": value}).get("f")


def message(definition: dict[str, Any], value: Any) -> str:
    with pytest.raises(FieldErrors) as info:
        validate_create([field(**definition)], {"f": value})
    (error,) = info.value.errors
    assert error["field"] == "custom_fields.f"
    return error["message"]


VALID: list[tuple[dict[str, Any], Any, Any]] = [
    # text
    ({"type_": "text"}, "hello", "hello"),
    ({"type_": "text"}, "  padded  ", "padded"),
    ({"type_": "text"}, "退款申请 — 订单号 A-1001", "退款申请 — 订单号 A-1001"),
    ({"type_": "text"}, "x" * 1000, "x" * 1000),
    ({"type_": "text", "max_length": 5}, "12345", "12345"),
    ({"type_": "text", "max_length": 3}, "中文字", "中文字"),  # characters, not bytes
    # long_text
    ({"type_": "long_text"}, "  line 1\n\n    code\n", "  line 1\n\n    code\n"),
    ({"type_": "long_text"}, "y" * 65_536, "y" * 65_536),
    # integer
    ({"type_": "integer"}, 0, 0),
    ({"type_": "integer"}, -5, -5),
    ({"type_": "integer"}, 2**63 - 1, 2**63 - 1),
    ({"type_": "integer"}, -(2**63), -(2**63)),
    ({"type_": "integer", "min": 1, "max": 10}, 1, 1),
    ({"type_": "integer", "min": 1, "max": 10}, 10, 10),
    # decimal
    ({"type_": "decimal"}, "12.50", "12.50"),
    ({"type_": "decimal"}, 12.5, "12.5"),
    ({"type_": "decimal"}, 0.1, "0.1"),
    ({"type_": "decimal"}, 7, "7"),
    ({"type_": "decimal"}, "-0.00", "0.00"),
    ({"type_": "decimal"}, " +3.25 ", "3.25"),
    ({"type_": "decimal"}, ".5", "0.5"),
    ({"type_": "decimal", "scale": 2}, "12.5", "12.50"),
    ({"type_": "decimal", "scale": 2}, 12.5, "12.50"),
    ({"type_": "decimal", "scale": 2}, "12.500", "12.50"),  # trailing zeros are not extra places
    ({"type_": "decimal", "scale": 0}, 3, "3"),
    ({"type_": "decimal", "min": "0", "max": "99.99", "scale": 2}, "99.99", "99.99"),
    ({"type_": "decimal"}, "12345678901234567890.123456789012345678", "12345678901234567890.123456789012345678"),
    # date
    ({"type_": "date"}, "2024-02-29", "2024-02-29"),
    ({"type_": "date"}, " 2024-05-01 ", "2024-05-01"),
    # datetime
    ({"type_": "datetime"}, "2024-05-01T09:30:00+08:00", "2024-05-01T01:30:00Z"),
    ({"type_": "datetime"}, "2024-05-01T09:30:00Z", "2024-05-01T09:30:00Z"),
    ({"type_": "datetime"}, "2024-05-01t09:30:00z", "2024-05-01T09:30:00Z"),
    ({"type_": "datetime"}, "2024-05-01 09:30:00-05:30", "2024-05-01T15:00:00Z"),
    ({"type_": "datetime"}, "2024-12-31T23:30:00.123456789-01:00", "2025-01-01T00:30:00.123456Z"),
    ({"type_": "datetime"}, "2024-05-01T00:00:00.5+00:00", "2024-05-01T00:00:00.500000Z"),
    # single_select
    ({"type_": "single_select", "options": OPTIONS}, "b", "b"),
    ({"type_": "single_select", "options": [{"value": "退款", "label": "退款"}]}, "退款", "退款"),
    # multi_select
    ({"type_": "multi_select", "options": OPTIONS}, ["c", "a"], ["c", "a"]),
    ({"type_": "multi_select", "options": OPTIONS, "max_selected": 2}, ["a", "b"], ["a", "b"]),
    # checkbox
    ({"type_": "checkbox"}, True, True),
    ({"type_": "checkbox"}, False, False),
    # email
    ({"type_": "email"}, "Li.Lei@Example.COM", "Li.Lei@example.com"),
    ({"type_": "email"}, "user+tag@mail.example.cn", "user+tag@mail.example.cn"),
    ({"type_": "email"}, "张三@例子.中国", "张三@例子.中国"),
    # phone
    ({"type_": "phone"}, "+86 138-0013-8000", "+8613800138000"),
    ({"type_": "phone"}, "+1 (415) 555-0100", "+14155550100"),
    ({"type_": "phone"}, "010 6552 9988", "01065529988"),
    # url
    ({"type_": "url"}, "https://example.com/orders/1?x=1#top", "https://example.com/orders/1?x=1#top"),
    ({"type_": "url"}, "HTTP://example.com:8080", "HTTP://example.com:8080"),
    ({"type_": "url"}, "https://例子.中国/路径", "https://例子.中国/路径"),
    # pattern
    ({"type_": "pattern", "pattern": r"[A-Z]{2}-\d{4,8}"}, "AB-12345", "AB-12345"),
    ({"type_": "pattern", "pattern": r"^ORD\d+$"}, " ORD42 ", "ORD42"),
    ({"type_": "pattern", "pattern": r"[\u4e00-\u9fff]{2,4}"}, "张三丰", "张三丰"),
]


@pytest.mark.parametrize(("definition", "value", "expected"), VALID)
def test_valid_values_are_normalised(definition: dict[str, Any], value: Any, expected: Any) -> None:
    result = stored(definition, value)
    assert result == expected
    assert type(result) is type(expected)


INVALID: list[tuple[dict[str, Any], Any, str]] = [
    # text
    ({"type_": "text"}, 5, "must be a string"),
    ({"type_": "text"}, ["x"], "must be a string"),
    ({"type_": "text"}, "x" * 1001, "must be at most 1000 characters"),
    ({"type_": "text", "max_length": 3}, "中文字符", "must be at most 3 characters"),
    ({"type_": "text"}, "a\x00b", "must not contain NUL characters"),
    ({"type_": "text"}, "bad \ud800 surrogate", "must be valid Unicode text"),
    # long_text
    ({"type_": "long_text"}, "y" * 65_537, "must be at most 65536 characters"),
    ({"type_": "long_text"}, {"a": 1}, "must be a string"),
    # integer
    ({"type_": "integer"}, True, "must be an integer"),
    ({"type_": "integer"}, False, "must be an integer"),
    ({"type_": "integer"}, 3.0, "must be an integer"),
    ({"type_": "integer"}, "3", "must be an integer"),
    ({"type_": "integer"}, 2**63, "must be an integer between -9223372036854775808 and 9223372036854775807"),
    ({"type_": "integer"}, -(2**63) - 1, "must be an integer between -9223372036854775808 and 9223372036854775807"),
    ({"type_": "integer", "min": 1, "max": 10}, 0, "must be an integer between 1 and 10"),
    ({"type_": "integer", "min": 1, "max": 10}, 11, "must be an integer between 1 and 10"),
    ({"type_": "integer", "min": 1, "max": 10}, True, "must be an integer between 1 and 10"),
    ({"type_": "integer", "min": 0}, -1, "must be an integer of at least 0"),
    ({"type_": "integer", "max": 5}, 6, "must be an integer of at most 5"),
    # decimal
    ({"type_": "decimal"}, "NaN", "must be a decimal number"),
    ({"type_": "decimal"}, "Infinity", "must be a decimal number"),
    ({"type_": "decimal"}, "-inf", "must be a decimal number"),
    ({"type_": "decimal"}, float("nan"), "must be a decimal number"),
    ({"type_": "decimal"}, float("inf"), "must be a decimal number"),
    ({"type_": "decimal"}, float("-inf"), "must be a decimal number"),
    ({"type_": "decimal"}, "1e999999999", "must be a decimal number"),
    ({"type_": "decimal"}, "12,50", "must be a decimal number"),
    ({"type_": "decimal"}, "1.2.3", "must be a decimal number"),
    ({"type_": "decimal"}, True, "must be a decimal number"),
    ({"type_": "decimal"}, [1], "must be a decimal number"),
    ({"type_": "decimal"}, 10**30, "must have at most 20 digits before the decimal point"),
    ({"type_": "decimal"}, 1e25, "must have at most 20 digits before the decimal point"),
    ({"type_": "decimal"}, 10**400, "must have at most 20 digits before the decimal point"),
    ({"type_": "decimal"}, "0." + "1" * 19, "must have at most 18 decimal places"),
    ({"type_": "decimal", "scale": 2}, "12.345", "must have at most 2 decimal places"),
    ({"type_": "decimal", "scale": 0}, 0.5, "must have at most 0 decimal places"),
    ({"type_": "decimal", "min": "0", "max": "100"}, "-0.01", "must be a decimal number between 0 and 100"),
    ({"type_": "decimal", "min": "0.5"}, 0.25, "must be a decimal number of at least 0.5"),
    # date
    ({"type_": "date"}, "2023-02-29", "must be a date in YYYY-MM-DD form"),
    ({"type_": "date"}, "20240501", "must be a date in YYYY-MM-DD form"),
    ({"type_": "date"}, "2024-5-1", "must be a date in YYYY-MM-DD form"),
    ({"type_": "date"}, "2024-05-01T00:00:00Z", "must be a date in YYYY-MM-DD form"),
    ({"type_": "date"}, 20240501, "must be a date in YYYY-MM-DD form"),
    # datetime
    ({"type_": "datetime"}, "2024-05-01T09:30:00", "must be a date-time in RFC 3339 form with a UTC offset"),
    ({"type_": "datetime"}, "2024-05-01T09:30", "must be a date-time"),
    ({"type_": "datetime"}, "2024-05-01", "must be a date-time"),
    ({"type_": "datetime"}, "2024-05-01T09:30:00+0800", "must be a date-time"),
    ({"type_": "datetime"}, "2024-05-01T24:00:00Z", "must be a date-time"),
    ({"type_": "datetime"}, "2024-06-30T23:59:60Z", "must be a date-time"),
    ({"type_": "datetime"}, "2024-05-01T09:30:00+24:00", "must be a date-time"),
    ({"type_": "datetime"}, "0001-01-01T00:00:00+01:00", "must be a date-time"),  # before year 1 in UTC
    ({"type_": "datetime"}, "9999-12-31T23:59:59-01:00", "must be a date-time"),  # after year 9999 in UTC
    ({"type_": "datetime"}, 1714555800, "must be a date-time"),
    # single_select
    ({"type_": "single_select", "options": OPTIONS}, "d", "must be one of: a, b, c"),
    ({"type_": "single_select", "options": OPTIONS}, "选项甲", "must be one of: a, b, c"),  # labels are not values
    ({"type_": "single_select", "options": OPTIONS}, ["a"], "must be one of: a, b, c"),
    # multi_select
    ({"type_": "multi_select", "options": OPTIONS}, "a", "must be a list of option values: a, b, c"),
    ({"type_": "multi_select", "options": OPTIONS}, ["a", 1], "must be a list of option values: a, b, c"),
    ({"type_": "multi_select", "options": OPTIONS}, ["a", "z"], "must only contain: a, b, c"),
    ({"type_": "multi_select", "options": OPTIONS}, ["a", "a"], "must not contain the same value twice"),
    ({"type_": "multi_select", "options": OPTIONS, "max_selected": 2}, ["a", "b", "c"], "must have at most 2 values selected"),
    # checkbox
    ({"type_": "checkbox"}, 1, "must be true or false"),
    ({"type_": "checkbox"}, "true", "must be true or false"),
    # email
    ({"type_": "email"}, "no-at-sign", "must be an e-mail address"),
    ({"type_": "email"}, "a@b", "must be an e-mail address"),
    ({"type_": "email"}, "a@@b.co", "must be an e-mail address"),
    ({"type_": "email"}, "a b@c.co", "must be an e-mail address"),
    ({"type_": "email"}, "a@b..co", "must be an e-mail address"),
    ({"type_": "email"}, ".a@b.co", "must be an e-mail address"),
    ({"type_": "email"}, "x" * 65 + "@b.co", "must be an e-mail address"),
    # phone
    ({"type_": "phone"}, "1234", "must be a phone number"),
    ({"type_": "phone"}, "+0 123 4567", "must be a phone number"),
    ({"type_": "phone"}, "+12345", "must be a phone number"),
    ({"type_": "phone"}, "1" * 16, "must be a phone number"),
    ({"type_": "phone"}, "call me", "must be a phone number"),
    ({"type_": "phone"}, 8613800138000, "must be a phone number"),
    # url
    ({"type_": "url"}, "javascript:alert(1)", "must be an http or https URL"),
    ({"type_": "url"}, "ftp://example.com/x", "must be an http or https URL"),
    ({"type_": "url"}, "file:///etc/passwd", "must be an http or https URL"),
    ({"type_": "url"}, "https://", "must be an http or https URL"),
    ({"type_": "url"}, "example.com", "must be an http or https URL"),
    ({"type_": "url"}, "https://exa mple.com", "must be an http or https URL"),
    ({"type_": "url"}, "https://example.com:99999/", "must be an http or https URL"),
    ({"type_": "url"}, "https://example.com/" + "a" * 2100, "must be an http or https URL"),
    # pattern
    ({"type_": "pattern", "pattern": r"[A-Z]{2}-\d{4,8}"}, "AB-123", r"must match the pattern [A-Z]{2}-\d{4,8}"),
    ({"type_": "pattern", "pattern": r"[A-Z]{2}-\d{4,8}"}, "xAB-12345", "must match the pattern"),  # whole value
    ({"type_": "pattern", "pattern": r".*"}, "z" * 1001, "must be at most 1000 characters"),
    ({"type_": "pattern", "pattern": r".*", "max_length": 10}, "z" * 11, "must be at most 10 characters"),
    ({"type_": "pattern", "pattern": r"\d+"}, 42, "must be a string"),
]


@pytest.mark.parametrize(("definition", "value", "expected"), INVALID)
def test_invalid_values_are_refused_with_a_clear_message(definition: dict[str, Any], value: Any, expected: str) -> None:
    assert expected in message(definition, value)


def test_every_type_has_valid_and_invalid_rows() -> None:
    valid = {row[0]["type_"] for row in VALID}
    invalid = {row[0]["type_"] for row in INVALID}
    assert valid == invalid == set(FIELD_TYPES)


def test_long_option_lists_are_cut_in_messages() -> None:
    options = [{"value": f"v{i}", "label": f"标签{i}"} for i in range(30)]
    text = message({"type_": "single_select", "options": options}, "nope")
    assert text.startswith("must be one of: v0, v1,") and text.endswith("v19, …")


def test_pattern_matching_a_long_hostile_value_is_fast() -> None:
    """The definition-time cost check keeps even worst-case inputs quick at the length limit."""
    import time

    definition = {"type_": "pattern", "pattern": r"\d+\d+x"}
    started = time.perf_counter()
    assert "must match" in message(definition, "1" * 1000)
    assert time.perf_counter() - started < 1.0
