"""Value rules of custom attributes, one function per type (pure; no database).

A validator takes a definition and a raw JSON value and returns the value as stored, or raises
``Invalid`` with an English message naming the rule. Stored values stay plain JSON so that one
jsonb containment (``attributes @> {"key": value}``) filters by them: integers as JSON numbers,
decimals as strings (no float ever rounds an amount; ``"12.50"`` with a scale of 2, else the
shortest form ``"12.5"``), dates as ``YYYY-MM-DD``, a multiselect as a list of option values.

``parse_filter`` turns a query-string value (always text) into the stored form of the same type,
so ``?attr.employees=12`` and ``?attr.renewal=2026-01-31`` compare with what was stored.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date
from decimal import Context, Decimal, InvalidOperation
from typing import Any, Protocol

TYPES = ("text", "number", "decimal", "boolean", "date", "select", "multiselect")
CHOICE_TYPES = frozenset({"select", "multiselect"})
#: types whose values can be declared unique (one scalar each)
UNIQUE_TYPES = frozenset({"text", "number", "decimal", "date", "select"})
TEXT_MAX = 1000
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
DECIMAL_MAX_SCALE = 18
DECIMAL_MAX_INT_DIGITS = 20
_WIDE = Context(prec=DECIMAL_MAX_INT_DIGITS + DECIMAL_MAX_SCALE + 4)
_DECIMAL_TEXT = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")
_DATE_TEXT = re.compile(r"\d{4}-\d{2}-\d{2}")
_INT_TEXT = re.compile(r"[+-]?\d{1,19}")
CHOICES_SHOWN = 20


class Invalid(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class DefinitionLike(Protocol):
    type: str
    scale: int | None
    options: Sequence[Any] | None


def option_values(definition: DefinitionLike) -> list[str]:
    return [o["value"] if isinstance(o, dict) else o.value for o in definition.options or ()]


def _choices(definition: DefinitionLike) -> str:
    values = option_values(definition)
    return ", ".join(values[:CHOICES_SHOWN]) + (", …" if len(values) > CHOICES_SHOWN else "")


def is_blank(value: Any) -> bool:
    """``null``, a whitespace-only string or ``[]``: "no value"."""
    return value is None or (isinstance(value, str) and not value.strip()) or (isinstance(value, list) and not value)


def validate_text(definition: DefinitionLike, value: Any) -> str:
    if not isinstance(value, str):
        raise Invalid("must be a string")
    value = value.strip()
    if len(value) > TEXT_MAX:
        raise Invalid(f"must be at most {TEXT_MAX} characters")
    return value


def validate_number(definition: DefinitionLike, value: Any) -> int:
    """JSON integers only (``true`` is not 1, ``3.5`` is a decimal's), within 64 bits."""
    if isinstance(value, bool) or not isinstance(value, int) or not INT64_MIN <= value <= INT64_MAX:
        raise Invalid(f"must be an integer between {INT64_MIN} and {INT64_MAX}")
    return value


def parse_decimal(value: Any, max_scale: int) -> Decimal:
    message = 'must be a decimal number, e.g. "12.50"'
    if isinstance(value, bool):
        raise Invalid(message)
    if isinstance(value, int):
        number = Decimal(value)
    elif isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise Invalid(message)
        number = Decimal(repr(value))
    elif isinstance(value, str) and len(value.strip()) <= 64 and _DECIMAL_TEXT.fullmatch(value.strip()):
        number = Decimal(value.strip())
    else:
        raise Invalid(message)
    if number == 0:
        return Decimal(0)
    if number.adjusted() >= DECIMAL_MAX_INT_DIGITS:
        raise Invalid(f"must have at most {DECIMAL_MAX_INT_DIGITS} digits before the decimal point")
    exponent = number.normalize(_WIDE).as_tuple().exponent
    places = -exponent if isinstance(exponent, int) and exponent < 0 else 0
    if places > max_scale:
        raise Invalid(f"must have at most {max_scale} decimal places")
    return number


def validate_decimal(definition: DefinitionLike, value: Any) -> str:
    scale = definition.scale
    number = parse_decimal(value, DECIMAL_MAX_SCALE if scale is None else scale)
    if scale is not None:
        number = number.quantize(Decimal(1).scaleb(-scale), context=_WIDE)
    else:
        number = number.normalize(_WIDE)
    return format(number, "f")


def validate_boolean(definition: DefinitionLike, value: Any) -> bool:
    if not isinstance(value, bool):
        raise Invalid("must be true or false")
    return value


def validate_date(definition: DefinitionLike, value: Any) -> str:
    message = "must be a date in YYYY-MM-DD form"
    if not isinstance(value, str) or not _DATE_TEXT.fullmatch(value.strip()):
        raise Invalid(message)
    try:
        return date.fromisoformat(value.strip()).isoformat()
    except ValueError:
        raise Invalid(message) from None


def validate_select(definition: DefinitionLike, value: Any) -> str:
    if not isinstance(value, str) or value.strip() not in option_values(definition):
        raise Invalid(f"must be one of: {_choices(definition)}")
    return value.strip()


def validate_multiselect(definition: DefinitionLike, value: Any, held: Sequence[Any] = ()) -> list[str]:
    """Distinct option values in the order given; values the owner already holds stay
    acceptable after their option was removed (dropping one element must not force dropping all)."""
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise Invalid(f"must be a list of option values: {_choices(definition)}")
    picked = [v.strip() for v in value]
    allowed = set(option_values(definition)) | {v for v in held if isinstance(v, str)}
    if any(v not in allowed for v in picked):
        raise Invalid(f"must only contain: {_choices(definition)}")
    if len(set(picked)) != len(picked):
        raise Invalid("must not contain the same value twice")
    return picked


VALIDATORS = {
    "text": validate_text,
    "number": validate_number,
    "decimal": validate_decimal,
    "boolean": validate_boolean,
    "date": validate_date,
    "select": validate_select,
}


def validate_value(definition: DefinitionLike, value: Any, *, held: Any = None) -> Any:
    """The stored form of a non-blank ``value`` of ``definition``'s type, or Invalid."""
    if definition.type == "multiselect":
        return validate_multiselect(definition, value, held if isinstance(held, list) else ())
    return VALIDATORS[definition.type](definition, value)


def parse_filter(definition: DefinitionLike, text: str) -> Any:
    """A query-string value as the stored value it must equal (a multiselect: one element it
    must contain); Invalid when the text cannot be a value of the type."""
    kind = definition.type
    if kind == "number":
        if not _INT_TEXT.fullmatch(text.strip()):
            raise Invalid("must be an integer")
        return validate_number(definition, int(text.strip()))
    if kind == "boolean":
        if text.strip() not in ("true", "false"):
            raise Invalid("must be true or false")
        return text.strip() == "true"
    if kind == "decimal":
        try:
            return validate_decimal(definition, text)
        except InvalidOperation:  # pragma: no cover - the pattern rules it out
            raise Invalid('must be a decimal number, e.g. "12.50"') from None
    if kind == "multiselect":
        return [text.strip()]
    if kind == "date":
        return validate_date(definition, text)
    return text.strip()


def unique_key(value: Any) -> str:
    """The text a unique value is claimed under (``attribute_unique_values.value``)."""
    return value if isinstance(value, str) else str(value)
