"""The step machine: table-driven cases and the worked examples of docs/workflow.md (no database)."""

from __future__ import annotations

from dataclasses import FrozenInstanceError
from datetime import UTC, datetime, timedelta, timezone

import pytest

from ticket_svc.processes.machine import (
    CLOSE,
    CONTINUE_FLAGGED,
    REOPEN,
    Accepted,
    ApprovalStep,
    Closed,
    CountersignStep,
    CustomerConfirmationStep,
    DecisionRecord,
    Finished,
    FollowUp,
    Goto,
    InvalidStep,
    Outcome,
    Refused,
    Reopened,
    StepState,
    TaskStep,
    advance,
    deadline,
    decide,
    evaluate,
    expire,
    may_decide,
    next_party,
    start,
    state_from_json,
    state_to_json,
)

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def run(step, script, state=None):
    """Apply ``(actor, decision, minute)`` in order; return the final state and every answer."""
    state = state or StepState.start(T0)
    answers = []
    for actor, decision, minute in script:
        answer = decide(step, state, actor=actor, decision=decision, at=at(minute))
        answers.append(answer)
        if isinstance(answer, Accepted):
            state = answer.state
    return state, answers


def codes(answers):
    return [a.reason if isinstance(a, Refused) else a.outcome.status for a in answers]


# --------------------------------------------------------------------------- approval rules

ABC = frozenset({"ann", "bob", "cy"})


@pytest.mark.parametrize(
    ("rule", "n", "script", "expected"),
    [
        # all: every approver, and the first no ends it
        ("all", None, [("ann", "approve", 1), ("bob", "approve", 2), ("cy", "approve", 3)],
         ["pending", "pending", "completed"]),
        ("all", None, [("ann", "approve", 1), ("bob", "reject", 2), ("cy", "approve", 3)],
         ["pending", "rejected", "step_finished"]),
        # any: the first yes ends it; it is rejected only when everybody said no
        ("any", None, [("ann", "reject", 1), ("bob", "approve", 2), ("cy", "approve", 3)],
         ["pending", "completed", "step_finished"]),
        ("any", None, [("ann", "reject", 1), ("bob", "reject", 2), ("cy", "reject", 3)],
         ["pending", "pending", "rejected"]),
        # 2 of 3: two yeses, or two noes (one yes can no longer become two)
        ("n_of_m", 2, [("ann", "approve", 1), ("bob", "reject", 2), ("cy", "approve", 3)],
         ["pending", "pending", "completed"]),
        ("n_of_m", 2, [("ann", "reject", 1), ("bob", "reject", 2), ("cy", "approve", 3)],
         ["pending", "rejected", "step_finished"]),
        ("n_of_m", 3, [("ann", "approve", 1), ("bob", "approve", 2), ("cy", "approve", 3)],
         ["pending", "pending", "completed"]),
        ("n_of_m", 1, [("cy", "approve", 1)], ["completed"]),
    ],
)
def test_approval_rules(rule, n, script, expected):
    step = ApprovalStep("refund_approval", ABC, rule=rule, n=n)
    state, answers = run(step, script)
    assert codes(answers) == expected
    last = max(i for i, a in enumerate(answers) if isinstance(a, Accepted))
    assert state.outcome == answers[last].outcome
    assert state.finished_at == at(script[last][2])  # every script here ends its step
    if state.outcome.status == "completed":
        assert state.outcome.result == "approved"


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        ([("dan", "approve", 1)], ["not_an_approver"]),
        ([("ann", "approve", 1), ("ann", "approve", 2)], ["pending", "already_decided"]),
        ([("ann", "reject", 1), ("ann", "approve", 2)], ["pending", "already_decided"]),
        ([("ann", "sign", 1)], ["wrong_decision_for_kind"]),
        ([("ann", "complete", 1)], ["wrong_decision_for_kind"]),
        ([("ann", "", 1)], ["wrong_decision_for_kind"]),
        ([("dan", "sign", 1)], ["wrong_decision_for_kind"]),  # the decision's kind is checked before the actor
    ],
)
def test_approval_refusals(script, expected):
    step = ApprovalStep("a", ABC, rule="n_of_m", n=2)
    state, answers = run(step, script)
    assert codes(answers) == expected
    # a refusal changes nothing
    assert len(state.decisions) == sum(isinstance(a, Accepted) for a in answers)


