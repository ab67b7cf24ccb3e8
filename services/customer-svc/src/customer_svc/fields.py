"""Field types shared by the customer and organisation schemas."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, Field, StringConstraints, WithJsonSchema

from helpdesk_common.openapi import NO_NUL_PATTERN
from helpdesk_common.validation import fold_key

from .attributes.schemas import KEY_PATTERN, MAX_DEFINITIONS, MAX_OPTIONS
from .attributes.types import INT64_MAX, INT64_MIN, TEXT_MAX

NO_NUL = r"^[^\x00]*$"
#: commercial level (vip, gold, 金牌): stored NFKC-normalised and case-folded, as routing compares it
Tier = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50, pattern=r"^[^\x00-\x1f]*$"),
                 AfterValidator(fold_key)]
NOTES_MAX = 10_000
Notes = Annotated[str, StringConstraints(max_length=NOTES_MAX)]
_VALUE_TEXT_MAX = 2 * TEXT_MAX  # before trimming; the type's own rule is checked against the definition


def _attribute_value(value: Any) -> Any:
    """Shape only (the definition decides the rest): text, a number within 64 bits, a boolean,
    null, or a list of texts (a multiselect)."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            raise ValueError("numbers must be within 64 bits")
        return value
    if isinstance(value, float):
        if not INT64_MIN <= value <= INT64_MAX:
            raise ValueError("numbers must be within 64 bits")
        return value
    if isinstance(value, str):
        if len(value) > _VALUE_TEXT_MAX:
            raise ValueError(f"text must be at most {_VALUE_TEXT_MAX} characters")
        return value
    if isinstance(value, list):
        if len(value) > MAX_OPTIONS or not all(isinstance(v, str) and len(v) <= 200 for v in value):
            raise ValueError(f"a list must hold at most {MAX_OPTIONS} texts of at most 200 characters")
        return value
    raise ValueError("must be text, a number, true or false, null, or a list of texts")


ATTRIBUTE_VALUE_SCHEMA = {
    "description": "A value of the attribute's type (GET /v1/customer-attributes): text, an integer, a decimal "
                   "as text or number, true or false, a date YYYY-MM-DD, an option value, a list of option values "
                   "(multiselect); null clears.",
    "type": ["string", "number", "boolean", "null", "array"], "pattern": NO_NUL_PATTERN,
    "maxLength": _VALUE_TEXT_MAX, "minimum": INT64_MIN, "maximum": INT64_MAX,
    "items": {"type": "string", "maxLength": 200, "pattern": NO_NUL_PATTERN}, "maxItems": MAX_OPTIONS,
}
AttributeValue = Annotated[Any, AfterValidator(_attribute_value), WithJsonSchema(ATTRIBUTE_VALUE_SCHEMA)]
Attributes = Annotated[
    dict[Annotated[str, StringConstraints(pattern=KEY_PATTERN)], AttributeValue],
    Field(max_length=MAX_DEFINITIONS, json_schema_extra={"additionalProperties": False},
          description="Custom attribute values by key (admins define them); in a PATCH only the keys sent change, "
                      "null clears one."),
]
