"""Attribute values of a customer or an organisation checked against the admins' definitions
(pure; the definitions come in as a mapping by key).

Create (``values_for_create``): every key must be defined ("unknown attribute"); blank values
(``null``, ``""``, ``[]``) are dropped; a required attribute left blank is refused (``REQUIRED``).

Update (``values_for_update``), only the keys the request sends are looked at:
- a value equal to the stored one is accepted unchecked (a client may send back what it read);
- a blank value clears the key, except a required one;
- any other value must be valid for the definition's type; a multiselect may keep the elements it
  already holds even when their option was removed since.
Required attributes the request does not touch are not enforced: customers created from tickets
have none of them, and an edit of their name must still work.

Errors name every failing key as ``body.attributes.<key>`` for one 422 answer. The stored object
is bounded (``MAX_BYTES``) because ``customer.updated`` carries it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from .types import Invalid, is_blank, validate_value

UNKNOWN = "unknown attribute"
#: worded without "is required": API test generators read "<field> is required" as "add this
#: property" and took ``body.`` (the location) for a property of the body
REQUIRED = "needs a value (a mandatory attribute)"
MAX_BYTES = 16_384
FIELD = "body.attributes"


class AttributeErrors(Exception):
    def __init__(self, errors: list[dict[str, str]]) -> None:
        super().__init__("; ".join(f"{e['field']}: {e['message']}" for e in errors))
        self.errors = errors


def _error(key: str, message: str, code: str = "invalid") -> dict[str, str]:
    return {"field": f"{FIELD}.{key}", "message": message, "code": code}


def _bounded(values: dict[str, Any]) -> dict[str, Any]:
    size = len(orjson.dumps(values))
    if size > MAX_BYTES:
        raise AttributeErrors([{"field": FIELD, "message": f"must be at most {MAX_BYTES} bytes as JSON (is {size})",
                                "code": "too_long"}])
    return values


def values_for_create(definitions: Mapping[str, Any], given: Mapping[str, Any]) -> dict[str, Any]:
    errors: list[dict[str, str]] = []
    result: dict[str, Any] = {}
    for key, value in given.items():
        definition = definitions.get(key)
        if definition is None:
            errors.append(_error(key, UNKNOWN, "unknown"))
        elif not is_blank(value):
            try:
                result[key] = validate_value(definition, value)
            except Invalid as exc:
                errors.append(_error(key, exc.message))
    for key, definition in definitions.items():
        if definition.required and key not in result and not any(e["field"] == f"{FIELD}.{key}" for e in errors):
            errors.append(_error(key, REQUIRED, "required"))
    if errors:
        raise AttributeErrors(errors)
    return _bounded(result)


def same_value(stored: Any, given: Any) -> bool:
    """JSON equality that tells types apart (``true`` is not ``1``)."""
    if type(stored) is not type(given):
        return False
    if isinstance(stored, list):
        return len(stored) == len(given) and all(same_value(a, b) for a, b in zip(stored, given))
    return bool(stored == given)


def values_for_update(definitions: Mapping[str, Any], current: Mapping[str, Any],
                      patch: Mapping[str, Any]) -> dict[str, Any]:
    """The whole attribute object after ``patch``, or AttributeErrors."""
    errors: list[dict[str, str]] = []
    result = dict(current)
    for key, value in patch.items():
        if key in current and same_value(current[key], value):
            continue
        definition = definitions.get(key)
        if definition is None:
            if is_blank(value) and key in current:  # a value no definition knows any more may go
                result.pop(key, None)
            else:
                errors.append(_error(key, UNKNOWN, "unknown"))
        elif is_blank(value):
            if definition.required:
                errors.append(_error(key, REQUIRED, "required"))
            else:
                result.pop(key, None)
        else:
            try:
                result[key] = validate_value(definition, value, held=current.get(key))
            except Invalid as exc:
                errors.append(_error(key, exc.message))
    if errors:
        raise AttributeErrors(errors)
    return _bounded(result)


def changed(before: Mapping[str, Any], after: Mapping[str, Any]) -> bool:
    return before.keys() != after.keys() or any(not same_value(before[k], after[k]) for k in before)
