"""Process definitions: the steps a ticket of one type goes through, as models and pure checks.

A definition is an ordered list of steps. Each step has a ``key`` (it becomes sla-svc's metric
``step:<key>``, hence the narrow pattern), a ``name``, a ``kind`` with that kind's settings, an
optional ``when`` (the step runs only when it holds) and an optional ``target_minutes``.

Why two layers of checks:

* what JSON Schema can state (types, bounds, patterns, which settings a kind takes) is stated by
  the pydantic models, so the API document is exact and a schema-valid request is never refused
  for it; unknown settings are errors (``StrictModel``), so a typo is not silently ignored;
* rules across values (unique keys, ``return_to`` naming an earlier step, ``n`` against the
  number of approvers, ...) are ``definition_errors``: one pure function over the parsed models
  that returns every failure with the path of the field it concerns (``loc``, in pydantic's own
  form), coded ``cross_field`` as every other rule across values of this API.

``when`` is routing's condition language, reused as is (``routing.rules.ConditionIn`` for the
API, ``routing.rules.Rule.matches`` for evaluation): the same fields, ops and comparison
semantics, the same 422 for a bad condition, so an admin learns one language.

Stored versions are ``ProcessIn.model_dump(mode="json")`` (defaults written out) and read back
with ``parse_steps``; a stored version is never re-checked by ``definition_errors``: it was
valid when saved, and versions are immutable.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union

from pydantic import Discriminator, Field, StringConstraints, Tag, TypeAdapter, field_validator

from helpdesk_common.text import OneLine
from helpdesk_common.validation import NOT_BLANK, StrictModel

from ..routing.rules import ConditionIn, Rule, TicketFacts

#: a step key: it becomes sla-svc's metric ``step:<key>``
KEY_PATTERN = r"^[a-z][a-z0-9_]{0,62}$"
MAX_STEPS = 50
MAX_CONDITIONS = 50
MAX_USERS = 100
MAX_TEAMS = 20
MAX_PARTIES = 20
MAX_N = MAX_USERS
#: one year: longer than any approval, confirmation or step target we know of, and far from overflow
MAX_MINUTES = 366 * 24 * 60

StepKey = Annotated[str, StringConstraints(pattern=KEY_PATTERN)]
StepName = OneLine(128)
UserRef = Annotated[str, StringConstraints(min_length=1, max_length=128, strip_whitespace=True, pattern=NOT_BLANK)]
Role = Literal["admin", "supervisor", "agent"]
Minutes = Annotated[int, Field(ge=1, le=MAX_MINUTES)]

CROSS_FIELD = "cross_field"
NOT_FOUND = "not_found"


def _unique(values: list[Any]) -> list[Any]:
    """Order-preserving de-duplication: naming an approver twice means naming them once."""
    return list(dict.fromkeys(values))


# --------------------------------------------------------------------------- conditions


class When(StrictModel):
    """Routing's condition language: every ``conditions`` entry holds and, when any are given,
    at least one ``any_conditions`` entry. Nothing given: the step always runs."""

    conditions: Annotated[list[ConditionIn], Field(max_length=MAX_CONDITIONS)] = Field(default_factory=list)
    any_conditions: Annotated[list[ConditionIn], Field(max_length=MAX_CONDITIONS)] = Field(default_factory=list)

    def to_rule(self) -> Rule:
        """The evaluable form: a routing rule without actions, so matching is routing's own code."""
        return Rule(id=None, name="when", position=0,
                    conditions=tuple(c.to_condition() for c in self.conditions),
                    any_conditions=tuple(c.to_condition() for c in self.any_conditions))

    def holds(self, facts: TicketFacts) -> bool:
        return self.to_rule().matches(facts)


# --------------------------------------------------------------------------- who decides


class Approvers(StrictModel):
    """Who may decide an approval: named users, members of teams, holders of roles (any mix).

    Team ids are checked to exist when the definition is saved; user ids are not (they are the
    gateway's, and ticket-svc's copy of them may lag behind a user just created)."""

    users: Annotated[list[UserRef], Field(max_length=MAX_USERS)] = Field(default_factory=list)
    teams: Annotated[list[uuid.UUID], Field(max_length=MAX_TEAMS)] = Field(default_factory=list)
    roles: Annotated[list[Role], Field(max_length=3)] = Field(default_factory=list)

    _dedupe = field_validator("users", "teams", "roles")(_unique)

    @property
    def users_only(self) -> bool:
        """Only named users: the approver count is known when the definition is saved."""
        return not self.teams and not self.roles

    @property
    def empty(self) -> bool:
        return not (self.users or self.teams or self.roles)


class UserParty(StrictModel):
    """A countersigning party that is one user."""

    user: UserRef


