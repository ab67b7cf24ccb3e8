"""The step machine of a running process: who may decide what, and when a step is over.

Everything here is pure (frozen dataclasses in, frozen dataclasses out, no clock, no I/O), so
the decision endpoint can run it inside the transaction that holds the step's row lock, and two
replicas given the same stored state and the same decision reach the same answer. The caller
does the rest: it resolves approvers named as a team or a role to user ids, evaluates skip
conditions with routing's condition language, reads the clock, stores the new state and emits
the events. docs/workflow.md ("Step machine") is the reference, with worked examples.

Two functions carry the logic:

* ``decide(step, state, actor=, decision=, at=)`` takes one decision on the current step and
  answers ``Accepted`` (the new state and its outcome) or ``Refused`` (a reason code, nothing
  changed). ``expire(step, state, at=)`` is the same for the clock: an approval's expiry or a
  customer confirmation's timeout.
* ``advance(steps, current_index, outcome, skipped)`` turns a finished step's outcome into
  where the process goes next: another step (``Goto``), the end (``Finished``), a closed
  ticket (``Closed``) or a reopened ticket with no step left to return to (``Reopened``).

Why the approval rules are one rule: ``all`` needs every approver, ``any`` needs one and
``n_of_m`` needs n, so each is "n approvals out of m" with n = m, 1 or n. A step is approved as
soon as n approvers approved, and rejected as soon as n can no longer be reached (approvals so
far plus approvers still undecided < n), never later: a rejection that makes approval
impossible ends the step at once instead of waiting for the others. If every approver votes,
the outcome therefore does not depend on the order of the votes.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

StepKind = Literal["approval", "countersign", "customer_confirmation", "task"]
ApprovalRule = Literal["all", "any", "n_of_m"]
CountersignOrder = Literal["sequential", "parallel"]
ConfirmationTimeout = Literal["close", "reopen"]

#: the decisions each kind of step understands; anything else is ``wrong_decision_for_kind``
DECISIONS: dict[str, frozenset[str]] = {
    "approval": frozenset({"approve", "reject"}),
    "countersign": frozenset({"sign", "reject"}),
    "customer_confirmation": frozenset({"confirm", "reject", "reply"}),
    "task": frozenset({"complete"}),
}

#: what a completed step of each kind achieved (``Outcome.result``)
RESULTS: dict[str, str] = {
    "approval": "approved",
    "countersign": "signed",
    "customer_confirmation": "confirmed",
    "task": "done",
}

RefusalReason = Literal[
    "step_finished",
    "expired",
    "wrong_decision_for_kind",
    "not_an_approver",
    "already_decided",
    "out_of_turn",
    "not_due",
]

#: one sentence per refusal, for problem details; the code is the contract, the text may change
REFUSAL_MESSAGES: dict[str, str] = {
    "step_finished": "this step is already finished and takes no more decisions",
    "expired": "this step's time ran out before the decision arrived",
    "wrong_decision_for_kind": "this kind of step does not take that decision",
    "not_an_approver": "this actor is not one of those who may decide on this step",
    "already_decided": "this actor has already decided on this step",
    "out_of_turn": "the parties countersign in order and it is another party's turn",
    "not_due": "this step has no deadline or its deadline has not come yet",
}


class InvalidStep(ValueError):
    """A step that can never finish (no approvers, n beyond the approvers, duplicate parties...).

    Raised when the step is built, i.e. when the caller resolves a definition for a running
    ticket, because a team that shrank can turn a valid definition into an impossible step.
    """


# --------------------------------------------------------------------------- follow-ups


@dataclass(frozen=True)
class FollowUp:
    """What a rejection, an expiry or a timeout does to the process.

    ``close`` ends the process and closes the ticket; ``return_to`` goes back to the step
    ``step_key``; ``continue_flagged`` goes on to the next step with the process flagged;
    ``reopen`` (customer confirmation) reopens the ticket at the step before this one.
    """

    action: Literal["close", "return_to", "continue_flagged", "reopen"]
    step_key: str | None = None

    def __post_init__(self) -> None:
        if (self.action == "return_to") != (self.step_key is not None):
            raise InvalidStep("a step key goes with return_to and only with return_to")

    @classmethod
    def parse(cls, text: str) -> FollowUp:
        """Read the definition's spelling: ``close``, ``continue_flagged``, ``reopen`` or ``return_to:<key>``."""
        action, sep, key = text.partition(":")
        if action == "return_to" and sep and key:
            return cls("return_to", key)
        if not sep and action in ("close", "continue_flagged", "reopen"):
            return cls(action)  # type: ignore[arg-type]
        raise InvalidStep(f"unknown follow-up {text!r}")

    def __str__(self) -> str:
        return f"return_to:{self.step_key}" if self.action == "return_to" else self.action