@pytest.mark.parametrize(
    ("on_reject", "follow_up"),
    [("close", CLOSE), ("continue_flagged", CONTINUE_FLAGGED), ("return_to:triage", FollowUp("return_to", "triage"))],
)
def test_rejection_carries_the_definitions_follow_up(on_reject, follow_up):
    step = ApprovalStep("a", ABC, rule="all", on_reject=FollowUp.parse(on_reject))
    _, answers = run(step, [("bob", "reject", 5)])
    assert answers[0].outcome == Outcome("rejected", follow_up=follow_up)
    assert answers[0].outcome.flagged == (on_reject == "continue_flagged")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"approvers": frozenset()}, "no approvers"),
        ({"approvers": ABC, "rule": "n_of_m"}, "n must be"),
        ({"approvers": ABC, "rule": "n_of_m", "n": 0}, "n must be"),
        ({"approvers": ABC, "rule": "n_of_m", "n": 4}, "n must be"),
        ({"approvers": ABC, "rule": "all", "n": 2}, "n goes with"),
        ({"approvers": ABC, "rule": "most"}, "unknown rule"),
        ({"approvers": ABC, "on_reject": REOPEN}, "reopen"),
        ({"approvers": ABC, "expires_after": timedelta(0)}, "positive"),
    ],
)
def test_impossible_approval_steps_are_refused_when_built(kwargs, message):
    with pytest.raises(InvalidStep, match=message):
        ApprovalStep("a", **kwargs)


@pytest.mark.parametrize("text", ["", "close:x", "return_to", "return_to:", "reject", "Close"])
def test_follow_up_spellings(text):
    with pytest.raises(InvalidStep):
        FollowUp.parse(text)
    assert str(FollowUp.parse("return_to:triage")) == "return_to:triage"
    assert FollowUp.parse("reopen") == REOPEN


def test_approval_expiry():
    step = ApprovalStep("a", ABC, rule="any", expires_after=timedelta(hours=24))
    state = StepState.start(T0)
    assert deadline(step, state) == T0 + timedelta(hours=24)
    # just before the deadline: accepted; at the deadline: too late, timer run or not
    early = decide(step, state, actor="ann", decision="reject", at=T0 + timedelta(hours=24) - timedelta(microseconds=1))
    assert isinstance(early, Accepted) and early.outcome.status == "pending"
    late = decide(step, early.state, actor="bob", decision="approve", at=T0 + timedelta(hours=24))
    assert late == Refused("expired")
    assert expire(step, early.state, at=T0 + timedelta(hours=23)) == Refused("not_due")
    expired = expire(step, early.state, at=T0 + timedelta(hours=24))
    assert expired.outcome == Outcome("expired", follow_up=CLOSE)
    assert expired.state.finished_at == T0 + timedelta(hours=24)
    assert expired.state.decisions == early.state.decisions
    assert expire(step, expired.state, at=T0 + timedelta(hours=25)) == Refused("step_finished")
    assert decide(step, expired.state, actor="bob", decision="approve", at=T0 + timedelta(hours=25)) == Refused("step_finished")


def test_approval_without_expiry_never_expires():
    step = ApprovalStep("a", ABC)
    state = StepState.start(T0)
    assert deadline(step, state) is None
    assert expire(step, state, at=T0 + timedelta(days=3650)) == Refused("not_due")
    assert isinstance(decide(step, state, actor="ann", decision="approve", at=T0 + timedelta(days=3650)), Accepted)


def test_expired_approval_follows_on_reject():
    step = ApprovalStep("a", ABC, on_reject=FollowUp("return_to", "triage"), expires_after=timedelta(minutes=5))
    answer = expire(step, StepState.start(T0), at=at(5))
    assert answer.outcome == Outcome("expired", follow_up=FollowUp("return_to", "triage"))


def test_a_finished_step_is_checked_before_its_deadline():
    step = ApprovalStep("a", ABC, rule="any", expires_after=timedelta(minutes=5))
    state, _ = run(step, [("ann", "approve", 1)])
    assert decide(step, state, actor="bob", decision="approve", at=at(10)) == Refused("step_finished")


# --------------------------------------------------------------------------- countersign


def test_sequential_countersign():
    step = CountersignStep("contract", ("finance", "legal", "ceo"), order="sequential")
    state, answers = run(step, [
        ("legal", "sign", 1),    # finance signs first
        ("finance", "sign", 2),
        ("finance", "sign", 3),
        ("ceo", "sign", 4),      # legal's turn
        ("legal", "sign", 5),
        ("mallory", "sign", 6),
        ("ceo", "approve", 7),
        ("ceo", "sign", 8),
        ("ceo", "sign", 9),
    ])
    assert codes(answers) == ["out_of_turn", "pending", "already_decided", "out_of_turn", "pending",
                              "not_an_approver", "wrong_decision_for_kind", "completed", "step_finished"]
    assert state.outcome == Outcome("completed", "signed")
    assert [d.actor for d in state.decisions] == ["finance", "legal", "ceo"]


