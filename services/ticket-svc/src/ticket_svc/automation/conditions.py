"""The condition language of triggers and automations: routing's, extended.

Routing's conditions (``routing/rules.py``) see a new ticket's facts. A trigger runs on every
update, so it also needs to see what the update did and who did it, and an automation needs
time. Rather than a second language, this module keeps routing's fields, operators, operand
checks and comparison semantics (case- and width-folded strings, "any element" for tags, a
missing fact failing positive ops) and adds:

* fields routing has no use for: ``status`` (a category), ``assignee_id``, ``team_id``, ``step``
  (the key of the current process step), and the update itself: ``update.event``
  (``created`` | ``updated``), ``update.actor_kind`` (``agent`` | ``customer`` | ``system`` |
  ``automation``), ``update.message`` (``none`` | ``public`` | ``internal``);
* change operators, for triggers only: ``changed``, ``not_changed``, ``changed_to``,
  ``changed_from``, ``not_changed_to``, ``not_changed_from``. On ``tags`` ``changed_to X`` means
  "X was added" and ``changed_from X`` "X was removed". On creation every field the new ticket
  has counts as changed from nothing, so ``status changed_to new`` holds for a new ticket;
* time conditions, for automations only: ``hours_since.<anchor> gte <hours>`` with
  ``calendar: "calendar" | "business"``; anchors ``created``, ``updated``, ``status_changed``,
  ``customer_replied``, ``agent_replied``, ``solved`` or ``custom_fields.<key>`` (a date-time
  kept in a custom field, for "on hold past a date"). Only ``gte`` exists: an automation fires
  when its condition *becomes* true, and "at least N hours" is the form that does.

Routing's checks and its comparison (``routing._holds``) are called, not copied, so the two
languages cannot drift apart. Which of these a rule may use depends on its kind (``TRIGGER`` or ``AUTOMATION``); a field or op
the kind does not take is refused like an unknown one, with the reason.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import ConfigDict, Field, StringConstraints, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

from helpdesk_common.validation import NOT_BLANK, StrictModel

from ..routing import rules as routing
from ..routing.rules import RuleError
from ..tickets.lifecycle import CATEGORIES

TRIGGER = "trigger"
AUTOMATION = "automation"

_EQUALITY = frozenset({"eq", "ne", "in", "not_in"})
CHANGE_OPS = frozenset({"changed", "not_changed", "changed_to", "changed_from", "not_changed_to", "not_changed_from"})
_CHANGE_NEGATIVE = {"not_changed": "changed", "not_changed_to": "changed_to", "not_changed_from": "changed_from"}
_VALUELESS_CHANGE = frozenset({"changed", "not_changed"})

#: fields of the ticket a trigger or automation sees beyond routing's, with their ops
TICKET_FIELD_OPS: dict[str, frozenset[str]] = {
    "status": _EQUALITY,
    "assignee_id": _EQUALITY | {"exists"},
    "team_id": _EQUALITY | {"exists"},
    "step": _EQUALITY | {"exists"},
}
#: what the update was; triggers only (an automation has no update)
UPDATE_VALUES: dict[str, tuple[str, ...]] = {
    "update.event": ("created", "updated"),
    "update.actor_kind": ("agent", "customer", "system", "automation"),
    "update.message": ("none", "public", "internal"),
}
#: fields whose changes the change ops can test (channel never changes)
CHANGEABLE = frozenset({"status", "priority", "type", "language", "subject", "tags", "customer_tier",
                        "assignee_id", "team_id", "step", "custom_fields"})

TIME_PREFIX = "hours_since."
#: time anchors and the ``TicketState`` attribute holding each
ANCHORS: dict[str, str] = {
    "created": "created_at",
    "updated": "updated_at",
    "status_changed": "status_changed_at",
    "customer_replied": "customer_replied_at",
    "agent_replied": "agent_replied_at",
    "solved": "solved_at",
}
#: ten years: enough for any real rule, small enough for ``timedelta`` and business-time search
MAX_HOURS = 87_600
CALENDARS = ("calendar", "business")
MAX_ID = 128


# --------------------------------------------------------------------------- the ticket as rules see it


@dataclass(frozen=True, slots=True)
class TicketState:
    """One ticket as triggers and automations see it; frozen, so an action yields a new value.

    ``step`` is the key of the current process step (None outside a process). The ``*_at``
    instants are the anchors of time conditions; they must be aware datetimes (or None).
    """

    status: str | None = "new"
    priority: str | None = "normal"
    type: str | None = None
    channel: str | None = None
    language: str | None = None
    subject: str = ""
    tags: tuple[str, ...] = ()
    custom_fields: Mapping[str, Any] = field(default_factory=dict)
    customer_tier: str | None = None
    team_id: str | None = None
    assignee_id: str | None = None
    step: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    status_changed_at: datetime | None = None
    customer_replied_at: datetime | None = None
    agent_replied_at: datetime | None = None
    solved_at: datetime | None = None


#: what a ticket looked like before it existed: the "before" of a creation
NOTHING = TicketState(status=None, priority=None)

#: the fields compared to find what an update changed (the time anchors are not conditions)
COMPARED = ("status", "priority", "type", "channel", "language", "subject", "tags", "customer_tier",
            "team_id", "assignee_id", "step")


@dataclass(frozen=True, slots=True)
class UpdateContext:
    """Who made the update and what it carried; ``update.*`` conditions read it."""

    event: Literal["created", "updated"] = "updated"
    actor_kind: Literal["agent", "customer", "system", "automation"] = "agent"
    message: Literal["none", "public", "internal"] = "none"


def with_changes(ticket: TicketState, changes: Mapping[str, Any]) -> TicketState:
    """``ticket`` with field ``changes`` (as ``apply_actions`` returns them) applied."""
    return dataclasses.replace(ticket, **changes) if changes else ticket


def _as_text(value: Any) -> Any:
    return str(value) if isinstance(value, uuid.UUID) else value


def fact(ticket: TicketState, context: UpdateContext | None, name: str) -> Any:
    """The value a condition on ``name`` looks at (None when absent)."""
    if name.startswith(routing.CUSTOM_PREFIX):
        return ticket.custom_fields.get(name[len(routing.CUSTOM_PREFIX):])
    if name in UPDATE_VALUES:
        if context is None:
            return None
        return getattr(context, name[len("update."):])
    return _as_text(getattr(ticket, name))


def _tag_set(tags: Iterable[str]) -> frozenset[str]:
    return frozenset(routing.fold(t) for t in tags)


def _same_fact(left: Any, right: Any) -> bool:
    if isinstance(left, (list, tuple)) and isinstance(right, (list, tuple)):
        return len(left) == len(right) and all(_same_fact(a, b) for a, b in zip(left, right, strict=True))
    if isinstance(left, bool) or isinstance(right, bool):
        return type(left) is type(right) and left == right
    return _as_text(left) == _as_text(right)


def changed_fields(before: TicketState, after: TicketState, changes: Iterable[str] = ()) -> frozenset[str]:
    """Names of the fields that differ between ``before`` and ``after``, plus ``changes``.

    Custom fields are reported per key (``custom_fields.<key>``) and as ``custom_fields``;
    a reordering of tags is no change. ``changes`` lets the caller add what the two states
    cannot show (e.g. a custom status switched within the same category)."""
    names: set[str] = set(changes)
    for name in COMPARED:
        old, new = getattr(before, name), getattr(after, name)
        if name == "tags":
            if _tag_set(old) != _tag_set(new):
                names.add(name)
        elif not _same_fact(old, new):
            names.add(name)
    for key in set(before.custom_fields) | set(after.custom_fields):
        if not _same_fact(before.custom_fields.get(key), after.custom_fields.get(key)):
            names.add(routing.CUSTOM_PREFIX + key)
            names.add("custom_fields")
    return frozenset(names)


# --------------------------------------------------------------------------- checks


def time_anchor(name: str) -> str | None:
    """The anchor of a ``hours_since.<anchor>`` field, or None for any other field."""
    if not name.startswith(TIME_PREFIX):
        return None
    anchor = name[len(TIME_PREFIX):]
    if anchor in ANCHORS:
        return anchor
    if anchor.startswith(routing.CUSTOM_PREFIX):
        routing.split_field(anchor)  # the same key rules as routing's custom fields
        return anchor
    raise RuleError("unknown_field", f"unknown time anchor {anchor!r}; expected one of "
                                     f"{', '.join(ANCHORS)} or custom_fields.<key>")


def base_of(name: str) -> str:
    """``custom_fields`` for ``custom_fields.<key>``, else the name itself."""
    return "custom_fields" if name.startswith(routing.CUSTOM_PREFIX) else name


def known_fields(kind: str) -> str:
    names = [*(f for f in routing.FIELDS), *TICKET_FIELD_OPS]
    if kind == TRIGGER:
        names += list(UPDATE_VALUES)
    else:
        names += [TIME_PREFIX + a for a in ANCHORS] + [TIME_PREFIX + "custom_fields.<key>"]
    return ", ".join(names)


def check_field(name: str, kind: str) -> None:
    """RuleError unless a rule of ``kind`` may have a condition on ``name``."""
    if name.startswith(TIME_PREFIX):
        if kind != AUTOMATION:
            raise RuleError("unknown_field", f"time conditions ({name!r}) are for automations; "
                                             f"a trigger runs when a ticket changes, not when time passes")
        time_anchor(name)
        return
    if name in UPDATE_VALUES:
        if kind != TRIGGER:
            raise RuleError("unknown_field", f"{name!r} describes an update; an automation runs on time, not on "
                                             f"an update")
        return
    if name in TICKET_FIELD_OPS:
        return
    try:
        routing.split_field(name)
    except RuleError:
        raise RuleError("unknown_field", f"unknown field {name!r}; expected one of {known_fields(kind)}") from None


def ops_for(name: str, kind: str) -> frozenset[str]:
    """The ops a condition of ``kind`` on ``name`` may use (``check_field`` passed)."""
    if name.startswith(TIME_PREFIX):
        return frozenset({"gte"})
    if name in UPDATE_VALUES:
        return _EQUALITY
    base = base_of(name)
    ops = TICKET_FIELD_OPS.get(base) or routing.FIELD_OPS[base]
    if kind == TRIGGER and base in CHANGEABLE:
        ops = ops | CHANGE_OPS
    return ops


def check_op(name: str, op: str, kind: str) -> None:
    allowed = ops_for(name, kind)
    if op not in allowed:
        if op in CHANGE_OPS and kind == AUTOMATION:
            raise RuleError("op_not_allowed", f"op {op!r} is for triggers: an automation has no update to compare")
        raise RuleError("op_not_allowed", f"op {op!r} is not allowed for field {name!r}; "
                                          f"allowed: {', '.join(sorted(allowed))}")


def _check_choice(name: str, op: str, value: Any, choices: Iterable[str]) -> str:
    options = tuple(choices)
    if not isinstance(value, str) or routing.fold(value.strip()) not in options:
        raise RuleError("invalid_value", f"op {op!r} on {name} needs one of {', '.join(options)}, got {value!r}")
    return routing.fold(value.strip())


def _check_id(name: str, op: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_ID:
        raise RuleError("invalid_value", f"op {op!r} on {name} needs a string of 1-{MAX_ID} characters, "
                                         f"got {value!r}")
    return value.strip()


def _check_operand(name: str, op: str, value: Any) -> Any:
    """One operand of an equality op (``eq`` / ``ne`` / ``changed_to`` ...) on ``name``."""
    if name == "status":
        return _check_choice(name, op, value, CATEGORIES)
    if name in UPDATE_VALUES:
        return _check_choice(name, op, value, UPDATE_VALUES[name])
    if name in TICKET_FIELD_OPS:
        return _check_id(name, op, value)
    if name == "tags":
        return routing.check_value(name, "has_tag", value)
    return routing.check_value(name, "eq", value)


def _check_hours(value: Any) -> float | int:
    if not routing._is_number(value) or not 0 <= value <= MAX_HOURS:
        raise RuleError("invalid_value", f"hours must be a number from 0 to {MAX_HOURS}, got {value!r}")
    return value


def check_value(name: str, op: str, value: Any) -> Any:
    """The operand of ``name op value`` in normal form (lists become tuples); RuleError if invalid.

    Assumes ``check_field`` and ``check_op`` passed. Routing's fields and ops are checked by
    routing's own ``check_value``, so an operand valid in a routing rule is valid here."""
    if name.startswith(TIME_PREFIX):
        return _check_hours(value)
    if op in _VALUELESS_CHANGE:
        if value not in (None, True):
            raise RuleError("invalid_value", f"op {op!r} takes no value (or true), got {value!r}")
        return True
    if op in CHANGE_OPS:
        if value is None:
            raise RuleError("invalid_value", f"op {op!r} needs a value")
        return _check_operand(name, op, value)
    if name not in TICKET_FIELD_OPS and name not in UPDATE_VALUES:
        return routing.check_value(name, op, value)
    if op == "exists":
        return routing.check_value("type", op, value)  # the same true / false / no value rule
    if value is None:
        raise RuleError("invalid_value", f"op {op!r} needs a value")
    if op in ("in", "not_in"):
        if not isinstance(value, (list, tuple)) or not value:
            raise RuleError("invalid_value", f"op {op!r} needs a non-empty list, got {value!r}")
        if len(value) > routing.MAX_LIST:
            raise RuleError("invalid_value", f"op {op!r} takes at most {routing.MAX_LIST} values")
        return tuple(_check_operand(name, op, v) for v in value)
    return _check_operand(name, op, value)


