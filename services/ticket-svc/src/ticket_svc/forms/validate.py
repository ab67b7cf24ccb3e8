"""Custom-field values of a ticket checked against versioned form definitions.

A form is saved as immutable numbered versions; a ticket records the version it was created
with. The rules below keep every existing ticket readable and updatable whatever admins do
to the form later, while new values always meet the latest definition.

Reading never re-validates: stored values were valid when written and are returned as stored.

Blank values: ``null``, a whitespace-only string and ``[]`` all mean "no value" (web forms send
"" for an empty input). Stored dicts never contain blank values.

Create (``validate_create``), against the latest version:
* every given key must be a field of the version, else "unknown field";
* a non-blank value for a deactivated field is refused; a blank one is ignored;
* non-blank values are validated and normalised by their type (``fieldtypes``);
* an active field left blank gets its ``default``; if it has none and is ``required``,
  "is required". Deactivated fields are never required and never defaulted.

Update (``validate_update``), only the keys present in the patch are looked at:
1. A value equal to the ticket's current value is a no-op and is accepted unchecked, so a
   client may send back the whole custom_fields object it read, including values that a
   newer version would no longer accept (a removed option, a deactivated field).
2. A blank value clears the key, except that a field that is active and required in the
   latest version cannot be cleared ("is required"). A key that is in neither version nor on
   the ticket is "unknown field" even when blank, so typos surface.
3. A new non-blank value must satisfy the latest version's definition when the key is there
   (and the field must be active there); otherwise, when the key exists only in the ticket's
   own (older) version, that older active definition; otherwise "unknown field". A
   multi_select may keep the elements the ticket already has even if their option was
   removed since; newly added elements must be current options.
4. ``required`` is not enforced for keys the patch does not touch, and defaults are not
   back-filled: a field made required (or added) in v2 does not block an update of another
   field of a ticket created under v1. Keys on the ticket that no version knows (tickets
   created before any form existed) are kept unless the patch clears them.

Errors list every failing field, each as ``{"field": "custom_fields.<key>", "message": ...}``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .fieldtypes import Invalid, is_blank, validate_value
from .schemas import FieldDef, OptionDef

UNKNOWN = "unknown field"
REQUIRED = "is required"
DEACTIVATED = "is no longer accepted (the field is deactivated)"


class FieldErrors(Exception):
    """Every failing custom field of one request, for a single 422 answer."""

    def __init__(self, errors: list[dict[str, str]]) -> None:
        super().__init__("; ".join(f"{e['field']}: {e['message']}" for e in errors))
        self.errors = errors


def _error(key: Any, message: str) -> dict[str, str]:
    return {"field": f"custom_fields.{key}", "message": message}


def _by_key(fields: Sequence[FieldDef]) -> dict[str, FieldDef]:
    """Definitions by key; the first wins should a sequence ever repeat a key."""
    table: dict[str, FieldDef] = {}
    for field in fields:
        table.setdefault(field.key, field)
    return table


def _as_mapping(values: Any) -> Mapping[str, Any]:
    if not isinstance(values, Mapping):
        raise FieldErrors([{"field": "custom_fields", "message": "must be an object"}])
    return values


def validate_create(fields: Sequence[FieldDef], values: Mapping[str, Any]) -> dict[str, Any]:
    """The normalised custom fields of a new ticket (defaults filled), or FieldErrors."""
    values = _as_mapping(values)
    definitions = _by_key(fields)
    errors: list[dict[str, str]] = []
    result: dict[str, Any] = {}
    for key, field in definitions.items():
        value = values.get(key)
        if not field.active:
            if not is_blank(value):
                errors.append(_error(key, DEACTIVATED))
        elif not is_blank(value):
            try:
                result[key] = validate_value(field, value)
            except Invalid as exc:
                errors.append(_error(key, exc.message))
        elif field.default is not None:
            result[key] = field.default
        elif field.required:
            errors.append(_error(key, REQUIRED))
    errors.extend(_error(key, UNKNOWN) for key in values if key not in definitions)
    if errors:
        raise FieldErrors(errors)
    return result


def validate_update(
    latest: Sequence[FieldDef],
    ticket_version_fields: Sequence[FieldDef],
    current: Mapping[str, Any],
    patch: Mapping[str, Any],
) -> dict[str, Any]:
    """The ticket's full custom fields after applying ``patch``, or FieldErrors (rules above)."""
    patch = _as_mapping(patch)
    newest, own = _by_key(latest), _by_key(ticket_version_fields)
    errors: list[dict[str, str]] = []
    result = dict(current)
    for key, value in patch.items():
        if key in current and same_value(current[key], value):
            continue
        try:
            if is_blank(value):
                _check_clear(key, newest, own, current)
                result.pop(key, None)
            else:
                result[key] = _new_value(key, value, newest, own, current)
        except Invalid as exc:
            errors.append(_error(key, exc.message))
    if errors:
        raise FieldErrors(errors)
    return result


def _check_clear(key: str, newest: Mapping[str, FieldDef], own: Mapping[str, FieldDef],
                 current: Mapping[str, Any]) -> None:
    field = newest.get(key)
    if field is not None and field.active and field.required:
        raise Invalid(REQUIRED)
    if field is None and key not in own and key not in current:
        raise Invalid(UNKNOWN)


def _new_value(key: str, value: Any, newest: Mapping[str, FieldDef], own: Mapping[str, FieldDef],
               current: Mapping[str, Any]) -> Any:
    field = newest[key] if key in newest else own.get(key)
    if field is None:
        raise Invalid(UNKNOWN)
    if not field.active:
        raise Invalid(DEACTIVATED)
    return validate_value(_keeping_current_choices(field, current.get(key)), value)


def _keeping_current_choices(field: FieldDef, current: Any) -> FieldDef:
    """A multi_select that also accepts the elements the ticket already holds.

    Dropping one element of ["a", "retired"] must not force the user to drop "retired" too;
    only newly added elements have to be options of the definition.
    """
    if field.type != "multi_select" or not isinstance(current, list):
        return field
    known = {o.value for o in field.options or ()}
    held = dict.fromkeys(v for v in current if isinstance(v, str))
    kept = [OptionDef.model_construct(value=v, label=v) for v in held if v not in known]
    if not kept:
        return field
    return field.model_copy(update={"options": [*(field.options or ()), *kept]})


def same_value(stored: Any, given: Any) -> bool:
    """JSON equality that tells types apart (``true`` is not ``1``, ``1.0`` is not ``1``)."""
    if type(stored) is not type(given):
        return False
    if isinstance(stored, list):
        return len(stored) == len(given) and all(same_value(a, b) for a, b in zip(stored, given))
    if isinstance(stored, dict):
        return stored.keys() == given.keys() and all(same_value(stored[k], given[k]) for k in stored)
    return bool(stored == given)