CLOSE = FollowUp("close")
CONTINUE_FLAGGED = FollowUp("continue_flagged")
REOPEN = FollowUp("reopen")


# --------------------------------------------------------------------------- step specs


@dataclass(frozen=True)
class ApprovalStep:
    """``approvers`` are user ids, resolved by the caller from users, a team or a role."""

    key: str
    approvers: frozenset[str]
    rule: ApprovalRule = "all"
    n: int | None = None
    on_reject: FollowUp = CLOSE
    expires_after: timedelta | None = None
    kind: Literal["approval"] = field(default="approval", init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "approvers", frozenset(self.approvers))
        if not self.approvers:
            raise InvalidStep(f"approval step {self.key!r} has no approvers")
        if self.rule == "n_of_m":
            if self.n is None or not 1 <= self.n <= len(self.approvers):
                raise InvalidStep(f"approval step {self.key!r}: n must be between 1 and the {len(self.approvers)} approvers")
        elif self.rule in ("all", "any"):
            if self.n is not None:
                raise InvalidStep(f"approval step {self.key!r}: n goes with the rule n_of_m only")
        else:
            raise InvalidStep(f"approval step {self.key!r}: unknown rule {self.rule!r}")
        if self.on_reject == REOPEN:
            raise InvalidStep(f"approval step {self.key!r}: reopen is a customer confirmation's follow-up")
        _check_duration(self.key, "expires_after", self.expires_after)

    @property
    def required(self) -> int:
        """How many approvals complete the step."""
        if self.rule == "all":
            return len(self.approvers)
        if self.rule == "any":
            return 1
        return self.n  # type: ignore[return-value]  # checked in __post_init__


@dataclass(frozen=True)
class CountersignStep:
    """Every party signs; ``sequential`` in the listed order, ``parallel`` in any order.

    A party is the set of user ids who may sign for it: one user, or the members of a team or
    the holders of a role (resolved by the caller), any one of whom signs for the whole party.
    A plain string is taken as a one-user party. A party may refuse to sign (``reject``), which
    ends the step with ``on_reject``.

    One decision per user, as everywhere: a user who belongs to two parties signs for the first
    of them still unsigned (in ``sequential``, the party whose turn it is), and a second party
    of theirs needs another of its members.
    """

    key: str
    parties: tuple[frozenset[str], ...]
    order: CountersignOrder = "sequential"
    on_reject: FollowUp = CLOSE
    kind: Literal["countersign"] = field(default="countersign", init=False)

    def __post_init__(self) -> None:
        parties = tuple(frozenset({p}) if isinstance(p, str) else frozenset(p) for p in self.parties)
        object.__setattr__(self, "parties", parties)
        if not parties:
            raise InvalidStep(f"countersign step {self.key!r} has no parties")
        if not all(parties):
            raise InvalidStep(f"countersign step {self.key!r} has a party with nobody to sign for it")
        if self.order not in ("sequential", "parallel"):
            raise InvalidStep(f"countersign step {self.key!r}: unknown order {self.order!r}")
        if self.on_reject == REOPEN:
            raise InvalidStep(f"countersign step {self.key!r}: reopen is a customer confirmation's follow-up")


