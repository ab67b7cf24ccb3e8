"""What triggers and automations do: actions as data, and their pure application.

``apply_actions`` never performs anything. It returns the field changes for the caller to write
through the one write path (``tickets/changes.apply``, so audit and events follow) and the side
effects as values (an internal note to add, a notification or webhook call to queue, a process
to start) for the caller to carry out in the same transaction. Keeping them as data is what makes
the trigger loop testable, the dry run honest (it runs the same code) and the audit exact.

A webhook is named by its notify-svc subscription id, never by URL: notify-svc signs, retries and
sends through its SSRF-safe egress, so no rule author can make ticket-svc call an address.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, NamedTuple

from pydantic import (ConfigDict, Discriminator, Field, StringConstraints, Tag, ValidationInfo, WithJsonSchema,
                      field_validator, model_validator)
from pydantic_core import PydanticCustomError

from helpdesk_common.openapi import JSON_VALUE_REF, NO_NUL_PATTERN
from helpdesk_common.text import OneLine
from helpdesk_common.validation import NOT_BLANK, NOT_BLANK_CHAR, StrictModel

from ..forms.limits import value_problem
from ..routing import rules as routing
from ..routing.rules import RuleError
from ..tickets.lifecycle import CATEGORIES, is_legal
from .conditions import TicketState

#: fields ``set_field`` may set; team and assignee go through ``assign``, the step through processes
SETTABLE = ("status", "priority", "type", "language")
RECIPIENTS = ("assignee", "requester", "supervisors", "followers")
USER_PREFIX = "user:"
MAX_BODY = 65_536

TagText = Annotated[str, StringConstraints(min_length=1, max_length=64, strip_whitespace=True, pattern=NOT_BLANK)]
Ref = Annotated[str, StringConstraints(min_length=1, max_length=128, strip_whitespace=True, pattern=NOT_BLANK)]
Body = Annotated[str, StringConstraints(min_length=1, max_length=MAX_BODY, pattern=NOT_BLANK)]


class _Action(StrictModel):
    model_config = ConfigDict(frozen=True)


def custom_value_schema() -> dict[str, Any]:
    """What ``check_set_value`` takes for a custom field, as a JSON Schema."""
    return {"anyOf": [{"type": "null"}, {"type": "boolean"}, routing._operand_schemas("custom_fields")["eq"],
                      {"type": "array", "maxItems": routing.MAX_LIST,
                       "items": {"type": "string", "maxLength": routing.MAX_TEXT}}]}


def _set_field_schema(schema: dict[str, Any]) -> None:
    """One alternative per field ``set_field`` writes, with the values ``check_set_value`` takes."""
    def text(limit: int) -> dict[str, Any]:
        return {"anyOf": [{"type": "string", "maxLength": limit, "pattern": NOT_BLANK}, {"type": "null"}]}

    custom = custom_value_schema()
    schema["anyOf"] = [
        {"properties": {"field": {"const": "status"}, "value": {"enum": list(CATEGORIES[1:])}},
         "required": ["field", "value"]},
        {"properties": {"field": {"const": "priority"}, "value": {"enum": list(routing.PRIORITIES)}},
         "required": ["field", "value"]},
        {"properties": {"field": {"const": "type"}, "value": text(64)}, "required": ["field"]},
        {"properties": {"field": {"const": "language"}, "value": text(35)}, "required": ["field"]},
        {"properties": {"field": {"type": "string", "pattern": r"^custom_fields\.[\s\S]{1,%d}$" % routing.MAX_KEY},
                        "value": custom}, "required": ["field"]},
    ]


class SetField(_Action):
    """``{"type": "set_field", "field": "priority", "value": "high"}``; a custom field by
    ``custom_fields.<key>`` (a string, number, boolean, list of strings, or null to clear)."""

    model_config = ConfigDict(frozen=True, json_schema_extra=_set_field_schema)

    type: Literal["set_field"]
    field: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    value: Any = Field(default=None, validate_default=True)

    @field_validator("field")
    @classmethod
    def _settable(cls, name: str) -> str:
        if name.startswith(routing.CUSTOM_PREFIX):
            try:
                routing.split_field(name)
            except RuleError as exc:
                raise PydanticCustomError(exc.code, exc.message) from None
            return name
        if name not in SETTABLE:
            raise PydanticCustomError("unknown_field", "set_field can set {fields} or custom_fields.<key>; "
                                                       "got {name} (team and assignee: the assign action)",
                                      {"fields": ", ".join(SETTABLE), "name": repr(name)})
        return name

    @field_validator("value")
    @classmethod
    def _typed_value(cls, value: Any, info: ValidationInfo) -> Any:
        name = info.data.get("field")
        if name is None:
            return value  # the field was reported
        try:
            return check_set_value(name, value)
        except RuleError as exc:
            raise PydanticCustomError(exc.code, exc.message) from None


def check_set_value(name: str, value: Any) -> Any:
    """The value ``set_field`` writes to ``name``, normalised; RuleError if the field cannot hold it."""
    if name == "status":
        if not isinstance(value, str) or value.strip().lower() not in CATEGORIES or value.strip().lower() == "new":
            raise RuleError("invalid_value", f"status must be one of {', '.join(CATEGORIES[1:])}, got {value!r}")
        return value.strip().lower()
    if name == "priority":
        if not isinstance(value, str) or value.strip().lower() not in routing.PRIORITY_RANK:
            raise RuleError("invalid_value", f"priority must be one of {', '.join(routing.PRIORITIES)}, "
                                             f"got {value!r}")
        return value.strip().lower()
    if name in ("type", "language"):
        limit = 64 if name == "type" else 35
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip() or len(value) > limit:
            raise RuleError("invalid_value", f"{name} must be a string of 1-{limit} characters or null")
        return value.strip()
    # a custom field
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, list):
        if len(value) > routing.MAX_LIST or not all(isinstance(v, str) and len(v) <= routing.MAX_TEXT
                                                      for v in value):
            raise RuleError("invalid_value", f"a list value holds at most {routing.MAX_LIST} strings of at most "
                                             f"{routing.MAX_TEXT} characters")
        return list(value)
    return routing.check_value(name, "eq", value)


class AddTags(_Action):
    type: Literal["add_tags"]
    tags: Annotated[list[TagText], Field(min_length=1, max_length=50)]


class RemoveTags(_Action):
    type: Literal["remove_tags"]
    tags: Annotated[list[TagText], Field(min_length=1, max_length=50)]


class Assign(_Action):
    """Team, agent or both; the caller assigns through the assignment path (capacity, events)."""

    model_config = ConfigDict(frozen=True, json_schema_extra={"anyOf": [
        {"properties": {"team_id": {"type": "string"}}, "required": ["team_id"]},
        {"properties": {"assignee_id": {"type": "string"}}, "required": ["assignee_id"]}]})

    type: Literal["assign"]
    #: a team's id (a UUID: a rule naming anything else is refused when saved)
    team_id: Annotated[Ref, Field(json_schema_extra={"format": "uuid"})] | None = None
    assignee_id: Ref | None = None

    @model_validator(mode="after")
    def _something(self) -> Assign:
        if self.team_id is None and self.assignee_id is None:
            raise PydanticCustomError("invalid_value", "assign needs team_id, assignee_id or both")
        return self


class AddInternalNote(_Action):
    type: Literal["add_internal_note"]
    body: Body


def _recipient(value: str) -> str:
    if value in RECIPIENTS:
        return value
    if value.startswith(USER_PREFIX) and 0 < len(value) - len(USER_PREFIX) <= 128 and value[len(USER_PREFIX):].strip():
        return value
    raise PydanticCustomError("invalid_value", "a recipient is one of {names} or user:<id>, got {value!r}",
                              {"names": ", ".join(RECIPIENTS), "value": value})


class Notify(_Action):
    """A notification through notify-svc: to the ticket's roles or named users."""

    type: Literal["notify"]
    to: Annotated[list[Annotated[str, StringConstraints(max_length=140), WithJsonSchema({"anyOf": [
        {"type": "string", "enum": list(RECIPIENTS)},
        {"type": "string", "maxLength": len(USER_PREFIX) + 128, "pattern": f"^{USER_PREFIX}[\\s\\S]*{NOT_BLANK_CHAR}"}]})]],
        Field(min_length=1, max_length=20)]
    subject: OneLine(200)
    body: Body

    @field_validator("to")
    @classmethod
    def _recipients(cls, values: list[str]) -> list[str]:
        return [_recipient(v) for v in values]