# --------------------------------------------------------------------------- conditions


@dataclass(frozen=True, slots=True)
class Condition:
    """``field op value`` (``calendar`` for time conditions); validated at construction."""

    field: str
    op: str
    value: Any = None
    calendar: Literal["calendar", "business"] = "calendar"
    kind: str = TRIGGER

    def __post_init__(self) -> None:
        check_field(self.field, self.kind)
        check_op(self.field, self.op, self.kind)
        object.__setattr__(self, "value", check_value(self.field, self.op, self.value))
        if self.calendar not in CALENDARS:
            raise RuleError("invalid_value", f"calendar must be one of {', '.join(CALENDARS)}")

    @property
    def is_time(self) -> bool:
        return self.field.startswith(TIME_PREFIX)

    def holds(self, before: TicketState, after: TicketState, changed: frozenset[str],
              context: UpdateContext | None) -> bool:
        """Whether the condition is true of an update from ``before`` to ``after``.

        Time conditions are not decided here (they hold from an instant on: ``schedule``)."""
        if self.is_time:
            raise RuleError("invalid_condition", "time conditions are decided by schedule.due_at")
        if self.op in CHANGE_OPS:
            return _change_holds(self, before, after, changed)
        if self.field == "status" or self.field in UPDATE_VALUES:
            # categories and update kinds are lower-case words: exact after folding
            return routing._holds(self.op, _folded(fact(after, context, self.field)), self.value, False)
        return routing._holds(self.op, fact(after, context, self.field), self.value, self.field == "priority")

    def describe(self) -> str:
        if self.is_time:
            return f"{self.field} {self.op} {self.value} ({self.calendar} hours)"
        if self.op in _VALUELESS_CHANGE:
            return f"{self.field} {self.op}"
        value = list(self.value) if isinstance(self.value, tuple) else self.value
        return f"{self.field} {self.op} {value!r}"


