"""Routing rules: ordered conditions on a new ticket's facts that set team, priority, tags, assignee.

Everything here is pure. ``evaluate`` runs inside the intake transaction, so it must not touch
I/O and must give the same answer for the same input (rules are ordered by ``position``; equal
positions keep the caller's order, which the repository fixes as oldest first). The same checks back both the API models (``RuleIn``: a bad rule is a
422 with the exact failing path) and the plain dataclasses (``Condition``: a stored rule that
no longer validates fails loudly instead of silently matching nothing).

Comparison semantics, chosen so rule authors do not trip over case or width:

* strings compare after NFKC normalisation and case folding, so ``VIP`` = ``vip`` and the
  full-width ``ＶＩＰ`` typed on a Chinese keyboard = ``VIP``; Chinese text is unchanged by
  folding, so ``contains "退款"`` is a plain substring test;
* multi-valued facts (``tags``, list custom fields) match a positive op (``eq``, ``in``,
  ``contains``, ``has_tag``, ``gt``...) when *any* element does; the negative ops (``ne``,
  ``not_in``, ``not_contains``) are exactly the negation of their positive op;
* a missing fact (``None``, no such custom field) fails every positive op and satisfies every
  negative one; ``exists`` tests presence (not ``None``, not ``""``, not an empty list);
* priorities order by rank ``low < normal < high < urgent``.
"""

from __future__ import annotations

import dataclasses
import math
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, StringConstraints, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

from helpdesk_common.text import OneLine
from helpdesk_common.validation import NOT_BLANK, StrictModel

from ..channels.inbound import CHANNELS

#: Ticket priorities in rank order (index = rank).
PRIORITIES: tuple[str, ...] = ("low", "normal", "high", "urgent")
PRIORITY_RANK: dict[str, int] = {p: i for i, p in enumerate(PRIORITIES)}

CUSTOM_PREFIX = "custom_fields."
MAX_TEXT = 1000
MAX_LIST = 100
MAX_KEY = 64

_EQUALITY = frozenset({"eq", "ne", "in", "not_in"})
_TEXT = frozenset({"contains", "not_contains"})
_ORDER = frozenset({"gt", "gte", "lt", "lte"})

#: Which ops each field accepts. A table rather than code so the docs and the errors agree.
FIELD_OPS: dict[str, frozenset[str]] = {
    "channel": _EQUALITY | {"exists"},
    "type": _EQUALITY | {"exists"},
    "language": _EQUALITY | {"exists"},
    "customer_tier": _EQUALITY | {"exists"},
    "priority": _EQUALITY | _ORDER,
    "subject": _EQUALITY | _TEXT | {"exists"},
    "tags": frozenset({"has_tag", "in", "not_in", "exists"}),
    "custom_fields": _EQUALITY | _TEXT | _ORDER | {"exists"},
}
OPS: frozenset[str] = frozenset().union(*FIELD_OPS.values())
FIELDS: tuple[str, ...] = (*[f for f in FIELD_OPS if f != "custom_fields"], "custom_fields.<key>")

_NEGATIVE = {"ne": "eq", "not_in": "in", "not_contains": "contains"}