@dataclass(frozen=True)
class CustomerConfirmationStep:
    """The customer confirms (ticket closes), rejects or replies (reopened), or never answers.

    ``customers``: who may answer, when the caller knows (``None``: the caller has already
    authenticated the answer, e.g. by a signed link or the e-mail thread).
    """

    key: str
    timeout: timedelta
    on_timeout: ConfirmationTimeout = "close"
    customers: frozenset[str] | None = None
    kind: Literal["customer_confirmation"] = field(default="customer_confirmation", init=False)

    def __post_init__(self) -> None:
        if self.customers is not None:
            object.__setattr__(self, "customers", frozenset(self.customers))
        if self.on_timeout not in ("close", "reopen"):
            raise InvalidStep(f"customer confirmation step {self.key!r}: unknown on_timeout {self.on_timeout!r}")
        if self.timeout is None:
            raise InvalidStep(f"customer confirmation step {self.key!r} needs a timeout")
        _check_duration(self.key, "timeout", self.timeout)


@dataclass(frozen=True)
class TaskStep:
    """Plain work, completed explicitly; ``assignees`` as for ``CustomerConfirmationStep.customers``."""

    key: str
    assignees: frozenset[str] | None = None
    kind: Literal["task"] = field(default="task", init=False)

    def __post_init__(self) -> None:
        if self.assignees is not None:
            object.__setattr__(self, "assignees", frozenset(self.assignees))


Step = ApprovalStep | CountersignStep | CustomerConfirmationStep | TaskStep


def _check_duration(key: str, name: str, value: timedelta | None) -> None:
    if value is not None and value <= timedelta(0):
        raise InvalidStep(f"step {key!r}: {name} must be positive")


# --------------------------------------------------------------------------- state


@dataclass(frozen=True)
class DecisionRecord:
    """One accepted decision. Refused ones are never recorded here (the caller audits them)."""

    actor: str
    decision: str
    at: datetime
    #: countersign: the index of the party the actor signed (or refused) for; otherwise None
    party: int | None = None


@dataclass(frozen=True)
class Outcome:
    """Where a step stands.

    ``status``: ``pending``; ``completed`` with ``result`` approved / signed / confirmed / done;
    ``rejected`` (an approver, a party or the customer said no) or ``expired`` (an approval's
    expiry or a confirmation's timeout), both with the ``follow_up`` the definition gives.
    """

    status: Literal["pending", "completed", "rejected", "expired"]
    result: str | None = None
    follow_up: FollowUp | None = None

    @property
    def finished(self) -> bool:
        return self.status != "pending"

    @property
    def flagged(self) -> bool:
        """The process goes on, but marked: a rejection with ``continue_flagged``."""
        return self.follow_up == CONTINUE_FLAGGED


PENDING = Outcome("pending")


@dataclass(frozen=True)
class StepState:
    """A step's stored state: when it started, the accepted decisions in order, where it stands."""

    started_at: datetime
    decisions: tuple[DecisionRecord, ...] = ()
    outcome: Outcome = PENDING
    finished_at: datetime | None = None

    @classmethod
    def start(cls, at: datetime) -> StepState:
        _check_aware(at)
        return cls(started_at=at)


@dataclass(frozen=True)
class Accepted:
    state: StepState

    @property
    def outcome(self) -> Outcome:
        return self.state.outcome


@dataclass(frozen=True)
class Refused:
    reason: RefusalReason

    @property
    def message(self) -> str:
        return REFUSAL_MESSAGES[self.reason]


def _check_aware(at: datetime) -> None:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("instants must be timezone-aware")


def state_to_json(state: StepState) -> dict[str, Any]:
    """The state as JSON-ready values (a jsonb column), instants in RFC 3339 with offset."""
    outcome = state.outcome
    return {
        "started_at": state.started_at.isoformat(),
        "decisions": [{"actor": d.actor, "decision": d.decision, "at": d.at.isoformat(), "party": d.party}
                      for d in state.decisions],
        "outcome": {"status": outcome.status, "result": outcome.result,
                    "follow_up": None if outcome.follow_up is None else str(outcome.follow_up)},
        "finished_at": None if state.finished_at is None else state.finished_at.isoformat(),
    }


