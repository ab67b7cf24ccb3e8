"""Admin API models of the form engine: one ``FieldDef`` per custom field, ``FormIn`` per save.

``FieldDef`` is one model for every type rather than a discriminated union: callers build and
copy it the same way whatever the type, and the per-type rules live in the
``fieldtypes.FIELD_TYPES`` table, so a new type needs no new model. The model validator
refuses attributes that do not apply to the type (``options`` on an integer) so a typo in an
admin's JSON is an error, not a silently ignored setting.

Definitions round-trip: ``model_dump(mode="json")`` is what gets stored, and it validates
again to an equal ``FieldDef`` when a stored version is read. That is why unset attributes
are ``None`` (not absent) and why ``default``, ``min`` and ``max`` are stored normalised
(decimal bounds and defaults as strings).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import (BaseModel, ConfigDict, Field, StringConstraints, ValidationInfo, WithJsonSchema, field_validator,
                      model_validator)
from pydantic_core import PydanticCustomError

from helpdesk_common.openapi import NO_NUL_PATTERN
from helpdesk_common.validation import NOT_BLANK, StrictModel

from .fieldtypes import (
    DECIMAL_MAX_INT_DIGITS,
    DECIMAL_MAX_SCALE,
    FIELD_TYPES,
    INT64_MAX,
    INT64_MIN,
    TYPE_SPECIFIC_ATTRIBUTES,
    Invalid,
    check_pattern,
    format_decimal,
    is_blank,
    parse_decimal,
    validate_value,
)

MAX_FIELDS = 200
MAX_ACTIVE_FIELDS = 100  # a ticket's custom_fields object holds at most 100 keys
MAX_OPTIONS = 500

FieldKey = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
Label = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200, pattern=NOT_BLANK)]
OptionValue = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=r"^\S(?:.*\S)?$")]


class OptionDef(StrictModel):
    """One choice of a select: ``value`` is stored on tickets, ``label`` is shown (any language)."""

    value: OptionValue
    label: Label


_SCALAR: dict[str, Any] = {"type": ["string", "number", "boolean", "null"], "pattern": NO_NUL_PATTERN,
                           "minimum": INT64_MIN, "maximum": INT64_MAX}
DEFAULT_SCHEMA: dict[str, Any] = {**_SCALAR, "type": [*_SCALAR["type"], "array"], "items": _SCALAR}


def _attribute_schema(name: str, type_name: str) -> dict[str, Any]:
    """What the document states of a type-specific attribute of a field of ``type_name``."""
    if name == "max_length":
        return {"type": ["integer", "null"], "minimum": 1, "maximum": FIELD_TYPES[type_name].max_length_cap}
    if name == "scale":
        return {"type": ["integer", "null"], "minimum": 0, "maximum": DECIMAL_MAX_SCALE}
    if name in ("min", "max") and type_name == "integer":
        return {"type": ["integer", "null"], "minimum": INT64_MIN, "maximum": INT64_MAX}
    if name in ("min", "max"):  # decimal: a decimal string (lossless), or a number
        bound = 10**DECIMAL_MAX_INT_DIGITS  # at most that many digits before the point (exact as a float)
        return {"anyOf": [{"type": "string", "maxLength": 64, "pattern": r"^\s*[+-]?0*(?:\d{1,20}(?:\.\d{0,18}0*)?|\.\d{1,18}0*)\s*$"},
                          {"type": "number", "exclusiveMinimum": -bound, "exclusiveMaximum": bound}, {"type": "null"}]}
    if name == "options":
        return {"type": "array", "minItems": 1, "maxItems": MAX_OPTIONS, "items": {"$ref": "#/components/schemas/OptionDef"}}
    if name == "max_selected":
        return {"type": ["integer", "null"], "minimum": 1, "maximum": MAX_OPTIONS}
    return {"type": "string", "minLength": 1}  # pattern


def _field_def_schema(schema: dict[str, Any]) -> None:
    """``FieldDef``'s document: the type is one of ``FIELD_TYPES``, and per type which attributes
    apply (the others are null or left out) within which ranges. What depends on several
    attributes at once (min <= max, unique option values, max_selected <= the options, a default
    valid for the field, a pattern that compiles) is checked by the server: 422 ``cross_field``."""
    schema["properties"]["type"] = {"type": "string", "enum": list(FIELD_TYPES), "title": "Type"}
    variants = []
    for type_name, kind in FIELD_TYPES.items():
        properties: dict[str, Any] = {"type": {"const": type_name}}
        for name in sorted(TYPE_SPECIFIC_ATTRIBUTES):
            properties[name] = _attribute_schema(name, type_name) if name in kind.attributes else {"type": "null"}
        required = [name for name in ("options", "pattern") if name in kind.attributes]
        variants.append({"properties": properties, "required": ["type", *required]})
    schema["anyOf"] = variants


class FieldDef(StrictModel):
    """One custom field of a form version.

    ``active: false`` keeps the definition (old tickets still have values and readers still
    need its label) while refusing new values. ``default`` fills the field on ticket creation
    when no value is given.
    """

    model_config = ConfigDict(json_schema_extra=_field_def_schema)

    key: FieldKey
    label: Label
    type: str
    required: bool = False
    #: a value of the field's type (a list of option values for multi_select): checked against the
    #: field (422 cross_field), so the document says only its shape
    default: Annotated[Any, WithJsonSchema(DEFAULT_SCHEMA)] = None
    help_text: Annotated[str, StringConstraints(max_length=2000)] | None = None
    active: bool = True
    #: text, long_text, pattern: longest value in characters
    max_length: int | None = None
    #: integer (int) and decimal (decimal string) bounds, inclusive
    min: Any = None
    max: Any = None
    #: decimal: most digits after the point; values are stored with exactly this many
    scale: int | None = None
    #: single_select, multi_select
    options: Annotated[list[OptionDef], Field(max_length=MAX_OPTIONS)] | None = None
    #: multi_select: most values one ticket may pick
    max_selected: int | None = None
    #: pattern: a Python regular expression the whole value must match
    pattern: str | None = None

    @field_validator("type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        if value not in FIELD_TYPES:
            raise ValueError(f"must be one of: {', '.join(FIELD_TYPES)}")
        return value

    @model_validator(mode="after")
    def _consistent(self, info: ValidationInfo) -> FieldDef:
        """Check every type-specific rule and report all problems of the field at once.

        Not for a definition read back from the database (``context={"stored": True}``): it
        passed the rules of the day it was saved, and a rule tightened since (e.g. the pattern
        check) must not turn every ticket of its type into a 500; its values are still checked
        field by field, and its pattern runs under the match time limit."""
        if info.context and info.context.get("stored"):
            return self
        problems: list[str] = []
        stated = False  # a problem with a rule the API document states (see _field_def_schema)
        kind = FIELD_TYPES[self.type]
        for name in sorted(TYPE_SPECIFIC_ATTRIBUTES - kind.attributes):
            if getattr(self, name) is not None:
                problems.append(f"{name} does not apply to fields of type {self.type}")
                stated = True
        for name in sorted(kind.attributes):
            try:
                _ATTRIBUTE_CHECKS[name](self)
            except Invalid as exc:
                problems.append(exc.message)
                stated = stated or name in ("max_length", "scale")
        if not problems and not is_blank(self.default):
            try:
                self.default = validate_value(self, self.default)
            except Invalid as exc:
                problems.append(f"default {exc.message}")
        elif is_blank(self.default):
            self.default = None
        if problems:
            message = f"field {self.key!r}: " + "; ".join(problems)
            if stated:
                raise ValueError(message)
            raise PydanticCustomError("cross_field", message.replace("{", "{{").replace("}", "}}"))
        return self


# --- per-attribute checks (run only for types that take the attribute) ----------------------


def _check_max_length(field: FieldDef) -> None:
    cap = FIELD_TYPES[field.type].max_length_cap or 0
    value = field.max_length
    if value is not None and (isinstance(value, bool) or not 1 <= value <= cap):
        raise Invalid(f"max_length must be between 1 and {cap}")


def _integer_bound(name: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not INT64_MIN <= value <= INT64_MAX:
        raise Invalid(f"{name} must be an integer between {INT64_MIN} and {INT64_MAX}")
    return value


def _decimal_bound(name: str, value: Any) -> str | None:
    if value is None:
        return None
    try:
        return format_decimal(parse_decimal(value), None)
    except Invalid as exc:
        raise Invalid(f"{name} {exc.message}") from None


def _check_bounds(field: FieldDef) -> None:
    """Normalise min/max for the type (ints, or decimal strings) and require min <= max."""
    convert = _integer_bound if field.type == "integer" else _decimal_bound
    low, high = convert("min", field.min), convert("max", field.max)
    field.min, field.max = low, high
    if low is not None and high is not None:
        in_order = low <= high if field.type == "integer" else parse_decimal(low) <= parse_decimal(high)
        if not in_order:
            raise Invalid("min must not be greater than max")
    scale = field.scale
    if field.type == "decimal" and isinstance(scale, int) and 0 <= scale <= DECIMAL_MAX_SCALE:
        for name, bound in (("min", low), ("max", high)):
            if bound is not None:
                try:
                    parse_decimal(bound, scale)
                except Invalid:
                    raise Invalid(f"{name} must have at most {scale} decimal places") from None


def _check_scale(field: FieldDef) -> None:
    if field.scale is not None and (isinstance(field.scale, bool) or not 0 <= field.scale <= DECIMAL_MAX_SCALE):
        raise Invalid(f"scale must be between 0 and {DECIMAL_MAX_SCALE}")


def _check_options(field: FieldDef) -> None:
    if not field.options:
        raise Invalid("options must list at least one option")
    values = [o.value for o in field.options]
    duplicates = sorted({v for v in values if values.count(v) > 1})
    if duplicates:
        raise Invalid(f"options must have unique values (repeated: {', '.join(duplicates)})")


def _check_max_selected(field: FieldDef) -> None:
    if field.max_selected is None:
        return
    count = len(field.options or ())
    if isinstance(field.max_selected, bool) or not 1 <= field.max_selected <= max(count, 1):
        raise Invalid(f"max_selected must be between 1 and the number of options ({count})")


def _check_pattern(field: FieldDef) -> None:
    if not field.pattern:
        raise Invalid("pattern is required for fields of type pattern")
    check_pattern(field.pattern)


_ATTRIBUTE_CHECKS = {
    "max_length": _check_max_length,
    "min": _check_bounds,
    "max": lambda field: None,  # checked together with min
    "scale": _check_scale,
    "options": _check_options,
    "max_selected": _check_max_selected,
    "pattern": _check_pattern,
}


class FormIn(StrictModel):
    """One save of a ticket type's form (``ticket_type: null`` is the default form)."""

    ticket_type: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None
    fields: Annotated[list[FieldDef], Field(max_length=MAX_FIELDS)] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_keys(self) -> FormIn:
        keys = [f.key for f in self.fields]
        duplicates = sorted({k for k in keys if keys.count(k) > 1})
        if duplicates:
            raise PydanticCustomError("cross_field", "field keys must be unique (repeated: {keys})",
                                      {"keys": ", ".join(duplicates)})
        if sum(f.active for f in self.fields) > MAX_ACTIVE_FIELDS:
            raise ValueError(f"a form may have at most {MAX_ACTIVE_FIELDS} active fields")
        return self


class FormRead(BaseModel):
    """One version of a ticket type's form (``ticket_type`` ``default``: tickets without a type)."""

    ticket_type: str
    version: int
    fields: list[FieldDef]
    created_by: str
    created_at: datetime