class TeamParty(StrictModel):
    """A party that is a team: any one member signs for it."""

    team: uuid.UUID


class RoleParty(StrictModel):
    """A party that is a role: any one holder of the role signs for it."""

    role: Role


Party = Union[UserParty, TeamParty, RoleParty]


def party_ref(party: Party) -> str:
    """``user:<id>``, ``team:<uuid>`` or ``role:<name>``: a party's identity, for comparisons."""
    if isinstance(party, UserParty):
        return f"user:{party.user}"
    if isinstance(party, TeamParty):
        return f"team:{party.team}"
    return f"role:{party.role}"


class ReturnTo(StrictModel):
    """A rejection sends the ticket back to an earlier step (its ``key``)."""

    return_to: StepKey


#: what a rejection does: close the ticket, go on with the process flagged, or return to an earlier step
OnReject = Literal["close", "continue_flagged"] | ReturnTo


# --------------------------------------------------------------------------- steps


class StepDefBase(StrictModel):
    key: StepKey
    name: StepName
    #: the step runs only when this holds of the ticket; absent: always
    when: When | None = None
    #: sla-svc times the step against this target (metric ``step:<key>``); absent: not timed
    target_minutes: Minutes | None = None


class ApprovalStepDef(StepDefBase):
    """Approvers decide approve/reject; ``rule`` says when the step is approved."""

    kind: Literal["approval"]
    approvers: Approvers
    #: ``all`` approvers, ``any`` one, or ``n`` of them (``n_of_m``)
    rule: Literal["all", "any", "n_of_m"]
    #: with ``n_of_m`` only: how many approvals approve the step
    n: Annotated[int, Field(ge=1, le=MAX_N)] | None = None
    #: what a rejection does: close the ticket, go on with the process flagged, or return to an earlier step
    on_reject: OnReject = "close"
    #: how long the approvers have; absent: no expiry
    expires_after_minutes: Minutes | None = None


class CountersignStepDef(StepDefBase):
    """Every party signs, one after the other in the listed order, or in any order."""

    kind: Literal["countersign"]
    parties: Annotated[list[Party], Field(min_length=1, max_length=MAX_PARTIES)]
    order: Literal["sequential", "parallel"] = "sequential"
    #: what a party's refusal to sign does (as an approval's rejection)
    on_reject: OnReject = "close"


class CustomerConfirmationStepDef(StepDefBase):
    """The customer confirms the resolution (by reply or signed link) within ``timeout_minutes``."""

    kind: Literal["customer_confirmation"]
    timeout_minutes: Minutes
    #: no answer in time: close the ticket, or reopen it to the previous step
    on_timeout: Literal["close", "reopen"] = "close"
    via: Literal["reply_or_link"] = "reply_or_link"


class TaskStepDef(StepDefBase):
    """Plain work by the assigned agent, completed explicitly."""

    kind: Literal["task"]




def _kind_of(value: Any) -> str | None:
    """The tag of a step: ``kind`` (a callable rather than ``discriminator="kind"``, which
    pydantic refuses on a field with StrictModel's before-validator; a non-text kind has none)."""
    kind = value.get("kind") if isinstance(value, dict) else getattr(value, "kind", None)
    return kind if isinstance(kind, str) else None


StepDef = Annotated[Union[Annotated[ApprovalStepDef, Tag("approval")], Annotated[CountersignStepDef, Tag("countersign")],
                          Annotated[CustomerConfirmationStepDef, Tag("customer_confirmation")],
                          Annotated[TaskStepDef, Tag("task")]],
                    Discriminator(_kind_of)]
KINDS: tuple[str, ...] = ("approval", "countersign", "customer_confirmation", "task")


class ProcessIn(StrictModel):
    """``PUT /v1/processes/{ticket_type}``: the whole ordered list of steps (a new version)."""

    steps: Annotated[list[StepDef], Field(min_length=1, max_length=MAX_STEPS)]


_STEPS: TypeAdapter[list[StepDef]] = TypeAdapter(list[StepDef])


def parse_steps(raw: Any) -> list[StepDef]:
    """The steps of a stored version (``steps`` jsonb) as models."""
    return _STEPS.validate_python(raw)


def dump_steps(steps: Sequence[StepDef]) -> list[dict[str, Any]]:
    """What is stored: every setting written out, defaults included, so a version reads the same
    whatever later code takes as a default."""
    return _STEPS.dump_python(list(steps), mode="json")


# --------------------------------------------------------------------------- rules across values


@dataclass(frozen=True, slots=True)
class DefinitionError:
    """One failing rule: ``loc`` is the field's path inside the body, as pydantic writes it."""

    loc: tuple[str | int, ...]
    message: str
    code: str = CROSS_FIELD

    def as_pydantic(self, prefix: tuple[str, ...] = ("body",)) -> dict[str, Any]:
        """The error in the shape of ``RequestValidationError.errors()`` entries."""
        return {"loc": (*prefix, *self.loc), "msg": self.message, "type": self.code}