def test_sequential_countersign_refusal_to_sign_only_in_turn():
    step = CountersignStep("contract", ("finance", "legal"), on_reject=FollowUp("return_to", "draft"))
    state, answers = run(step, [("legal", "reject", 1), ("finance", "reject", 2)])
    assert codes(answers) == ["out_of_turn", "rejected"]
    assert state.outcome.follow_up == FollowUp("return_to", "draft")


def test_parallel_countersign():
    step = CountersignStep("contract", ("finance", "legal", "ceo"), order="parallel")
    state, answers = run(step, [("ceo", "sign", 1), ("legal", "sign", 2), ("ceo", "sign", 3), ("finance", "sign", 4)])
    assert codes(answers) == ["pending", "pending", "already_decided", "completed"]
    assert next_party(step, state.decisions) is None
    assert [d.party for d in state.decisions] == [2, 1, 0]


def test_a_team_party_signs_through_any_one_member():
    finance = frozenset({"fin-1", "fin-2"})
    step = CountersignStep("contract", (finance, "legal-1"), order="sequential")
    state, answers = run(step, [
        ("legal-1", "sign", 1),   # finance first
        ("fin-2", "sign", 2),     # signs for the finance team
        ("fin-1", "sign", 3),     # finance has signed already
        ("fin-1", "reject", 4),   # ... and cannot refuse for it afterwards either
        ("legal-1", "sign", 5),
    ])
    assert codes(answers) == ["out_of_turn", "pending", "already_decided", "already_decided", "completed"]
    assert [(d.actor, d.party) for d in state.decisions] == [("fin-2", 0), ("legal-1", 1)]
    assert step.parties == (finance, frozenset({"legal-1"}))


def test_a_user_in_two_parties_signs_once_for_the_first_open_one():
    step = CountersignStep("contract", (frozenset({"ann", "bob"}), frozenset({"ann", "cy"})), order="parallel")
    state, answers = run(step, [("ann", "sign", 1), ("ann", "sign", 2), ("bob", "sign", 3), ("cy", "sign", 4)])
    assert codes(answers) == ["pending", "already_decided", "already_decided", "completed"]
    assert [(d.actor, d.party) for d in state.decisions] == [("ann", 0), ("cy", 1)]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"parties": ()}, "no parties"), ({"parties": ("a", frozenset())}, "nobody"),
     ({"parties": ("a",), "order": "random"}, "unknown order"), ({"parties": ("a",), "on_reject": REOPEN}, "reopen")],
)
def test_impossible_countersign_steps(kwargs, message):
    with pytest.raises(InvalidStep, match=message):
        CountersignStep("c", **kwargs)


# --------------------------------------------------------------------------- customer confirmation and task

CONFIRM = CustomerConfirmationStep("customer_confirms", timeout=timedelta(days=3))


@pytest.mark.parametrize(
    ("decision", "outcome"),
    [("confirm", Outcome("completed", "confirmed")), ("reject", Outcome("rejected", follow_up=REOPEN)),
     ("reply", Outcome("rejected", follow_up=REOPEN))],
)
def test_customer_answers(decision, outcome):
    _, answers = run(CONFIRM, [("cust-1", decision, 60), ("cust-1", "confirm", 61)])
    assert codes(answers)[1] == "step_finished"
    assert answers[0].outcome == outcome


@pytest.mark.parametrize(("on_timeout", "follow_up"), [("close", CLOSE), ("reopen", REOPEN)])
def test_customer_never_answers(on_timeout, follow_up):
    step = CustomerConfirmationStep("c", timeout=timedelta(days=3), on_timeout=on_timeout)
    state = StepState.start(T0)
    assert expire(step, state, at=T0 + timedelta(days=3) - timedelta(seconds=1)) == Refused("not_due")
    assert decide(step, state, actor="cust-1", decision="confirm", at=T0 + timedelta(days=3)) == Refused("expired")
    assert expire(step, state, at=T0 + timedelta(days=3)).outcome == Outcome("expired", follow_up=follow_up)


def test_customer_confirmation_restricted_to_known_customers():
    step = CustomerConfirmationStep("c", timeout=timedelta(days=1), customers=frozenset({"cust-1"}))
    _, answers = run(step, [("cust-2", "confirm", 1), ("agent-1", "approve", 2), ("cust-1", "confirm", 3)])
    assert codes(answers) == ["not_an_approver", "wrong_decision_for_kind", "completed"]