def _folded(value: Any) -> Any:
    return routing.fold(value) if isinstance(value, str) else value


def _change_holds(cond: Condition, before: TicketState, after: TicketState, changed: frozenset[str]) -> bool:
    op = cond.op
    if op in _CHANGE_NEGATIVE:
        positive = dataclasses.replace(cond, op=_CHANGE_NEGATIVE[op])
        return not _change_holds(positive, before, after, changed)
    if cond.field not in changed:
        return False
    if op == "changed":
        return True
    old, new = fact(before, None, cond.field), fact(after, None, cond.field)
    if cond.field == "tags":
        tag = routing.fold(cond.value)
        was, now = tag in _tag_set(old), tag in _tag_set(new)
        return now and not was if op == "changed_to" else was and not now
    value = new if op == "changed_to" else old
    if cond.field == "status":
        value = _folded(value)
    return routing._holds("eq", value, cond.value, cond.field == "priority")


@dataclass(frozen=True, slots=True)
class Conditions:
    """Every ``all`` entry holds and, when ``any`` has entries, at least one of them does.

    No conditions at all match every update (or, for an automation, only its time conditions
    count, and it must have one)."""

    all: tuple[Condition, ...] = ()
    any: tuple[Condition, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "all", tuple(self.all))
        object.__setattr__(self, "any", tuple(self.any))

    def matches(self, before: TicketState, after: TicketState, changed: frozenset[str],
                context: UpdateContext | None) -> bool:
        if not all(c.holds(before, after, changed, context) for c in self.all if not c.is_time):
            return False
        return not self.any or any(c.holds(before, after, changed, context) for c in self.any)

    def explain(self, before: TicketState, after: TicketState, changed: frozenset[str],
                context: UpdateContext | None) -> list[tuple[str, bool]]:
        """Each non-time condition with whether it holds: the reasons a dry run shows."""
        out = [(f"all: {c.describe()}", c.holds(before, after, changed, context)) for c in self.all if not c.is_time]
        out += [(f"any: {c.describe()}", c.holds(before, after, changed, context)) for c in self.any]
        return out