class RuleError(ValueError):
    """A condition or action that cannot be evaluated; ``code`` is the machine-readable kind."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# --------------------------------------------------------------------------- facts


@dataclass(frozen=True, slots=True)
class TicketFacts:
    """What rules can see of a new ticket. Frozen: actions produce a new value (``replace_facts``)."""

    channel: str | None = None
    type: str | None = None
    priority: str = "normal"
    language: str | None = None
    tags: tuple[str, ...] = ()
    customer_tier: str | None = None
    subject: str = ""
    custom_fields: Mapping[str, Any] = field(default_factory=dict)


def replace_facts(facts: TicketFacts, **changes: Any) -> TicketFacts:
    """A copy of ``facts`` with ``changes`` (e.g. the customer tier looked up at intake)."""
    return dataclasses.replace(facts, **changes)


def fold(text: str) -> str:
    """Comparison form of a string: NFKC (full-width → ASCII) then case folding."""
    return unicodedata.normalize("NFKC", text).casefold()


# --------------------------------------------------------------------------- checks


def split_field(name: str) -> tuple[str, str | None]:
    """``("custom_fields", key)`` or ``(name, None)``; RuleError for an unknown field."""
    if name.startswith(CUSTOM_PREFIX):
        key = name[len(CUSTOM_PREFIX):]
        if not key or len(key) > MAX_KEY:
            raise RuleError("unknown_field", f"custom field key must be 1-{MAX_KEY} characters, got {key!r}")
        return "custom_fields", key
    if name in FIELD_OPS and name != "custom_fields":
        return name, None
    raise RuleError("unknown_field", f"unknown field {name!r}; expected one of {', '.join(FIELDS)}")


def check_op(name: str, op: str) -> None:
    """RuleError unless ``op`` exists and is allowed on field ``name``."""
    base, _ = split_field(name)
    if op not in OPS:
        raise RuleError("unknown_op", f"unknown op {op!r}; expected one of {', '.join(sorted(OPS))}")
    if op not in FIELD_OPS[base]:
        allowed = ", ".join(sorted(FIELD_OPS[base]))
        raise RuleError("op_not_allowed", f"op {op!r} is not allowed for field {name!r}; allowed: {allowed}")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _in_64_bits(value: Any) -> Any:
    """A rule's operands are stored in jsonb and rendered by orjson, which has no integers beyond
    64 bits: one such operand was a 500 when the rule was saved. Floats are held to the same
    range: JSON does not tell ``1e30`` from the integer it equals (the document says so)."""
    if _is_number(value) and not -(2**63) <= value <= 2**63 - 1:
        raise RuleError("invalid_value", "numbers beyond 64 bits are not supported")
    return value


def _check_scalar(base: str, op: str, value: Any) -> Any:
    """One comparison operand, normalised (priority lower-cased); RuleError if its type is wrong."""
    if base == "priority":
        if not isinstance(value, str) or value.strip().lower() not in PRIORITY_RANK:
            raise RuleError("invalid_value", f"op {op!r} on priority needs one of {', '.join(PRIORITIES)}, "
                                             f"got {value!r}")
        return value.strip().lower()
    if base == "custom_fields":
        if isinstance(value, str):
            if len(value) > MAX_TEXT:
                raise RuleError("invalid_value", f"value is longer than {MAX_TEXT} characters")
            return value
        if isinstance(value, bool) or _is_number(value):
            return _in_64_bits(value)
        raise RuleError("invalid_value", f"op {op!r} needs a string, number or boolean, got {value!r}")
    if not isinstance(value, str) or not value.strip():
        raise RuleError("invalid_value", f"op {op!r} on {base} needs a non-empty string, got {value!r}")
    if len(value) > MAX_TEXT:
        raise RuleError("invalid_value", f"value is longer than {MAX_TEXT} characters")
    if base == "channel" and value not in CHANNELS:
        raise RuleError("invalid_value", f"unknown channel {value!r}; expected one of {', '.join(CHANNELS)}")
    return value


def check_value(name: str, op: str, value: Any) -> Any:
    """The operand of ``name op value`` in normal form (lists become tuples); RuleError if invalid.

    Assumes ``check_op(name, op)`` passed.
    """
    base, _ = split_field(name)
    if op == "exists":
        if value is None:
            return True
        if not isinstance(value, bool):
            raise RuleError("invalid_value", f"op 'exists' takes true, false or no value, got {value!r}")
        return value
    if value is None:
        raise RuleError("invalid_value", f"op {op!r} needs a value")
    if op in ("in", "not_in"):
        if not isinstance(value, (list, tuple)) or not value:
            raise RuleError("invalid_value", f"op {op!r} needs a non-empty list, got {value!r}")
        if len(value) > MAX_LIST:
            raise RuleError("invalid_value", f"op {op!r} takes at most {MAX_LIST} values")
        if base == "tags":
            return tuple(_check_tag(v) for v in value)
        return tuple(_check_scalar(base, op, v) for v in value)
    if op == "has_tag":
        return _check_tag(value)
    if op in _TEXT:
        if not isinstance(value, str) or not value:
            raise RuleError("invalid_value", f"op {op!r} needs a non-empty string, got {value!r}")
        if len(value) > MAX_TEXT:
            raise RuleError("invalid_value", f"value is longer than {MAX_TEXT} characters")
        return value
    if op in _ORDER:
        if base == "priority":
            return _check_scalar(base, op, value)
        if not _is_number(value):
            raise RuleError("invalid_value", f"op {op!r} needs a number, got {value!r}")
        return _in_64_bits(value)
    return _check_scalar(base, op, value)  # eq / ne


def _check_tag(value: Any) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > 64:
        raise RuleError("invalid_value", f"a tag must be a string of 1-64 characters, got {value!r}")
    return value.strip()


# --------------------------------------------------------------------------- rules


@dataclass(frozen=True, slots=True)
class Condition:
    """``field op value``; validated and normalised at construction."""

    field: str
    op: str
    value: Any = None

    def __post_init__(self) -> None:
        check_op(self.field, self.op)
        object.__setattr__(self, "value", check_value(self.field, self.op, self.value))

    def holds(self, facts: TicketFacts) -> bool:
        """Whether the condition is true of ``facts``."""
        return _holds(self.op, fact_value(facts, self.field), self.value, self.field == "priority")


@dataclass(frozen=True, slots=True)
class Action:
    """What a matching rule does. ``None`` / empty means "leave as is"."""

    set_team: str | None = None
    set_priority: str | None = None
    add_tags: tuple[str, ...] = ()
    remove_tags: tuple[str, ...] = ()
    set_assignee: str | None = None

    def __post_init__(self) -> None:
        if self.set_priority is not None and self.set_priority not in PRIORITY_RANK:
            raise RuleError("invalid_value", f"set_priority must be one of {', '.join(PRIORITIES)}, "
                                             f"got {self.set_priority!r}")
        add = tuple(_check_tag(t) for t in self.add_tags)
        remove = tuple(_check_tag(t) for t in self.remove_tags)
        both = {fold(t) for t in add} & {fold(t) for t in remove}
        if both:
            raise RuleError("invalid_value", f"tags both added and removed: {', '.join(sorted(both))}")
        object.__setattr__(self, "add_tags", add)
        object.__setattr__(self, "remove_tags", remove)


@dataclass(frozen=True, slots=True)
class Rule:
    """Matches when every ``conditions`` entry holds and, if any are given, one ``any_conditions`` entry.

    A rule with no conditions at all matches every ticket (a catch-all at the last position).
    ``stop`` ends evaluation after this rule's actions; a non-stopping rule lets later rules
    refine the result (they see its priority and tags).
    """

    id: Any
    name: str
    position: int
    conditions: tuple[Condition, ...] = ()
    any_conditions: tuple[Condition, ...] = ()
    actions: Action = field(default_factory=Action)
    stop: bool = True
    enabled: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "conditions", tuple(self.conditions))
        object.__setattr__(self, "any_conditions", tuple(self.any_conditions))

    def matches(self, facts: TicketFacts) -> bool:
        """All ``conditions`` hold and (no ``any_conditions`` or at least one holds)."""
        if not all(c.holds(facts) for c in self.conditions):
            return False
        return not self.any_conditions or any(c.holds(facts) for c in self.any_conditions)


@dataclass(frozen=True, slots=True)
class RoutingOutcome:
    """The result of ``evaluate``: ``None`` team / assignee means no rule set one."""

    team_id: str | None
    priority: str
    tags: tuple[str, ...]
    assignee_id: str | None
    matched_rule_ids: tuple[Any, ...]


def fact_value(facts: TicketFacts, name: str) -> Any:
    """The fact a condition on ``name`` looks at (``None`` when absent)."""
    base, key = split_field(name)
    if key is not None:
        return facts.custom_fields.get(key)
    return getattr(facts, base)


def _present(value: Any) -> bool:
    if value is None:
        return False
    if isinstance(value, (str, list, tuple, dict, set, frozenset)):
        return len(value) > 0
    return True


def _elements(value: Any) -> tuple[Any, ...]:
    """Multi-valued facts as their elements, scalars as a 1-tuple, missing as ()."""
    if value is None:
        return ()
    if isinstance(value, (list, tuple, set, frozenset)):
        return tuple(value)
    return (value,)


def _same(fact: Any, operand: Any) -> bool:
    if isinstance(fact, str) and isinstance(operand, str):
        return fold(fact) == fold(operand)
    if isinstance(fact, bool) or isinstance(operand, bool):
        return isinstance(fact, bool) and isinstance(operand, bool) and fact == operand
    if _is_number(fact) and _is_number(operand):
        return fact == operand
    return False


def _number(value: Any) -> float | None:
    """A fact as a number for ordering: numbers, and numeric strings (custom fields stored as text)."""
    if _is_number(value):
        return float(value)
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None


def _ordered(op: str, left: float, right: float) -> bool:
    if op == "gt":
        return left > right
    if op == "gte":
        return left >= right
    if op == "lt":
        return left < right
    return left <= right


def _holds(op: str, fact: Any, operand: Any, is_priority: bool) -> bool:
    """``fact op operand`` with the semantics in the module docstring."""
    if op == "exists":
        return _present(fact) == operand
    if op in _NEGATIVE:
        return not _holds(_NEGATIVE[op], fact, operand, is_priority)
    elements = _elements(fact)
    if op in ("eq", "has_tag"):
        return any(_same(e, operand) for e in elements)
    if op == "in":
        return any(_same(e, o) for e in elements for o in operand)
    if op == "contains":
        needle = fold(operand)
        return any(isinstance(e, str) and needle in fold(e) for e in elements)
    # gt / gte / lt / lte
    if is_priority:
        right = PRIORITY_RANK[operand]
        return any(_ordered(op, PRIORITY_RANK[e], right) for e in elements
                   if isinstance(e, str) and e in PRIORITY_RANK)
    numbers = [n for n in (_number(e) for e in elements) if n is not None]
    return any(_ordered(op, n, float(operand)) for n in numbers)


def apply_action(facts: TicketFacts, action: Action) -> TicketFacts:
    """``facts`` after ``action``'s priority and tag changes (removals first, no duplicate tags)."""
    removed = {fold(t) for t in action.remove_tags}
    tags = [t for t in facts.tags if fold(t) not in removed]
    seen = {fold(t) for t in tags}
    for tag in action.add_tags:
        if fold(tag) not in seen:
            seen.add(fold(tag))
            tags.append(tag)
    priority = action.set_priority or facts.priority
    if priority == facts.priority and tuple(tags) == facts.tags:
        return facts
    return replace_facts(facts, priority=priority, tags=tuple(tags))