def test_customer_confirmation_needs_a_positive_timeout():
    with pytest.raises(InvalidStep):
        CustomerConfirmationStep("c", timeout=timedelta(0))
    with pytest.raises(InvalidStep):
        CustomerConfirmationStep("c", timeout=timedelta(days=1), on_timeout="ignore")


def test_task():
    step = TaskStep("fix", assignees=frozenset({"agent-7"}))
    _, answers = run(step, [("agent-8", "complete", 1), ("agent-7", "approve", 2), ("agent-7", "complete", 3),
                            ("agent-7", "complete", 4)])
    assert codes(answers) == ["not_an_approver", "wrong_decision_for_kind", "completed", "step_finished"]
    assert answers[2].outcome == Outcome("completed", "done")
    assert may_decide(TaskStep("fix"), "anyone")
    assert expire(step, StepState.start(T0), at=at(10**6)) == Refused("not_due")


def test_stored_state_keeps_parties_follow_ups_and_offsets():
    step = CountersignStep("contract", (frozenset({"fin-1", "fin-2"}), "legal-1"),
                           on_reject=FollowUp("return_to", "draft"))
    shanghai = timezone(timedelta(hours=8))
    state, _ = run(step, [("fin-1", "sign", 1), ("legal-1", "reject", 2)],
                   state=StepState.start(datetime(2026, 3, 2, 17, 0, tzinfo=shanghai)))
    stored = state_to_json(state)
    assert stored["outcome"] == {"status": "rejected", "result": None, "follow_up": "return_to:draft"}
    assert stored["decisions"][1] == {"actor": "legal-1", "decision": "reject", "at": at(2).isoformat(), "party": 1}
    assert stored["started_at"] == "2026-03-02T17:00:00+08:00"
    assert state_from_json(stored) == state


def test_naive_instants_are_a_programming_error():
    with pytest.raises(ValueError, match="timezone-aware"):
        decide(TaskStep("t"), StepState.start(T0), actor="a", decision="complete", at=datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="timezone-aware"):
        StepState.start(datetime(2026, 1, 1))


def test_states_are_frozen_and_decide_does_not_mutate():
    step = ApprovalStep("a", ABC)
    state = StepState.start(T0)
    answer = decide(step, state, actor="ann", decision="approve", at=at(1))
    assert state == StepState(started_at=T0)
    assert answer.state.decisions == (DecisionRecord("ann", "approve", at(1)),)
    with pytest.raises(FrozenInstanceError):
        state.decisions = ()  # type: ignore[misc]
    assert evaluate(step, answer.state.decisions) == answer.outcome


# --------------------------------------------------------------------------- advance: the refund example

REFUND = (
    TaskStep("triage"),
    ApprovalStep("refund_approval", frozenset({"sup-1", "sup-2"}), rule="any",
                 on_reject=FollowUp("return_to", "triage"), expires_after=timedelta(hours=24)),
    CountersignStep("finance_legal", ("finance-1", "legal-1"), on_reject=CLOSE),
    TaskStep("refund_paid"),
    CustomerConfirmationStep("customer_confirms", timeout=timedelta(days=3), on_timeout="close"),
)
DONE = Outcome("completed", "done")
APPROVED = Outcome("completed", "approved")


@pytest.mark.parametrize(
    ("current", "outcome", "skipped", "expected"),
    [
        (0, DONE, (), Goto(1)),
        (0, DONE, ("refund_approval",), Goto(2)),            # small refund: no approval
        (0, DONE, ("refund_approval", "finance_legal"), Goto(3)),
        (1, APPROVED, (), Goto(2)),
        (1, Outcome("rejected", follow_up=FollowUp("return_to", "triage")), (), Goto(0)),
        (1, Outcome("expired", follow_up=FollowUp("return_to", "triage")), (), Goto(0)),
        # the return target no longer applies: the first step after it that does
        (2, Outcome("rejected", follow_up=FollowUp("return_to", "refund_approval")), ("refund_approval",), Goto(2)),
        (1, Outcome("rejected", follow_up=CONTINUE_FLAGGED), (), Goto(2)),
        (1, Outcome("rejected", follow_up=CONTINUE_FLAGGED), ("finance_legal", "refund_paid", "customer_confirms"),
         Finished()),
        (2, Outcome("rejected", follow_up=CLOSE), (), Closed("rejected")),
        (1, Outcome("expired", follow_up=CLOSE), (), Closed("expired")),
        (3, DONE, ("customer_confirms",), Finished()),
        (3, DONE, (), Goto(4)),
        (4, Outcome("completed", "confirmed"), (), Closed("confirmed")),
        (4, Outcome("rejected", follow_up=REOPEN), (), Goto(3)),
        (4, Outcome("rejected", follow_up=REOPEN), ("refund_paid", "finance_legal"), Goto(1)),
        (4, Outcome("rejected", follow_up=REOPEN), ("triage", "refund_approval", "finance_legal", "refund_paid"),
         Reopened()),
        (4, Outcome("expired", follow_up=CLOSE), (), Closed("expired")),
        (4, Outcome("expired", follow_up=REOPEN), (), Goto(3)),
    ],
)
def test_advance_refund_process(current, outcome, skipped, expected):
    assert advance(REFUND, current, outcome, frozenset(skipped)) == expected


