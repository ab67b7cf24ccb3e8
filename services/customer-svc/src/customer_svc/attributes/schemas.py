"""Attribute definitions as the API takes and shows them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator
from pydantic_core import PydanticCustomError

from helpdesk_common.text import OneLine
from helpdesk_common.validation import StrictModel

from .types import CHOICE_TYPES, DECIMAL_MAX_SCALE, TYPES, UNIQUE_TYPES

KEY_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"
AttributeKey = Annotated[str, StringConstraints(pattern=KEY_PATTERN)]
AttributeType = Literal["text", "number", "decimal", "boolean", "date", "select", "multiselect"]
Scope = Literal["customer", "organization"]
MAX_OPTIONS = 500
MAX_DEFINITIONS = 200
#: one line, like labels (helpdesk_common.text)
OptionValue = OneLine(100)


class Label(StrictModel):
    """A label per language; at least one of them."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"minProperties": 1})

    zh_cn: OneLine(100) = Field(None, alias="zh-CN")
    en: OneLine(100) = None

    @model_validator(mode="after")
    def _one_at_least(self) -> "Label":
        if self.zh_cn is None and self.en is None:
            raise cross_field("a label needs zh-CN or en")
        return self


class LabelRead(BaseModel):
    zh_cn: str | None = Field(None, alias="zh-CN")
    en: str | None = None


class OptionIn(StrictModel):
    value: OptionValue
    label: Label | None = None


class OptionRead(BaseModel):
    value: str
    label: LabelRead | None = None


def cross_field(message: str) -> PydanticCustomError:
    """A 422 error coded ``cross_field``: a rule across several values (docs/ARCHITECTURE.md,
    "The API document")."""
    return PydanticCustomError("cross_field", message)


def _distinct(options: list[OptionIn] | None) -> None:
    values = [o.value for o in options or ()]
    if len(set(values)) != len(values):
        raise cross_field("option values must be distinct")


Options = Annotated[list[OptionIn], Field(min_length=1, max_length=MAX_OPTIONS)]


def _per_type_schema(schema: dict[str, Any]) -> None:
    """The document states per type which members apply (the others are null or left out):
    options for select and multiselect (required there), scale for decimal, unique where a value
    is one scalar. Distinct option values are checked by the server (422 ``cross_field``)."""
    variants = []
    for kind in TYPES:
        properties: dict[str, Any] = {"type": {"const": kind}}
        if kind not in CHOICE_TYPES:
            properties["options"] = {"type": "null"}
        if kind != "decimal":
            properties["scale"] = {"type": "null"}
        if kind not in UNIQUE_TYPES:
            properties["unique"] = {"const": False}
        variants.append({"properties": properties, "required": ["type", *(["options"] if kind in CHOICE_TYPES else [])]})
    schema["anyOf"] = variants


class AttributeCreate(StrictModel):
    """``POST /v1/customer-attributes`` (or ``/v1/organization-attributes``). ``key``, ``type``,
    ``scale`` and ``unique`` are fixed once created: stored values depend on them."""

    model_config = ConfigDict(json_schema_extra=_per_type_schema)

    key: AttributeKey
    label: Label
    type: AttributeType
    options: Options | None = Field(None, description="select and multiselect: the values to choose from.")
    scale: Annotated[int, Field(ge=0, le=DECIMAL_MAX_SCALE)] | None = Field(
        None, description="decimal: the places kept (values are rounded to it); without one, as given.")
    required: bool = Field(False, description="API writes must give it and cannot clear it. Default: false.")
    unique: bool = Field(False, description="No two owners hold the same value (text, number, decimal, date, "
                                            "select). Default: false.")
    position: Annotated[int, Field(ge=0, le=10_000)] = Field(0, description="Display order. Default: 0.")

    @model_validator(mode="after")
    def _per_type(self) -> "AttributeCreate":
        if self.type in CHOICE_TYPES and not self.options:
            raise cross_field(f"a {self.type} attribute needs options")
        if self.type not in CHOICE_TYPES and self.options is not None:
            raise cross_field(f"options belong to select and multiselect attributes, not {self.type}")
        _distinct(self.options)
        if self.scale is not None and self.type != "decimal":
            raise cross_field("scale belongs to decimal attributes")
        if self.unique and self.type not in UNIQUE_TYPES:
            raise cross_field(f"a {self.type} attribute cannot be unique")
        return self


class AttributeUpdate(StrictModel):
    """``PATCH``: only the fields sent change. Removing an option keeps the values that use it."""

    label: Label | None = None
    options: Options | None = Field(None, description="select and multiselect only (cross_field otherwise).")
    required: bool | None = None
    position: Annotated[int, Field(ge=0, le=10_000)] | None = None

    @model_validator(mode="after")
    def _distinct_options(self) -> "AttributeUpdate":
        _distinct(self.options)
        return self


class AttributeRead(BaseModel):
    scope: Scope
    key: str
    label: LabelRead
    type: AttributeType
    options: list[OptionRead] | None
    scale: int | None
    required: bool
    unique: bool
    position: int
    created_at: datetime
    updated_at: datetime
    version: int


class AttributeList(BaseModel):
    items: list[AttributeRead]


def stored_label(label: Label) -> dict[str, Any]:
    return {k: v for k, v in label.model_dump(by_alias=True).items() if v is not None}


def stored_options(options: list[OptionIn] | None) -> list[dict[str, Any]] | None:
    if options is None:
        return None
    return [{"value": o.value, **({"label": stored_label(o.label)} if o.label else {})} for o in options]