def ordered_rules(rules: Iterable[Rule]) -> list[Rule]:
    """Enabled rules in evaluation order: by position; equal positions keep the order given.

    A stable sort rather than an id tie-break because the repository lists rules by
    ``(position, created_at, id)``: ties then run oldest first, exactly as
    ``GET /v1/routing/rules`` shows them.
    """
    return sorted((r for r in rules if r.enabled), key=lambda r: r.position)


def evaluate(rules: Iterable[Rule], facts: TicketFacts) -> RoutingOutcome:
    """Run ``rules`` against ``facts``: matching rules' actions accumulate, ``stop`` ends the run.

    Team and assignee are "last match wins"; priority and tags are applied to the facts
    themselves, so a later rule's conditions see what an earlier rule set.
    """
    team_id: str | None = None
    assignee_id: str | None = None
    matched: list[Any] = []
    for rule in ordered_rules(rules):
        if not rule.matches(facts):
            continue
        matched.append(rule.id)
        facts = apply_action(facts, rule.actions)
        team_id = rule.actions.set_team or team_id
        assignee_id = rule.actions.set_assignee or assignee_id
        if rule.stop:
            break
    return RoutingOutcome(team_id=team_id, priority=facts.priority, tags=tuple(facts.tags),
                          assignee_id=assignee_id, matched_rule_ids=tuple(matched))