# --------------------------------------------------------------------------- API models


def _api_error(exc: RuleError) -> PydanticCustomError:
    return PydanticCustomError(exc.code, exc.message)


_ID_SCHEMA = {"type": "string", "minLength": 1, "maxLength": MAX_ID, "pattern": NOT_BLANK}
_FLAG_SCHEMA = {"type": ["boolean", "null"]}
_CHANGED_SCHEMA = {"enum": [True, None]}
_CUSTOM_FIELD_PATTERN = r"^custom_fields\.[\s\S]{1,%d}$" % routing.MAX_KEY


def _list_of(item: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "minItems": 1, "maxItems": routing.MAX_LIST, "items": item}


def _field_operands(name: str, kind: str) -> dict[str, dict[str, Any]]:
    """JSON Schemas of the operand ``check_value`` takes, per op, for a field of a rule of ``kind``
    (routing's own for routing's fields and ops), so the document states what is valid."""
    base = base_of(name)
    if name in UPDATE_VALUES:
        choice = {"type": "string", "enum": list(UPDATE_VALUES[name])}
        return {"eq": choice, "ne": choice, "in": _list_of(choice), "not_in": _list_of(choice)}
    if base in TICKET_FIELD_OPS:
        scalar = {"type": "string", "enum": list(CATEGORIES)} if base == "status" else _ID_SCHEMA
        operands = {op: _list_of(scalar) if op in ("in", "not_in") else scalar for op in ("eq", "ne", "in", "not_in")}
        if "exists" in TICKET_FIELD_OPS[base]:
            operands["exists"] = _FLAG_SCHEMA
    else:
        operands = routing._operand_schemas(base)
        scalar = operands["has_tag"] if base == "tags" else operands["eq"]
    if kind == TRIGGER and base in CHANGEABLE:
        for op in CHANGE_OPS:
            operands[op] = _CHANGED_SCHEMA if op in _VALUELESS_CHANGE else scalar
    return operands