def test_start():
    assert start(REFUND) == Goto(0)
    assert start(REFUND, {"triage", "refund_approval"}) == Goto(2)
    assert start(REFUND, {s.key for s in REFUND}) == Finished()
    assert start(()) == Finished()


@pytest.mark.parametrize(
    ("steps", "current", "outcome", "error"),
    [
        (REFUND, 1, Outcome("pending"), ValueError),
        (REFUND, 5, DONE, IndexError),
        (REFUND, -1, DONE, IndexError),
        (REFUND, 1, Outcome("rejected"), ValueError),
        (REFUND, 1, Outcome("rejected", follow_up=FollowUp("return_to", "nowhere")), InvalidStep),
        ((TaskStep("x"), TaskStep("x")), 0, DONE, InvalidStep),
    ],
)
def test_advance_refuses_what_cannot_happen(steps, current, outcome, error):
    with pytest.raises(error):
        advance(steps, current, outcome, frozenset())


def test_advance_takes_any_object_with_key_and_kind():
    """A definition's own step models work as they are (``StepRef``), no conversion needed."""

    class Ref:
        def __init__(self, key, kind):
            self.key, self.kind = key, kind

    steps = [Ref("a", "task"), Ref("b", "customer_confirmation")]
    assert advance(steps, 0, DONE, ()) == Goto(1)
    assert advance(steps, 1, Outcome("completed", "confirmed"), ()) == Closed("confirmed")


# --------------------------------------------------------------------------- from a stored definition


def test_from_definition_builds_each_kind():
    from ticket_svc.processes.definitions import parse_steps
    from ticket_svc.processes.machine import from_definition

    team = "6f1c1d2e-0000-4000-8000-000000000001"
    steps = parse_steps([
        {"key": "triage", "name": "Triage", "kind": "task"},
        {"key": "approval", "name": "Approval", "kind": "approval", "approvers": {"users": ["sup-1"], "teams": [team]},
         "rule": "n_of_m", "n": 2, "on_reject": {"return_to": "triage"}, "expires_after_minutes": 90},
        {"key": "sign", "name": "Sign", "kind": "countersign", "parties": [{"team": team}, {"user": "legal-1"}],
         "order": "parallel", "on_reject": "continue_flagged"},
        {"key": "confirm", "name": "Confirm", "kind": "customer_confirmation", "timeout_minutes": 4320,
         "on_timeout": "reopen"},
    ])
    task = from_definition(steps[0], assignees={"agent-7"})
    assert task == TaskStep("triage", assignees=frozenset({"agent-7"}))
    approval = from_definition(steps[1], approvers={"sup-1", "fin-1", "fin-2"})
    assert approval == ApprovalStep("approval", frozenset({"sup-1", "fin-1", "fin-2"}), rule="n_of_m", n=2,
                                    on_reject=FollowUp("return_to", "triage"), expires_after=timedelta(minutes=90))
    sign = from_definition(steps[2], parties=[{"fin-1", "fin-2"}, {"legal-1"}])
    assert sign == CountersignStep("sign", (frozenset({"fin-1", "fin-2"}), frozenset({"legal-1"})), order="parallel",
                                   on_reject=CONTINUE_FLAGGED)
    confirm = from_definition(steps[3])
    assert confirm == CustomerConfirmationStep("confirm", timeout=timedelta(days=3), on_timeout="reopen")
    # the definitions' own models drive advance as they are
    assert advance(steps, 3, Outcome("expired", follow_up=REOPEN), frozenset({"sign"})) == Goto(1)
    # a team that resolved to nobody leaves an impossible step: refused, not stuck
    with pytest.raises(InvalidStep, match="n must be"):
        from_definition(steps[1], approvers={"sup-1"})
    with pytest.raises(InvalidStep, match="one set of signers"):
        from_definition(steps[2], parties=[{"legal-1"}])
    with pytest.raises(InvalidStep, match="nobody"):
        from_definition(steps[2], parties=[set(), {"legal-1"}])