def state_from_json(data: Mapping[str, Any]) -> StepState:
    """The inverse of ``state_to_json``; what this module wrote, so a bad value is an error."""
    outcome = data["outcome"]
    follow_up = outcome.get("follow_up")
    return StepState(
        started_at=datetime.fromisoformat(data["started_at"]),
        decisions=tuple(DecisionRecord(actor=d["actor"], decision=d["decision"], at=datetime.fromisoformat(d["at"]),
                                       party=d.get("party"))
                        for d in data["decisions"]),
        outcome=Outcome(outcome["status"], outcome.get("result"),
                        None if follow_up is None else FollowUp.parse(follow_up)),
        finished_at=None if data.get("finished_at") is None else datetime.fromisoformat(data["finished_at"]),
    )


# --------------------------------------------------------------------------- deciding


def deadline(step: Step, state: StepState) -> datetime | None:
    """When the step runs out of time (approval expiry, confirmation timeout), if it can."""
    if isinstance(step, ApprovalStep) and step.expires_after is not None:
        return state.started_at + step.expires_after
    if isinstance(step, CustomerConfirmationStep):
        return state.started_at + step.timeout
    return None


def is_due(step: Step, state: StepState, at: datetime) -> bool:
    """True when ``expire`` would finish the step at ``at``; the deadline itself is already late."""
    due = deadline(step, state)
    return not state.outcome.finished and due is not None and at >= due


def may_decide(step: Step, actor: str) -> bool:
    """Whether ``actor`` is one of those who may decide on ``step`` at all (approval queues)."""
    if isinstance(step, ApprovalStep):
        return actor in step.approvers
    if isinstance(step, CountersignStep):
        return any(actor in party for party in step.parties)
    allowed = step.customers if isinstance(step, CustomerConfirmationStep) else step.assignees
    return allowed is None or actor in allowed


def signed_parties(decisions: Sequence[DecisionRecord]) -> frozenset[int]:
    """The indices of the countersign parties that have signed."""
    return frozenset(d.party for d in decisions if d.decision == "sign" and d.party is not None)


def next_party(step: CountersignStep, decisions: Sequence[DecisionRecord]) -> int | None:
    """Whose turn it is on a sequential countersign: the index of the first unsigned party."""
    signed = signed_parties(decisions)
    return next((i for i in range(len(step.parties)) if i not in signed), None)


def _party_for(step: CountersignStep, state: StepState, actor: str) -> int | RefusalReason:
    """The party ``actor`` would sign for now, or why they cannot."""
    signed = signed_parties(state.decisions)
    open_parties = [i for i, party in enumerate(step.parties) if actor in party and i not in signed]
    if not open_parties:
        return "already_decided"  # each party of theirs has signed, through a colleague
    if step.order == "parallel":
        return open_parties[0]
    turn = next_party(step, state.decisions)
    return turn if turn in open_parties else "out_of_turn"


def evaluate(step: Step, decisions: Sequence[DecisionRecord]) -> Outcome:
    """The outcome that accepted ``decisions`` lead to (the clock plays no part here)."""
    if isinstance(step, ApprovalStep):
        approvals = sum(d.decision == "approve" for d in decisions)
        undecided = len(step.approvers) - len({d.actor for d in decisions})
        if approvals >= step.required:
            return Outcome("completed", RESULTS["approval"])
        if approvals + undecided < step.required:
            return Outcome("rejected", follow_up=step.on_reject)
        return PENDING
    if isinstance(step, CountersignStep):
        if any(d.decision == "reject" for d in decisions):
            return Outcome("rejected", follow_up=step.on_reject)
        if len(signed_parties(decisions)) == len(step.parties):
            return Outcome("completed", RESULTS["countersign"])
        return PENDING
    if isinstance(step, CustomerConfirmationStep):
        if not decisions:
            return PENDING
        if decisions[0].decision == "confirm":
            return Outcome("completed", RESULTS["customer_confirmation"])
        return Outcome("rejected", follow_up=REOPEN)
    return Outcome("completed", RESULTS["task"]) if decisions else PENDING


