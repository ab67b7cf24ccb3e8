"""Ticket values against form versions: defaults, required, several errors, versioning."""

from __future__ import annotations

from typing import Any

import pytest

from ticket_svc.forms import FieldDef, FieldErrors, FormIn, validate_create, validate_update


def version(*fields: dict[str, Any]) -> list[FieldDef]:
    """One saved form version, built the way the admin API builds it."""
    return FormIn.model_validate({"ticket_type": "refund", "fields": list(fields)}).fields


def fd(key: str, type_: str = "text", **attrs: Any) -> dict[str, Any]:
    return {"key": key, "label": f"标签 {key}", "type": type_, **attrs}


def errors_of(call: Any, *args: Any) -> list[dict[str, str]]:
    with pytest.raises(FieldErrors) as info:
        call(*args)
    return info.value.errors


REASONS = [{"value": "damaged", "label": "商品损坏"}, {"value": "late", "label": "迟到"}, {"value": "other", "label": "其他"}]
V1 = version(
    fd("order_no", required=True),
    fd("reason", "single_select", options=REASONS, default="other"),
    fd("amount", "decimal", scale=2, min="0"),
    fd("tags", "multi_select", options=REASONS),
    fd("note"),
)


# --- create ---------------------------------------------------------------------------------


def test_create_fills_defaults_and_normalises() -> None:
    assert validate_create(V1, {"order_no": " A-1001 ", "amount": 12.5}) == {
        "order_no": "A-1001", "reason": "other", "amount": "12.50",
    }


def test_a_given_value_wins_over_the_default() -> None:
    assert validate_create(V1, {"order_no": "A", "reason": "late"})["reason"] == "late"


@pytest.mark.parametrize("blank", [None, "", "   "])
def test_blank_means_no_value_so_the_default_applies(blank: Any) -> None:
    assert validate_create(V1, {"order_no": "A", "reason": blank})["reason"] == "other"


@pytest.mark.parametrize("blank", [None, "", "  ", []])
def test_required_fields_must_have_a_value(blank: Any) -> None:
    fields = version(fd("order_no", required=True), fd("tags", "multi_select", options=REASONS, required=True))
    assert errors_of(validate_create, fields, {"order_no": blank, "tags": blank}) == [
        {"field": "custom_fields.order_no", "message": "is required"},
        {"field": "custom_fields.tags", "message": "is required"},
    ]


def test_a_required_field_with_a_default_is_satisfied_by_it() -> None:
    fields = version(fd("level", "integer", required=True, default=3))
    assert validate_create(fields, {}) == {"level": 3}


def test_a_required_checkbox_accepts_false_as_a_value() -> None:
    assert validate_create(version(fd("agreed", "checkbox", required=True)), {"agreed": False}) == {"agreed": False}


def test_every_failing_field_is_reported_at_once() -> None:
    fields = version(
        fd("order_no", required=True),
        fd("quantity", "integer", min=1, max=10),
        fd("reason", "single_select", options=REASONS),
        fd("when", "datetime"),
        fd("ok"),
    )
    errors = errors_of(validate_create, fields, {
        "quantity": True, "reason": "broken", "when": "2024-05-01T09:00:00", "ok": "fine", "colour": "red",
    })
    assert errors == [
        {"field": "custom_fields.order_no", "message": "is required"},
        {"field": "custom_fields.quantity", "message": "must be an integer between 1 and 10"},
        {"field": "custom_fields.reason", "message": "must be one of: damaged, late, other"},
        {"field": "custom_fields.when",
         "message": "must be a date-time in RFC 3339 form with a UTC offset, e.g. 2024-05-01T09:30:00+08:00"},
        {"field": "custom_fields.colour", "message": "unknown field"},
    ]


def test_field_errors_has_a_readable_summary() -> None:
    with pytest.raises(FieldErrors) as info:
        validate_create(V1, {"x": 1})
    assert str(info.value) == "custom_fields.order_no: is required; custom_fields.x: unknown field"


def test_deactivated_fields_refuse_values_and_are_neither_required_nor_defaulted() -> None:
    fields = version(fd("old", required=True, default="d", active=False), fd("new"))
    assert validate_create(fields, {}) == {}
    assert validate_create(fields, {"old": None, "new": "x"}) == {"new": "x"}
    assert errors_of(validate_create, fields, {"old": "value"}) == [
        {"field": "custom_fields.old", "message": "is no longer accepted (the field is deactivated)"},
    ]