# --------------------------------------------------------------------------- API models

Name = OneLine(128)
Tag = Annotated[str, StringConstraints(min_length=1, max_length=64, strip_whitespace=True, pattern=NOT_BLANK)]
Ref = Annotated[str, StringConstraints(min_length=1, max_length=128, strip_whitespace=True, pattern=NOT_BLANK)]
Priority = Literal["low", "normal", "high", "urgent"]


def _api_error(exc: RuleError) -> PydanticCustomError:
    """A pydantic error whose message is ours verbatim (no "Value error, " prefix)."""
    return PydanticCustomError(exc.code, exc.message)


def _operand_schemas(base: str) -> dict[str, Any]:
    """JSON Schemas of what ``check_value`` takes, per op, for a field: the document states the
    table ``FIELD_OPS`` and the operand rules exactly, so a client (or a test generator) can
    tell a valid condition from an invalid one without asking the server."""
    text = {"type": "string", "minLength": 1, "maxLength": MAX_TEXT}
    tag = {"type": "string", "minLength": 1, "maxLength": 64, "pattern": NOT_BLANK}
    number = {"type": "number", "minimum": -(2**63), "maximum": 2**63 - 1}
    if base == "priority":
        scalar: dict[str, Any] = {"type": "string", "enum": list(PRIORITIES)}
    elif base == "custom_fields":
        scalar = {"anyOf": [{"type": "string", "maxLength": MAX_TEXT}, {"type": "boolean"}, number]}
    elif base == "channel":
        scalar = {"type": "string", "enum": sorted(CHANNELS)}
    else:
        scalar = {**text, "pattern": NOT_BLANK}
    operands: dict[str, Any] = {}
    for op in sorted(FIELD_OPS[base]):
        if op == "exists":
            operands[op] = {"type": ["boolean", "null"]}
        elif op in ("in", "not_in"):
            operands[op] = {"type": "array", "minItems": 1, "maxItems": MAX_LIST,
                            "items": tag if base == "tags" else scalar}
        elif op == "has_tag":
            operands[op] = tag
        elif op in _TEXT:
            operands[op] = text
        elif op in _ORDER:
            operands[op] = scalar if base == "priority" else number
        else:
            operands[op] = scalar
    return operands