def condition_variants(kind: str) -> list[dict[str, Any]]:
    """One JSON Schema alternative per field and op a rule of ``kind`` may use (with the operand
    it takes): what ``check_field``, ``check_op`` and ``check_value`` accept, stated."""
    no_calendar = {"type": "null"}
    names = [*routing.FIELD_OPS, *TICKET_FIELD_OPS, *(UPDATE_VALUES if kind == TRIGGER else ())]
    variants = []
    for name in names:
        field_schema = ({"type": "string", "pattern": _CUSTOM_FIELD_PATTERN} if name == "custom_fields"
                        else {"const": name})
        for op, operand in sorted(_field_operands(name, kind).items()):
            optional = op == "exists" or op in _VALUELESS_CHANGE
            variants.append({"properties": {"field": field_schema, "op": {"const": op}, "value": operand,
                                            "calendar": no_calendar},
                             "required": ["field", "op"] + ([] if optional else ["value"])})
    if kind == AUTOMATION:
        hours = {"type": "number", "minimum": 0, "maximum": MAX_HOURS}
        calendar = {"enum": [*CALENDARS, None]}
        anchors = [{"const": TIME_PREFIX + a} for a in ANCHORS]
        anchors.append({"type": "string", "pattern": r"^hours_since\.custom_fields\.[\s\S]{1,%d}$" % routing.MAX_KEY})
        variants += [{"properties": {"field": anchor, "op": {"const": "gte"}, "value": hours, "calendar": calendar},
                      "required": ["field", "op", "value"]} for anchor in anchors]
    return variants