def test_a_non_object_is_refused_as_a_whole() -> None:
    assert errors_of(validate_create, V1, ["order_no"]) == [{"field": "custom_fields", "message": "must be an object"}]


def test_an_empty_form_accepts_only_nothing() -> None:
    assert validate_create([], {}) == {}
    assert errors_of(validate_create, [], {"a": 1}) == [{"field": "custom_fields.a", "message": "unknown field"}]


# --- update ---------------------------------------------------------------------------------


def test_update_validates_only_the_patched_keys_and_returns_the_whole_dict() -> None:
    current = validate_create(V1, {"order_no": "A-1", "amount": "3"})
    assert validate_update(V1, V1, current, {"amount": "4.5", "note": "备注"}) == {
        "order_no": "A-1", "reason": "other", "amount": "4.50", "note": "备注",
    }


def test_update_reports_every_failing_key() -> None:
    current = {"order_no": "A-1"}
    errors = errors_of(validate_update, V1, V1, current, {"amount": "-1", "reason": "x", "order_no": None, "bogus": 1})
    assert errors == [
        {"field": "custom_fields.amount", "message": "must be a decimal number of at least 0"},
        {"field": "custom_fields.reason", "message": "must be one of: damaged, late, other"},
        {"field": "custom_fields.order_no", "message": "is required"},
        {"field": "custom_fields.bogus", "message": "unknown field"},
    ]


@pytest.mark.parametrize("blank", [None, "", []])
def test_optional_fields_can_be_cleared(blank: Any) -> None:
    current = {"order_no": "A-1", "note": "n", "tags": ["late"]}
    assert validate_update(V1, V1, current, {"note": blank, "tags": None}) == {"order_no": "A-1"}


def test_clearing_an_unknown_key_is_still_an_unknown_field() -> None:
    assert errors_of(validate_update, V1, V1, {}, {"typo": None}) == [
        {"field": "custom_fields.typo", "message": "unknown field"},
    ]


def test_update_does_not_fill_defaults_or_check_untouched_fields() -> None:
    # the stored ticket lacks the required order_no (e.g. it predates the form); another field still updates
    assert validate_update(V1, V1, {}, {"note": "x"}) == {"note": "x"}


def test_sending_back_the_stored_values_unchanged_is_always_accepted() -> None:
    current = {"order_no": "A-1", "amount": "12.50", "legacy": {"any": ["json"]}}
    assert validate_update(V1, [], current, dict(current)) == current


def test_equal_means_same_json_type() -> None:
    fields = version(fd("n", "integer"), fd("c", "checkbox"))
    assert errors_of(validate_update, fields, fields, {"n": 1, "c": True}, {"n": True, "c": 1}) == [
        {"field": "custom_fields.n", "message": "must be an integer"},
        {"field": "custom_fields.c", "message": "must be true or false"},
    ]


# --- versioning -----------------------------------------------------------------------------


def test_a_field_made_required_in_v2_does_not_block_updates_of_old_tickets() -> None:
    ticket = validate_create(V1, {"order_no": "A-1"})  # created under v1 without a note
    v2 = version(fd("order_no", required=True), fd("reason", "single_select", options=REASONS),
                 fd("amount", "decimal", scale=2), fd("note", required=True))
    assert validate_update(v2, V1, ticket, {"amount": "9.99"}) == {**ticket, "amount": "9.99"}
    # ... but the newly required field cannot be set to nothing
    assert errors_of(validate_update, v2, V1, ticket, {"note": ""}) == [
        {"field": "custom_fields.note", "message": "is required"},
    ]


def test_a_field_removed_in_v2_keeps_its_value_and_may_be_cleared_or_rewritten_by_the_old_rules() -> None:
    ticket = validate_create(V1, {"order_no": "A-1", "amount": "5"})
    v2 = version(fd("order_no", required=True))
    assert validate_update(v2, V1, ticket, {"order_no": "A-2"})["amount"] == "5.00"
    assert "amount" not in validate_update(v2, V1, ticket, {"amount": None})
    assert validate_update(v2, V1, ticket, {"amount": 7})["amount"] == "7.00"
    assert errors_of(validate_update, v2, V1, ticket, {"amount": "-3"}) == [
        {"field": "custom_fields.amount", "message": "must be a decimal number of at least 0"},
    ]