def decide(step: Step, state: StepState, *, actor: str, decision: str, at: datetime) -> Accepted | Refused:
    """Take one decision, or refuse it with the first reason that applies.

    The checks run in a fixed order, so one request always gets the same code: a finished
    step, then the clock, then the decision's kind, then who is deciding. Time is checked
    against the step's deadline, not against whether ``expire`` has run yet, so an answer
    that arrives after the deadline is refused even when the timer has not fired.
    """
    _check_aware(at)
    if state.outcome.finished:
        return Refused("step_finished")
    if is_due(step, state, at):
        return Refused("expired")
    if decision not in DECISIONS[step.kind]:
        return Refused("wrong_decision_for_kind")
    if not may_decide(step, actor):
        return Refused("not_an_approver")
    if any(d.actor == actor for d in state.decisions):
        return Refused("already_decided")
    party = None
    if isinstance(step, CountersignStep):
        found = _party_for(step, state, actor)
        if isinstance(found, str):
            return Refused(found)
        party = found
    decisions = (*state.decisions, DecisionRecord(actor=actor, decision=decision, at=at, party=party))
    outcome = evaluate(step, decisions)
    return Accepted(replace(state, decisions=decisions, outcome=outcome,
                            finished_at=at if outcome.finished else None))


def expire(step: Step, state: StepState, *, at: datetime) -> Accepted | Refused:
    """Finish a step whose time ran out: ``expired`` with its follow-up.

    An approval that expires follows its ``on_reject`` (nobody approved in time, which is a
    no); a customer confirmation follows ``on_timeout`` (``close`` or ``reopen``).
    """
    _check_aware(at)
    if state.outcome.finished:
        return Refused("step_finished")
    if not is_due(step, state, at):
        return Refused("not_due")
    if isinstance(step, ApprovalStep):
        follow_up = step.on_reject
    else:
        assert isinstance(step, CustomerConfirmationStep)  # only these two have a deadline
        follow_up = CLOSE if step.on_timeout == "close" else REOPEN
    return Accepted(replace(state, outcome=Outcome("expired", follow_up=follow_up), finished_at=at))


# --------------------------------------------------------------------------- advancing


class StepRef(Protocol):
    """What ``advance`` needs of a step: its key and kind (a ``Step`` or a definition's model)."""

    @property
    def key(self) -> str: ...

    @property
    def kind(self) -> str: ...


@dataclass(frozen=True)
class Goto:
    """Run the step at ``index`` next (a fresh ``StepState``)."""

    index: int


@dataclass(frozen=True)
class Finished:
    """Every step is done or skipped: the process is over and the ticket goes on as it is."""


@dataclass(frozen=True)
class Closed:
    """The process is over and the ticket closes: ``confirmed``, ``rejected`` or ``expired``."""

    reason: Literal["confirmed", "rejected", "expired"]


@dataclass(frozen=True)
class Reopened:
    """A customer reopened the ticket and no earlier step is left to return to."""


Next = Goto | Finished | Closed | Reopened


def start(steps: Sequence[StepRef], skipped: Collection[str] = frozenset()) -> Goto | Finished:
    """The first step that is not skipped, or ``Finished`` when every step is."""
    _check_keys(steps)
    return _first_from(steps, 0, skipped)


