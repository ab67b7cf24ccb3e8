"""Bounds on a ticket's custom fields, whatever a form allows (docs/security.md, "Event size").

Custom fields travel in events: ``ticket.created`` carries them and ``ticket.updated`` carries
them before and after. Issue 9 had a free-form value of 1,048,400 characters make a
1,049,358-byte ``ticket.created`` that the producer refused, which stopped every later ticket
event. So the values are bounded where they enter, for every path (API create and PATCH,
web forms and other channel intake all go through ``forms.service``):

* the whole object, encoded as JSON (UTF-8), is at most ``CUSTOM_FIELDS_MAX_BYTES``; with
  before and after, a ``ticket.updated`` stays well inside the 256 KiB event cap;
* every value is at most ``FREE_FORM_DEPTH_MAX`` lists/objects deep with integers within
  64 bits (the event encoder and the jsonb codec refuse larger ones; that used to be a 500):
  checked by the request schemas (``tickets.schemas.CustomFields``) before anything else;
* free-form values (types without a form) also have strings of at most
  ``FREE_FORM_STRING_MAX`` characters. Form-defined values have per-type limits (``fieldtypes``).

Pure functions over plain data, returning the form engine's per-field error dicts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import orjson

CUSTOM_FIELDS_MAX_BYTES = 65_536
FREE_FORM_STRING_MAX = 4_096
FREE_FORM_DEPTH_MAX = 8


def _error(key: str, message: str) -> dict[str, str]:
    return {"field": f"custom_fields.{key}", "message": message}


INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def value_problem(value: Any, *, max_string: int | None = None, depth: int = 0) -> str | None:
    """Why a custom-field value is refused, or None: nested at most FREE_FORM_DEPTH_MAX
    lists/objects deep, integers within 64 bits, strings of at most ``max_string`` characters
    when given. Cheap (stops at the first problem, never deeper than the limit), so the request
    schema runs it on every value before anything else touches them."""
    if isinstance(value, str):
        if max_string is not None and len(value) > max_string:
            return f"a text value must be at most {max_string} characters"
        return None
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        # floats too: JSON does not tell 1e30 from the integer it equals (the document says so)
        return None if INT64_MIN <= value <= INT64_MAX else "numbers must be within 64 bits"
    if isinstance(value, (list, dict)):
        if depth >= FREE_FORM_DEPTH_MAX:
            return f"must not nest lists or objects more than {FREE_FORM_DEPTH_MAX} deep"
        for item in value.values() if isinstance(value, dict) else value:
            found = value_problem(item, max_string=max_string, depth=depth + 1)
            if found is not None:
                return found
        return None
    return "must be a JSON value"


def member_bytes(key: str, value: Any) -> int:
    """Bytes ``"key":value`` plus one separator adds to the encoded object, so that
    ``1 + sum(member_bytes(k, v))`` is exactly ``len(orjson.dumps(values))`` (tests hold it)."""
    return len(orjson.dumps({key: value})) - 1


def check(values: Mapping[str, Any], *, written: Iterable[str], free_form: bool) -> list[dict[str, str]]:
    """Errors for ``values`` (the ticket's full custom fields after the write), else [].

    ``written``: the keys this request sets (all of them on create, the patch's keys on a
    PATCH): stored values stay as they are, and an error names a field the caller sent.
    ``free_form``: no form validated the written values, so they get the string limit too.
    The total is checked on the whole object: the events carry all of it.
    """
    written = [key for key in written if key in values]
    errors: list[dict[str, str]] = []
    if free_form:
        for key in written:
            found = value_problem(values[key], max_string=FREE_FORM_STRING_MAX)
            if found is not None:
                errors.append(_error(key, found))
    sizes: dict[str, int] = {}
    for key, value in values.items():
        try:
            sizes[key] = member_bytes(key, value)
        except (orjson.JSONEncodeError, TypeError):
            errors.append(_error(key, "must be JSON with integers within 64 bits"))
    if errors:
        return errors
    total = sum(sizes.values()) + 1
    if total > CUSTOM_FIELDS_MAX_BYTES:
        largest = max(written or sizes, key=sizes.__getitem__)
        errors.append(_error(largest, (
            f"is {sizes[largest]} bytes as JSON, making custom_fields {total} bytes; custom_fields may hold "
            f"at most {CUSTOM_FIELDS_MAX_BYTES} bytes in total"
        )))
    return errors