def _condition_schema(schema: dict[str, Any]) -> None:
    """``ConditionIn``'s document: one alternative per field and op (``FIELD_OPS``)."""
    variants = []
    for base in FIELD_OPS:
        field_schema = ({"type": "string", "pattern": r"^custom_fields\.[\s\S]{1,%d}$" % MAX_KEY}
                        if base == "custom_fields" else {"const": base})
        for op, operand in _operand_schemas(base).items():
            variants.append({"properties": {"field": field_schema, "op": {"const": op}, "value": operand},
                             "required": ["field", "op"] + ([] if op == "exists" else ["value"])})
    schema["properties"] = {"field": {"type": "string", "description": f"one of {', '.join(FIELDS)}"},
                            "op": {"type": "string", "enum": sorted(OPS)},
                            "value": {"description": "the operand: its type depends on field and op"}}
    schema["required"] = ["field", "op"]
    schema["anyOf"] = variants


class ConditionIn(StrictModel):
    """One condition as sent to the API; errors point at ``field``, ``op`` or ``value``."""

    model_config = ConfigDict(json_schema_extra=_condition_schema)

    field: Annotated[str, StringConstraints(min_length=1, max_length=MAX_KEY + len(CUSTOM_PREFIX))]
    op: str
    value: Any = Field(default=None, validate_default=True)

    @field_validator("field")
    @classmethod
    def _known_field(cls, name: str) -> str:
        try:
            split_field(name)
        except RuleError as exc:
            raise _api_error(exc) from None
        return name

    @field_validator("op")
    @classmethod
    def _allowed_op(cls, op: str, info: ValidationInfo) -> str:
        name = info.data.get("field")
        try:
            if name is None:  # the field itself was invalid: only say whether the op exists
                if op not in OPS:
                    raise RuleError("unknown_op", f"unknown op {op!r}; expected one of {', '.join(sorted(OPS))}")
            else:
                check_op(name, op)
        except RuleError as exc:
            raise _api_error(exc) from None
        return op

    @field_validator("value")
    @classmethod
    def _typed_value(cls, value: Any, info: ValidationInfo) -> Any:
        name, op = info.data.get("field"), info.data.get("op")
        if name is None or op is None:
            return value  # already reported on field / op
        try:
            normal = check_value(name, op, value)
        except RuleError as exc:
            raise _api_error(exc) from None
        return list(normal) if isinstance(normal, tuple) else normal

    def to_condition(self) -> Condition:
        return Condition(self.field, self.op, self.value)


class ActionIn(StrictModel):
    """A rule's actions as sent to the API."""

    set_team: Ref | None = None
    set_priority: Priority | None = None
    add_tags: Annotated[list[Tag], Field(max_length=50)] = Field(default_factory=list)
    remove_tags: Annotated[list[Tag], Field(max_length=50)] = Field(default_factory=list)
    set_assignee: Ref | None = None

    @model_validator(mode="after")
    def _no_contradiction(self) -> ActionIn:
        both = {fold(t) for t in self.add_tags} & {fold(t) for t in self.remove_tags}
        if both:
            raise PydanticCustomError("invalid_value", "tags both added and removed: {tags}",
                                      {"tags": ", ".join(sorted(both))})
        return self

    def to_action(self) -> Action:
        return Action(set_team=self.set_team, set_priority=self.set_priority, add_tags=tuple(self.add_tags),
                      remove_tags=tuple(self.remove_tags), set_assignee=self.set_assignee)


class RuleIn(StrictModel):
    """``POST /v1/routing/rules`` and ``PUT /v1/routing/rules/{id}`` body."""

    name: Name
    position: Annotated[int, Field(ge=0, le=1_000_000)] = 0
    conditions: Annotated[list[ConditionIn], Field(max_length=50)] = Field(default_factory=list)
    any_conditions: Annotated[list[ConditionIn], Field(max_length=50)] = Field(default_factory=list)
    actions: ActionIn = Field(default_factory=ActionIn)
    stop: bool = True
    enabled: bool = True

    def to_rule(self, *, rule_id: Any, enabled: bool | None = None) -> Rule:
        """The evaluable rule; ``enabled`` overrides the body's flag (the stored column wins)."""
        return Rule(
            id=rule_id, name=self.name, position=self.position,
            conditions=tuple(c.to_condition() for c in self.conditions),
            any_conditions=tuple(c.to_condition() for c in self.any_conditions),
            actions=self.actions.to_action(), stop=self.stop,
            enabled=self.enabled if enabled is None else enabled,
        )