class CallWebhook(_Action):
    """Posts the ticket's event to a notify-svc webhook subscription, with ``payload`` added."""

    type: Literal["call_webhook"]
    webhook_id: uuid.UUID
    #: free-form values one level below a custom field's (the payload itself is the first level)
    payload: Annotated[dict[str, Annotated[Any, WithJsonSchema({"allOf": [{"$ref": JSON_VALUE_REF + "1"}]})]],
                       Field(max_length=50, json_schema_extra={"propertyNames": {"pattern": NO_NUL_PATTERN}})
                       ] = Field(default_factory=dict)

    @field_validator("payload")
    @classmethod
    def _storable(cls, payload: dict[str, Any]) -> dict[str, Any]:
        """Values jsonb and the event encoder take: the form engine's rule for free-form values
        (integers within 64 bits, nesting bounded)."""
        problem = value_problem(payload)
        if problem is not None:
            raise PydanticCustomError("invalid_value", "payload: {problem}", {"problem": problem})
        return payload


class StartProcess(_Action):
    """Starts the named process definition on the ticket (its current version)."""

    type: Literal["start_process"]
    process: Annotated[str, StringConstraints(min_length=1, max_length=64, strip_whitespace=True, pattern=NOT_BLANK)]


ACTION_MODELS: dict[str, type[_Action]] = {
    "set_field": SetField, "add_tags": AddTags, "remove_tags": RemoveTags, "assign": Assign,
    "add_internal_note": AddInternalNote, "notify": Notify, "call_webhook": CallWebhook,
    "start_process": StartProcess,
}
ACTION_TYPES = tuple(ACTION_MODELS)