def _condition_schema(schema: dict[str, Any], model: Any) -> None:
    """A condition's document: one alternative per field and op of the model's rule kind."""
    kind = getattr(model, "KIND", TRIGGER)
    schema["properties"]["field"]["description"] = f"one of {known_fields(kind)}"
    schema["properties"]["value"]["description"] = "the operand: its type depends on field and op"
    schema["anyOf"] = condition_variants(kind)


class ConditionIn(StrictModel):
    """One condition as sent to the API; errors point at ``field``, ``op``, ``value`` or ``calendar``."""

    model_config = ConfigDict(json_schema_extra=_condition_schema)

    KIND: ClassVar[str] = TRIGGER

    field: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    op: Annotated[str, StringConstraints(min_length=1, max_length=32)]
    value: Any = Field(default=None, validate_default=True)
    calendar: Literal["calendar", "business"] | None = None

    @field_validator("field")
    @classmethod
    def _known_field(cls, name: str) -> str:
        try:
            check_field(name, cls.KIND)
        except RuleError as exc:
            raise _api_error(exc) from None
        return name

    @field_validator("op")
    @classmethod
    def _allowed_op(cls, op: str, info: ValidationInfo) -> str:
        name = info.data.get("field")
        if name is None:
            return op  # the field was reported
        try:
            check_op(name, op, cls.KIND)
        except RuleError as exc:
            raise _api_error(exc) from None
        return op

    @field_validator("value")
    @classmethod
    def _typed_value(cls, value: Any, info: ValidationInfo) -> Any:
        name, op = info.data.get("field"), info.data.get("op")
        if name is None or op is None:
            return value
        try:
            normal = check_value(name, op, value)
        except RuleError as exc:
            raise _api_error(exc) from None
        return list(normal) if isinstance(normal, tuple) else normal

    @model_validator(mode="after")
    def _calendar_only_for_time(self) -> ConditionIn:
        if self.calendar is not None and not self.field.startswith(TIME_PREFIX):
            raise PydanticCustomError("invalid_value", "calendar applies to hours_since.* conditions only")
        return self

    def to_condition(self) -> Condition:
        return Condition(self.field, self.op, self.value, self.calendar or "calendar", self.KIND)