def advance(steps: Sequence[StepRef], current_index: int, outcome: Outcome,
            skipped: Collection[str] = frozenset()) -> Next:
    """Where the process goes after the step at ``current_index`` finished with ``outcome``.

    ``skipped`` holds the keys of steps whose skip condition holds now (the caller evaluates
    them on the ticket as it is at this moment). A skipped step is never the answer: going
    forward passes over it, ``return_to`` a skipped step lands on the first step after it that
    is not skipped, and ``reopen`` returns to the nearest earlier step that is not skipped.
    """
    _check_keys(steps)
    if not 0 <= current_index < len(steps):
        raise IndexError(f"no step at index {current_index}")
    if not outcome.finished:
        raise ValueError("a pending step does not advance")
    current = steps[current_index]
    if outcome.status == "completed":
        if current.kind == "customer_confirmation":
            return Closed("confirmed")
        return _first_from(steps, current_index + 1, skipped)
    follow_up = outcome.follow_up
    if follow_up is None:
        raise ValueError(f"a {outcome.status} outcome needs a follow-up")
    if follow_up.action == "close":
        return Closed("rejected" if outcome.status == "rejected" else "expired")
    if follow_up.action == "continue_flagged":
        return _first_from(steps, current_index + 1, skipped)
    if follow_up.action == "return_to":
        target = next((i for i, s in enumerate(steps) if s.key == follow_up.step_key), None)
        if target is None:
            raise InvalidStep(f"return_to names no step of this process: {follow_up.step_key!r}")
        return _first_from(steps, target, skipped)
    # reopen: back to the nearest earlier step that still applies
    for index in range(current_index - 1, -1, -1):
        if steps[index].key not in skipped:
            return Goto(index)
    return Reopened()


def _first_from(steps: Sequence[StepRef], index: int, skipped: Collection[str]) -> Goto | Finished:
    for i in range(index, len(steps)):
        if steps[i].key not in skipped:
            return Goto(i)
    return Finished()


def _check_keys(steps: Sequence[StepRef]) -> None:
    keys = [s.key for s in steps]
    if len(set(keys)) != len(keys):
        raise InvalidStep("step keys must be unique within a process")


# --------------------------------------------------------------------------- from a definition


def from_definition(step: StepRef, *, approvers: Collection[str] = (), parties: Sequence[Collection[str]] = (),
                    customers: Collection[str] | None = None, assignees: Collection[str] | None = None) -> Step:
    """The machine's step for one step of a stored definition (``definitions.Step``).

    The caller passes what only the database knows, already resolved to user ids: the
    approval's ``approvers`` (named users plus the members of its teams and the holders of its
    roles) and, for a countersign, one set of user ids per listed party, in the listed order.
    Raises ``InvalidStep`` when the resolution left the step impossible (an empty team...).
    """
    from .definitions import follow_up_text  # the definitions' spelling of on_reject, kept there

    if step.kind == "approval":
        minutes = step.expires_after_minutes  # type: ignore[attr-defined]
        return ApprovalStep(step.key, frozenset(approvers), rule=step.rule, n=step.n,  # type: ignore[attr-defined]
                            on_reject=FollowUp.parse(follow_up_text(step.on_reject)),  # type: ignore[attr-defined]
                            expires_after=None if minutes is None else timedelta(minutes=minutes))
    if step.kind == "countersign":
        if len(parties) != len(step.parties):  # type: ignore[attr-defined]
            raise InvalidStep(f"countersign step {step.key!r}: one set of signers per listed party is needed")
        return CountersignStep(step.key, tuple(frozenset(p) for p in parties), order=step.order,  # type: ignore[attr-defined]
                               on_reject=FollowUp.parse(follow_up_text(step.on_reject)))  # type: ignore[attr-defined]
    if step.kind == "customer_confirmation":
        return CustomerConfirmationStep(step.key, timeout=timedelta(minutes=step.timeout_minutes),  # type: ignore[attr-defined]
                                        on_timeout=step.on_timeout,  # type: ignore[attr-defined]
                                        customers=None if customers is None else frozenset(customers))
    if step.kind == "task":
        return TaskStep(step.key, assignees=None if assignees is None else frozenset(assignees))
    raise InvalidStep(f"unknown step kind {step.kind!r}")