def _at(index: int, step: StepDef, *fields: str | int) -> tuple[str | int, ...]:
    return ("steps", index, step.kind, *fields)


def _key_errors(steps: Sequence[StepDef]) -> Iterable[DefinitionError]:
    first: dict[str, int] = {}
    for index, step in enumerate(steps):
        if step.key in first:
            yield DefinitionError(_at(index, step, "key"),
                                  f"step keys must be unique: {step.key!r} is also step {first[step.key]}")
        else:
            first[step.key] = index


def _approval_errors(index: int, step: ApprovalStepDef, positions: Mapping[str, int]) -> Iterable[DefinitionError]:
    if step.approvers.empty:
        yield DefinitionError(_at(index, step, "approvers"), "name at least one approver: a user, a team or a role")
    if step.rule == "n_of_m":
        if step.n is None:
            yield DefinitionError(_at(index, step, "n"), "n is required with rule n_of_m")
        elif step.approvers.users_only and step.n > len(step.approvers.users):
            yield DefinitionError(_at(index, step, "n"), f"n must be between 1 and the number of approvers "
                                                         f"({len(step.approvers.users)})")
    elif step.n is not None:
        yield DefinitionError(_at(index, step, "n"), f"n applies to rule n_of_m only, not {step.rule!r}")
    yield from _return_to_errors(index, step, positions)


def _return_to_errors(index: int, step: ApprovalStepDef | CountersignStepDef,
                      positions: Mapping[str, int]) -> Iterable[DefinitionError]:
    if isinstance(step.on_reject, ReturnTo):
        target = step.on_reject.return_to
        where = _at(index, step, "on_reject", "return_to")
        if target not in positions:
            yield DefinitionError(where, f"return_to names no step of this process: {target!r}")
        elif positions[target] >= index:
            yield DefinitionError(where, f"return_to must name an earlier step; {target!r} is step "
                                         f"{positions[target]}, this is step {index}")


def _countersign_errors(index: int, step: CountersignStepDef,
                        positions: Mapping[str, int]) -> Iterable[DefinitionError]:
    yield from _return_to_errors(index, step, positions)
    seen: set[str] = set()
    for number, party in enumerate(step.parties):
        ref = party_ref(party)
        if ref in seen:
            yield DefinitionError(_at(index, step, "parties", number), f"party {ref} is listed twice")
        seen.add(ref)


def definition_errors(process: ProcessIn) -> list[DefinitionError]:
    """Every rule across values the definition breaks (empty: it may be saved)."""
    steps = process.steps
    errors = list(_key_errors(steps))
    positions: dict[str, int] = {}
    for index, step in enumerate(steps):
        positions.setdefault(step.key, index)
    for index, step in enumerate(steps):
        if isinstance(step, ApprovalStepDef):
            errors.extend(_approval_errors(index, step, positions))
        elif isinstance(step, CountersignStepDef):
            errors.extend(_countersign_errors(index, step, positions))
    return errors


def referenced_teams(steps: Sequence[StepDef]) -> list[tuple[tuple[str | int, ...], uuid.UUID]]:
    """``(loc, team id)`` of every team the definition names, for the existence check at save."""
    found: list[tuple[tuple[str | int, ...], uuid.UUID]] = []
    for index, step in enumerate(steps):
        if isinstance(step, ApprovalStepDef):
            found.extend((_at(index, step, "approvers", "teams", i), team)
                         for i, team in enumerate(step.approvers.teams))
        elif isinstance(step, CountersignStepDef):
            found.extend((_at(index, step, "parties", i, "team"), party.team)
                         for i, party in enumerate(step.parties) if isinstance(party, TeamParty))
    return found


# --------------------------------------------------------------------------- reading a definition


def applies(step: StepDef, facts: TicketFacts) -> bool:
    """Whether ``step`` runs for a ticket with ``facts`` (a step without ``when`` always does)."""
    return step.when is None or step.when.holds(facts)


def step_by_key(steps: Sequence[StepDef], key: str) -> tuple[int, StepDef] | None:
    """``(position, step)`` of the step named ``key``, or None."""
    for index, step in enumerate(steps):
        if step.key == key:
            return index, step
    return None



def follow_up_text(on_reject: Any) -> str:
    """A rejection's follow-up in the step machine's spelling (``machine.FollowUp.parse``):
    ``close``, ``continue_flagged`` or ``return_to:<key>``."""
    return f"return_to:{on_reject.return_to}" if isinstance(on_reject, ReturnTo) else str(on_reject)