class AutomationConditionIn(ConditionIn):
    KIND: ClassVar[str] = AUTOMATION


class ConditionsIn(StrictModel):
    """``{"all": [...], "any": [...]}`` of a trigger."""

    all: Annotated[list[ConditionIn], Field(max_length=50)] = Field(default_factory=list)
    any: Annotated[list[ConditionIn], Field(max_length=50)] = Field(default_factory=list)

    def to_conditions(self) -> Conditions:
        return Conditions(all=tuple(c.to_condition() for c in self.all),
                          any=tuple(c.to_condition() for c in self.any))


def _time_in_all_only(schema: dict[str, Any]) -> None:
    """``all`` contains a time condition; ``any`` holds none (as the validators below say)."""
    time = {"properties": {"field": {"type": "string", "pattern": r"^hours_since\."}}, "required": ["field"]}
    schema["properties"]["all"]["contains"] = time
    schema["properties"]["any"]["items"] = {"allOf": [schema["properties"]["any"]["items"], {"not": time}]}


class AutomationConditionsIn(StrictModel):
    """``{"all": [...], "any": [...]}`` of an automation: time conditions belong in ``all``, and
    there must be at least one, because its instants define when the automation fires and
    which episode a firing belongs to."""

    model_config = ConfigDict(json_schema_extra=_time_in_all_only)

    all: Annotated[list[AutomationConditionIn], Field(min_length=1, max_length=50)]
    any: Annotated[list[AutomationConditionIn], Field(max_length=50)] = Field(default_factory=list)

    @field_validator("any")
    @classmethod
    def _no_time_in_any(cls, conditions: list[AutomationConditionIn]) -> list[AutomationConditionIn]:
        for cond in conditions:
            if cond.field.startswith(TIME_PREFIX):
                raise PydanticCustomError("invalid_condition", "time conditions belong in 'all': they define "
                                                               "when the automation fires")
        return conditions

    @field_validator("all")
    @classmethod
    def _one_time_condition(cls, conditions: list[AutomationConditionIn]) -> list[AutomationConditionIn]:
        if not any(c.field.startswith(TIME_PREFIX) for c in conditions):
            raise PydanticCustomError("invalid_condition", "an automation needs at least one hours_since.* "
                                                           "condition in 'all'")
        return conditions

    def to_conditions(self) -> Conditions:
        return Conditions(all=tuple(c.to_condition() for c in self.all),
                          any=tuple(c.to_condition() for c in self.any))


def parse_instant(value: Any) -> datetime | None:
    """A custom field's date-time as an aware UTC instant (naive read as UTC); None if it is not one.

    A bare date (``2026-12-01``) is its midnight UTC."""
    if isinstance(value, datetime):
        instant = value
    elif isinstance(value, str) and value.strip():
        try:
            instant = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            return None
    else:
        return None
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=UTC)
    try:
        return instant.astimezone(UTC)
    except (OverflowError, ValueError):
        return None


def anchor_instant(ticket: TicketState, anchor: str) -> datetime | None:
    """The instant a time condition counts from, or None when the ticket has none."""
    if anchor in ANCHORS:
        value = getattr(ticket, ANCHORS[anchor])
        return parse_instant(value) if value is not None else None
    return parse_instant(ticket.custom_fields.get(anchor[len(routing.CUSTOM_PREFIX):]))


__all__ = [
    "AUTOMATION", "CHANGE_OPS", "NOTHING", "TRIGGER", "AutomationConditionIn", "AutomationConditionsIn",
    "Condition", "ConditionIn", "Conditions", "ConditionsIn", "TicketState", "UpdateContext",
    "anchor_instant", "changed_fields", "fact", "with_changes",
]
