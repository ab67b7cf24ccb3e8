"""Properties over arbitrary JSON: the engine fails only with its own errors, and its output
is storable JSON that validates again to itself."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from ticket_svc.forms import FIELD_TYPES, FieldDef, FieldErrors, FormIn, validate_create, validate_update

OPTIONS = [{"value": "a", "label": "甲"}, {"value": "b", "label": "乙"}, {"value": "中", "label": "中文"}]
FORM = FormIn.model_validate({"fields": [
    {"key": "text", "label": "文本", "type": "text", "max_length": 20},
    {"key": "long_text", "label": "长文本", "type": "long_text", "required": True, "default": "x"},
    {"key": "integer", "label": "整数", "type": "integer", "min": -5, "max": 5},
    {"key": "int64", "label": "大整数", "type": "integer"},
    {"key": "decimal", "label": "金额", "type": "decimal", "scale": 2, "min": "-10", "max": "1000"},
    {"key": "free_decimal", "label": "小数", "type": "decimal"},
    {"key": "date", "label": "日期", "type": "date"},
    {"key": "datetime", "label": "时间", "type": "datetime"},
    {"key": "single_select", "label": "单选", "type": "single_select", "options": OPTIONS},
    {"key": "multi_select", "label": "多选", "type": "multi_select", "options": OPTIONS, "max_selected": 2},
    {"key": "checkbox", "label": "勾选", "type": "checkbox"},
    {"key": "email", "label": "邮箱", "type": "email"},
    {"key": "phone", "label": "电话", "type": "phone"},
    {"key": "url", "label": "链接", "type": "url"},
    {"key": "pattern", "label": "编号", "type": "pattern", "pattern": r"[A-Z]{2}-\d{2,4}"},
    {"key": "retired", "label": "停用", "type": "text", "active": False},
]}).fields
KEYS = [f.key for f in FORM]
assert {f.type for f in FORM} == set(FIELD_TYPES)

scalars = (
    st.none() | st.booleans() | st.integers() | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats() | st.text() | st.text(alphabet="0123456789+-.: TZe()abcAB", max_size=30)
    | st.sampled_from(["a", "b", "中", "NaN", "Infinity", "-0", "1e5", "2024-02-29", "2024-05-01T09:30:00+08:00",
                       "https://example.com", "javascript:x", "+86 138 0013 8000", "a@b.co", "AB-123", ""])
)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4),
    max_leaves=8,
)
payloads = st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=8), json_values, max_size=10)

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def assert_storable(values: dict[str, Any]) -> None:
    json.dumps(values, allow_nan=False, ensure_ascii=False).encode("utf-8")


@SETTINGS
@given(payloads)
def test_validate_create_fails_only_with_field_errors_and_returns_stable_json(values: dict[str, Any]) -> None:
    try:
        result = validate_create(FORM, values)
    except FieldErrors as exc:
        assert exc.errors and all(set(e) == {"field", "message"} for e in exc.errors)
        assert all(e["field"].startswith("custom_fields") and e["message"] for e in exc.errors)
        fields = [e["field"] for e in exc.errors]
        assert len(fields) == len(set(fields))  # one entry per failing field
        return
    assert_storable(result)
    assert set(result) <= set(KEYS) - {"retired"}
    assert validate_create(FORM, result) == result  # normalised values are fixed points


@SETTINGS
@given(payloads, payloads)
def test_validate_update_fails_only_with_field_errors(current: dict[str, Any], patch: dict[str, Any]) -> None:
    try:
        result = validate_update(FORM, FORM[:5], current, patch)
    except FieldErrors as exc:
        assert exc.errors
        return
    assert set(result) <= set(current) | set(patch)
    assert validate_update(FORM, FORM[:5], result, {}) == result


definition_attrs = st.fixed_dictionaries(
    {"type": st.sampled_from(sorted(FIELD_TYPES)) | st.text(max_size=6)},
    optional={
        "required": json_values, "default": json_values, "max_length": json_values, "min": json_values,
        "max": json_values, "scale": st.integers(-2, 25) | json_values, "options": st.lists(
            st.fixed_dictionaries({"value": st.text(max_size=4), "label": st.text(max_size=4)}), max_size=4,
        ) | json_values, "max_selected": json_values, "active": json_values,
        "pattern": st.text(alphabet="()[]{}*+?|\\.^$ab01,:<>=!-", max_size=25),
    },
)


@SETTINGS
@given(definition_attrs)
def test_field_definitions_fail_only_with_validation_errors_and_round_trip(attrs: dict[str, Any]) -> None:
    try:
        field = FieldDef.model_validate({"key": "f", "label": "字段", **attrs})
    except ValidationError:
        return
    assert FieldDef.model_validate(field.model_dump(mode="json")) == field
    assert_storable(field.model_dump(mode="json"))