def test_a_field_removed_before_the_ticket_existed_is_unknown() -> None:
    v2 = version(fd("order_no", required=True))
    v3 = version(fd("order_no", required=True))
    ticket = validate_create(v2, {"order_no": "A"})
    assert errors_of(validate_update, v3, v2, ticket, {"amount": "1"}) == [
        {"field": "custom_fields.amount", "message": "unknown field"},
    ]


def test_a_removed_select_option_stays_on_old_tickets_but_cannot_be_written_anew() -> None:
    old_ticket = validate_create(V1, {"order_no": "A-1", "reason": "late", "tags": ["late", "other"]})
    fewer = [r for r in REASONS if r["value"] != "late"]
    v2 = version(fd("order_no", required=True), fd("reason", "single_select", options=fewer),
                 fd("tags", "multi_select", options=fewer))
    # untouched, or sent back unchanged: kept
    assert validate_update(v2, V1, old_ticket, {"order_no": "A-2"})["reason"] == "late"
    assert validate_update(v2, V1, old_ticket, {"reason": "late"})["reason"] == "late"
    # a multi_select keeps its old element while other elements change
    assert validate_update(v2, V1, old_ticket, {"tags": ["late"]})["tags"] == ["late"]
    assert validate_update(v2, V1, old_ticket, {"tags": ["late", "damaged"]})["tags"] == ["late", "damaged"]
    # a new write of the removed option is refused
    other_ticket = validate_create(V1, {"order_no": "B-1", "reason": "damaged"})
    assert errors_of(validate_update, v2, V1, other_ticket, {"reason": "late", "tags": ["late"]}) == [
        {"field": "custom_fields.reason", "message": "must be one of: damaged, other"},
        {"field": "custom_fields.tags", "message": "must only contain: damaged, other"},
    ]
    assert errors_of(validate_create, v2, {"order_no": "C", "reason": "late"}) == [
        {"field": "custom_fields.reason", "message": "must be one of: damaged, other"},
    ]


def test_a_field_deactivated_in_v2_is_kept_and_clearable_but_refuses_new_values() -> None:
    ticket = validate_create(V1, {"order_no": "A-1", "note": "old note"})
    v2 = version(fd("order_no", required=True), fd("note", required=True, active=False))
    assert validate_update(v2, V1, ticket, {"order_no": "A-2"})["note"] == "old note"
    assert validate_update(v2, V1, ticket, {"note": "old note"})["note"] == "old note"
    assert "note" not in validate_update(v2, V1, ticket, {"note": None})
    assert errors_of(validate_update, v2, V1, ticket, {"note": "new note"}) == [
        {"field": "custom_fields.note", "message": "is no longer accepted (the field is deactivated)"},
    ]


def test_a_field_whose_type_changed_validates_new_values_against_the_latest_type() -> None:
    ticket = validate_create(V1, {"order_no": "A-1", "note": "three"})
    v2 = version(fd("order_no", required=True), fd("note", "integer"))
    assert validate_update(v2, V1, ticket, {"order_no": "A-2"})["note"] == "three"  # kept as stored
    assert validate_update(v2, V1, ticket, {"note": 3})["note"] == 3
    assert errors_of(validate_update, v2, V1, ticket, {"note": "four"})[0]["message"] == "must be an integer"


def test_a_field_added_in_v2_is_writable_on_old_tickets_without_back_filling_its_default() -> None:
    ticket = validate_create(V1, {"order_no": "A-1"})
    v2 = version(fd("order_no", required=True), fd("priority_level", "integer", default=2))
    assert "priority_level" not in validate_update(v2, V1, ticket, {"order_no": "A-2"})
    assert validate_update(v2, V1, ticket, {"priority_level": 5})["priority_level"] == 5


def test_tickets_from_before_any_form_keep_their_free_form_keys() -> None:
    ticket = {"floor": 3, "order_no": "A-1"}
    updated = validate_update(V1, [], ticket, {"note": "n"})
    assert updated == {"floor": 3, "order_no": "A-1", "note": "n"}
    assert validate_update(V1, [], ticket, {"floor": None}) == {"order_no": "A-1"}
    assert errors_of(validate_update, V1, [], ticket, {"floor": 4}) == [
        {"field": "custom_fields.floor", "message": "unknown field"},
    ]


def test_update_does_not_mutate_its_inputs() -> None:
    current = {"order_no": "A-1", "tags": ["late"]}
    patch = {"tags": ["damaged"], "note": None}
    validate_update(V1, V1, current, patch)
    assert current == {"order_no": "A-1", "tags": ["late"]} and patch == {"tags": ["damaged"], "note": None}
