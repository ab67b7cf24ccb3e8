"""Policy API shapes. The stored definition is ``PolicyIn`` minus name/position/enabled."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from helpdesk_common.validation import INT64_MAX, INT64_MIN, StrictModel, fold_key

from ..timers.plan import METRIC_PATTERN, is_metric

def _metric(name: str) -> str:
    if not is_metric(name):
        raise ValueError("a metric is first_response, next_response, periodic_update, resolution "
                         "or step:<key> (a workflow step; key: a-z, 0-9, '_', '.', '-', at most 64)")
    return name


#: the four ticket metrics, or ``step:<key>`` for a workflow step's own target
Metric = Annotated[str, StringConstraints(min_length=1, max_length=69), AfterValidator(_metric)]


def _metric_keys(schema: dict) -> None:
    """The document states the metric rule on the keys of a map by metric."""
    schema.setdefault("propertyNames", {})["pattern"] = METRIC_PATTERN
Priority = Literal["urgent", "high", "normal", "low"]
Text = Annotated[str, StringConstraints(min_length=1, max_length=200)]
#: tiers are stored folded by customer-svc (``VIP`` is ``vip``), so conditions are folded the same way
Tier = Annotated[str, StringConstraints(min_length=1, max_length=50), AfterValidator(fold_key)]


def _fits_64_bits(value: str | int | float | bool) -> str | int | float | bool:
    # orjson renders no integer beyond 64 bits: a 500. A float beyond them came back from jsonb as
    # such an integer (3.9e81 is stored as a numeric and read as an int): the same 500, on read
    if isinstance(value, (int, float)) and not isinstance(value, bool) and not INT64_MIN <= value <= INT64_MAX:
        raise ValueError("numbers beyond 64 bits are not supported")
    return value


#: a custom-field value a condition accepts (an int is kept an int, so it is bounded, not turned into a float)
Scalar = Annotated[str | int | float | bool, AfterValidator(_fits_64_bits), WithJsonSchema({"anyOf": [
    {"type": "string"}, {"type": "number", "minimum": INT64_MIN, "maximum": INT64_MAX}, {"type": "boolean"}]})]

MAX_TARGET_MINUTES = 525_600 * 2  # two years


class Conditions(StrictModel):
    """Every given condition must hold; an empty or missing list matches anything.

    ``tags``: the ticket has at least one of them. ``custom_fields``: field -> accepted values.
    """

    priority: list[Priority] | None = Field(None, max_length=4)
    customer_tier: list[Tier] | None = Field(None, max_length=50)
    channel: list[Text] | None = Field(None, max_length=50)
    type: list[Text] | None = Field(None, max_length=50)
    tags: list[Text] | None = Field(None, max_length=50)
    #: 20 fields, 100 accepted values each (every ticket event is matched against them)
    custom_fields: dict[Text, Annotated[list[Scalar], Field(max_length=100)]] | None = Field(None, max_length=20)


class TargetIn(StrictModel):
    # calendar_id only with business time (time defaults to calendar)
    model_config = ConfigDict(json_schema_extra={
        "if": {"properties": {"time": {"const": "calendar"}}},
        "then": {"properties": {"calendar_id": {"type": "null"}}},
    })

    minutes: int = Field(ge=1, le=MAX_TARGET_MINUTES)
    time: Literal["business", "calendar"] = "calendar"
    calendar_id: uuid.UUID | None = None

    @model_validator(mode="after")
    def _calendar_for_business(self) -> TargetIn:
        # business time without a calendar_id counts in the calendar of the ticket's team
        # (PUT /v1/sla/teams/{id}/calendar), and in calendar time when the team has none
        if self.time == "calendar" and self.calendar_id is not None:
            raise ValueError("calendar_id is only used by business-time targets")
        return self


class EscalationIn(StrictModel):
    set_priority: Priority | None = None
    set_team_id: uuid.UUID | None = None
    notify: list[Text] = Field(default_factory=list, max_length=20)


class PolicyIn(StrictModel):
    name: Text
    #: lower comes first; ties by id. Missing: after the last policy.
    position: int | None = Field(None, ge=0, le=1_000_000)
    enabled: bool = True
    conditions: Conditions = Field(default_factory=Conditions)
    targets: dict[Metric, TargetIn] = Field(min_length=1, json_schema_extra=_metric_keys)
    pause_statuses: list[Annotated[Text, Field(json_schema_extra={"not": {"enum": ["solved", "closed"]}})]] = Field(
        default_factory=lambda: ["pending", "on_hold"], max_length=20)
    warning_fractions: list[Annotated[float, Field(json_schema_extra={"exclusiveMinimum": 0, "exclusiveMaximum": 1})]] = Field(
        default_factory=lambda: [0.5, 0.75, 0.9], max_length=10, json_schema_extra={"uniqueItems": True})
    escalations: dict[Metric, EscalationIn] = Field(default_factory=dict, json_schema_extra=_metric_keys)

    @field_validator("warning_fractions")
    @classmethod
    def _fractions(cls, value: list[float]) -> list[float]:
        if any(not 0 < f < 1 for f in value):
            raise ValueError("warning fractions are between 0 and 1 (exclusive)")
        if len(set(value)) != len(value):
            raise ValueError("warning fractions must be distinct")
        return sorted(value)

    @field_validator("pause_statuses")
    @classmethod
    def _pauses(cls, value: list[str]) -> list[str]:
        if {"solved", "closed"} & set(value):
            raise ValueError("solved and closed end timers; they cannot pause them")
        return list(dict.fromkeys(value))


class PolicyRead(BaseModel):
    id: uuid.UUID
    name: str
    position: int
    enabled: bool
    conditions: dict
    targets: dict
    pause_statuses: list[str]
    warning_fractions: list[float]
    escalations: dict
    version: int
    created_at: datetime
    updated_at: datetime


class PolicyList(BaseModel):
    items: list[PolicyRead]
    next_cursor: str | None


class DefaultPolicyRead(BaseModel):
    name: str
    calendar: str
    first_response_minutes: dict[str, int]