def _action_type(value: Any) -> str | None:
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    return kind if isinstance(kind, str) and kind in ACTION_MODELS else None


#: one action; an unknown or missing ``type`` is one error naming the action, with the known types
ActionIn = Annotated[
    Annotated[SetField, Tag("set_field")] | Annotated[AddTags, Tag("add_tags")]
    | Annotated[RemoveTags, Tag("remove_tags")] | Annotated[Assign, Tag("assign")]
    | Annotated[AddInternalNote, Tag("add_internal_note")] | Annotated[Notify, Tag("notify")]
    | Annotated[CallWebhook, Tag("call_webhook")] | Annotated[StartProcess, Tag("start_process")],
    Discriminator(_action_type, custom_error_type="unknown_action",
                  custom_error_message=f"unknown action type; expected one of {', '.join(ACTION_TYPES)}"),
]
Action = SetField | AddTags | RemoveTags | Assign | AddInternalNote | Notify | CallWebhook | StartProcess


# --------------------------------------------------------------------------- side effects


@dataclass(frozen=True, slots=True)
class InternalNote:
    body: str


@dataclass(frozen=True, slots=True)
class Notification:
    recipients: tuple[str, ...]
    subject: str
    body: str


@dataclass(frozen=True, slots=True)
class WebhookCall:
    webhook_id: str
    payload: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ProcessStart:
    process: str


@dataclass(frozen=True, slots=True)
class Skipped:
    """An action that could not apply to this ticket (e.g. an illegal status move), and why."""

    action: str
    reason: str


SideEffect = InternalNote | Notification | WebhookCall | ProcessStart | Skipped


class ActionResult(NamedTuple):
    """Field changes (only values that differ from the ticket's) and side effects, in action order."""

    changes: dict[str, Any]
    effects: tuple[SideEffect, ...]


def _tags_after(tags: tuple[str, ...], add: Iterable[str] = (), remove: Iterable[str] = ()) -> tuple[str, ...]:
    """Routing's tag arithmetic (folded, removals first, no duplicates), reused as is."""
    facts = routing.TicketFacts(tags=tags)
    return routing.apply_action(facts, routing.Action(add_tags=tuple(add), remove_tags=tuple(remove))).tags


def apply_actions(ticket: TicketState, actions: Iterable[Action]) -> ActionResult:
    """Apply ``actions`` in order to ``ticket`` (later ones see earlier ones' effects).

    A status move the state machine forbids (``tickets/lifecycle``) is not applied: it becomes
    a ``Skipped`` effect, so the caller's write path never meets an illegal transition."""
    values: dict[str, Any] = {}
    effects: list[SideEffect] = []

    def current(name: str) -> Any:
        return values[name] if name in values else getattr(ticket, name)

    for action in actions:
        if isinstance(action, SetField):
            if action.field.startswith(routing.CUSTOM_PREFIX):
                fields = dict(current("custom_fields"))
                key = action.field[len(routing.CUSTOM_PREFIX):]
                if action.value is None:
                    fields.pop(key, None)
                else:
                    fields[key] = action.value
                values["custom_fields"] = fields
            elif action.field == "status":
                now = current("status")
                if now is not None and action.value != now and not is_legal(now, action.value):
                    effects.append(Skipped("set_field", f"a {now} ticket cannot become {action.value}"))
                else:
                    values["status"] = action.value
            else:
                values[action.field] = action.value
        elif isinstance(action, AddTags):
            values["tags"] = _tags_after(current("tags"), add=action.tags)
        elif isinstance(action, RemoveTags):
            values["tags"] = _tags_after(current("tags"), remove=action.tags)
        elif isinstance(action, Assign):
            if action.team_id is not None:
                values["team_id"] = action.team_id
            if action.assignee_id is not None:
                values["assignee_id"] = action.assignee_id
        elif isinstance(action, AddInternalNote):
            effects.append(InternalNote(action.body))
        elif isinstance(action, Notify):
            effects.append(Notification(tuple(action.to), action.subject, action.body))
        elif isinstance(action, CallWebhook):
            effects.append(WebhookCall(str(action.webhook_id), dict(action.payload)))
        elif isinstance(action, StartProcess):
            effects.append(ProcessStart(action.process))
        else:  # pragma: no cover - the union is closed
            raise TypeError(f"not an action: {action!r}")
    changes = {name: value for name, value in values.items() if value != getattr(ticket, name)}
    return ActionResult(changes, tuple(effects))
