"""Custom-field bounds (forms/limits.py): pure, table-driven, and one law about the arithmetic."""

import orjson
import pytest
from hypothesis import given, strategies as st

from ticket_svc.forms.limits import (
    CUSTOM_FIELDS_MAX_BYTES,
    FREE_FORM_DEPTH_MAX,
    FREE_FORM_STRING_MAX,
    check,
    member_bytes,
    value_problem,
)


def nested(depth: int) -> object:
    value: object = 1
    for _ in range(depth):
        value = {"k": value}
    return value


@pytest.mark.parametrize(("value", "max_string", "refused"), [
    ("x" * FREE_FORM_STRING_MAX, FREE_FORM_STRING_MAX, False),
    ("x" * (FREE_FORM_STRING_MAX + 1), FREE_FORM_STRING_MAX, True),
    ("x" * (FREE_FORM_STRING_MAX + 1), None, False),  # form-defined: the field type decides
    (["a", ["b", "x" * (FREE_FORM_STRING_MAX + 1)]], FREE_FORM_STRING_MAX, True),
    (nested(FREE_FORM_DEPTH_MAX), None, False),
    (nested(FREE_FORM_DEPTH_MAX + 1), None, True),
    (2**63 - 1, None, False),
    (2**63, None, True),
    (-(2**63), None, False),
    (-(2**63) - 1, None, True),
    ([True, None, 1.5, {"n": -3}], None, False),
])
def test_value_problem(value, max_string, refused):
    assert (value_problem(value, max_string=max_string) is not None) == refused


def test_the_total_names_a_written_field_and_counts_utf8_bytes():
    half = CUSTOM_FIELDS_MAX_BYTES // 2
    stored = {"old": "字" * (half // 3)}  # three bytes each in UTF-8
    assert check({**stored, "new": "x" * (half // 3)}, written=["new"], free_form=False) == []
    errors = check({**stored, "new": "x" * (half + 10)}, written=["new"], free_form=False)
    assert [e["field"] for e in errors] == ["custom_fields.new"]
    assert str(CUSTOM_FIELDS_MAX_BYTES) in errors[0]["message"]


def test_free_form_string_limit_applies_only_to_written_free_form_values():
    long = "x" * (FREE_FORM_STRING_MAX + 1)
    assert check({"legacy": long, "n": 1}, written=["n"], free_form=True) == []  # stored values stay
    assert check({"n": long}, written=["n"], free_form=False) == []  # a form validated it
    assert [e["field"] for e in check({"n": long}, written=["n"], free_form=True)] == ["custom_fields.n"]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


@given(st.dictionaries(st.text(min_size=1, max_size=10), json_values, min_size=1, max_size=8))
def test_member_sizes_add_up_to_the_encoded_object(values):
    """So the 64 KiB bound is the real encoded size, not an estimate."""
    assert 1 + sum(member_bytes(k, v) for k, v in values.items()) == len(orjson.dumps(values))
