"""Requests and answers of the trigger, automation and dry-run API.

The rule bodies are the pure core's models (``triggers.TriggerIn``, ``schedule.AutomationIn``)
plus what only storage has (a description); their validation, and so every 422 path
(``body.actions.0.set_field.value``, ``unknown_action`` at ``body.actions.0``), is the core's.
The examples are what schemathesis and readers of the document start from: each is a body the
API accepts.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, WithJsonSchema, field_validator
from pydantic_core import PydanticCustomError

from helpdesk_common.openapi import NO_NUL_PATTERN
from helpdesk_common.validation import StrictModel

from ..tickets.schemas import AgentId, Language, Priority, Subject, Tag
from ..routing.rules import RuleError
from .actions import check_set_value, custom_value_schema
from .schedule import AutomationIn
from .triggers import TriggerIn

Description = Annotated[str, StringConstraints(max_length=2000)]

TRIGGER_EXAMPLE = {
    "name": "VIP urgent WeChat tickets to the escalation team",
    "description": "An urgent ticket from a VIP on WeChat goes straight to the escalation team.",
    "active": True,
    "position": 10,
    "conditions": {"all": [{"field": "priority", "op": "eq", "value": "urgent"},
                           {"field": "channel", "op": "eq", "value": "wechat"},
                           {"field": "customer_tier", "op": "eq", "value": "vip"}],
                   "any": []},
    "actions": [{"type": "add_tags", "tags": ["vip-urgent"]},
                {"type": "add_internal_note", "body": "VIP 紧急工单 / urgent VIP ticket: handle first."}],
}
AUTOMATION_EXAMPLE = {
    "name": "Close solved tickets after 4 days",
    "description": "Solved tickets nobody reopened are closed.",
    "active": True,
    "position": 0,
    "conditions": {"all": [{"field": "status", "op": "eq", "value": "solved"},
                           {"field": "hours_since.solved", "op": "gte", "value": 96}]},
    "actions": [{"type": "set_field", "field": "status", "value": "closed"}],
}


class TriggerWrite(TriggerIn):
    """A trigger as an admin writes it (``position`` left out: after the last one)."""

    model_config = ConfigDict(json_schema_extra={"examples": [TRIGGER_EXAMPLE]})

    description: Description = ""


class AutomationWrite(AutomationIn):
    """An automation as an admin writes it (``position`` left out: after the last one)."""

    model_config = ConfigDict(json_schema_extra={"examples": [AUTOMATION_EXAMPLE]})

    description: Description = ""


class RuleRead(BaseModel):
    """A stored trigger or automation; ``version`` is its ETag (``W/"<version>"``)."""

    id: uuid.UUID
    name: str
    description: str
    position: int
    active: bool
    conditions: dict[str, Any]
    actions: list[dict[str, Any]]
    version: int
    created_by: str
    created_at: datetime
    updated_by: str
    updated_at: datetime


class RulePage(BaseModel):
    """Every rule of the kind, in evaluation order (rules are few: one page)."""

    items: list[RuleRead]
    next_cursor: str | None = None


class RuleOrder(StrictModel):
    """The whole evaluation order: every rule's id, each once, first to run first."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"ids": []}]})

    ids: Annotated[list[uuid.UUID], Field(max_length=10_000)]


class HypotheticalChanges(StrictModel):
    """What the update to try would change (all optional; left out: unchanged)."""

    status: Literal["open", "pending", "on_hold", "solved", "closed"] | None = None
    priority: Priority | None = None
    type: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None
    language: Language | None = None
    subject: Subject | None = None
    add_tags: Annotated[list[Tag], Field(max_length=50)] = Field(default_factory=list)
    remove_tags: Annotated[list[Tag], Field(max_length=50)] = Field(default_factory=list)
    #: merged into the ticket's custom fields (null removes a key)
    custom_fields: Annotated[dict[Annotated[str, StringConstraints(min_length=1, max_length=64)],
                                  Annotated[Any, WithJsonSchema(custom_value_schema())]],
                             Field(max_length=100, json_schema_extra={
                                 "propertyNames": {"minLength": 1, "maxLength": 64, "pattern": NO_NUL_PATTERN}})
                             ] | None = None
    team_id: uuid.UUID | None = None
    assignee_id: AgentId | None = None

    @field_validator("custom_fields")
    @classmethod
    def _values_set_field_could_write(cls, values: dict[str, Any] | None) -> dict[str, Any] | None:
        """The values a trigger's ``set_field`` could write (a string, a number, a boolean, a list
        of strings, null), so the dry run judges nothing a real ticket cannot hold."""
        for key, value in (values or {}).items():
            try:
                check_set_value(f"custom_fields.{key}", value)
            except RuleError as exc:
                raise PydanticCustomError(exc.code, "{key}: {message}", {"key": key, "message": exc.message}) from None
        return values


class DryRunIn(StrictModel):
    """Which triggers an update of the ticket would fire, and when each automation is due.

    Without ``changes`` the update changes nothing (the rules whose conditions the ticket meets
    as it is); ``event: "created"`` judges the ticket as if it had just been created."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"ticket_id": "00000000-0000-0000-0000-000000000000", "changes": {"priority": "urgent"}}]})

    ticket_id: uuid.UUID
    changes: HypotheticalChanges | None = None
    event: Literal["created", "updated"] = "updated"
    actor_kind: Literal["agent", "customer", "system", "automation"] = "agent"
    message: Literal["none", "public", "internal"] = "none"


class Reason(BaseModel):
    condition: str
    holds: bool


class TriggerVerdictRead(BaseModel):
    id: uuid.UUID | None
    name: str
    position: int
    fires: bool
    pass_number: int | None
    reasons: list[Reason]
    changes: dict[str, Any]
    effects: list[dict[str, Any]]


class AutomationVerdictRead(BaseModel):
    id: uuid.UUID | None
    name: str
    state: Literal["due", "scheduled", "never", "unknown"]
    due_at: datetime | None
    episode_key: str | None
    reasons: list[Reason]


class DryRunRead(BaseModel):
    """Nothing was written or sent. ``ticket``: the facts the triggers would leave, which the
    automations are judged on; ``bounded``: the run hit the pass limit (the rules loop)."""

    ticket_id: uuid.UUID
    passes: int
    bounded: bool
    triggers: list[TriggerVerdictRead]
    ticket: dict[str, Any]
    automations: list[AutomationVerdictRead]


class RuleRunRead(BaseModel):
    """One rule that fired on the ticket: in which run (one originating update), which pass,
    what it changed and what it queued or skipped."""

    id: int
    run_id: uuid.UUID
    rule_kind: Literal["trigger", "automation"]
    rule_id: uuid.UUID
    rule_name: str
    pass_number: int
    changes: dict[str, Any]
    effects: list[dict[str, Any]]
    bounded: bool
    actor: str
    at: datetime


class RuleRunPage(BaseModel):
    items: list[RuleRunRead]
    next_cursor: str | None
