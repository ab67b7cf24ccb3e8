"""Hypothesis laws of the step machine: approval rules under every order of decisions, rejections,
who may decide, one decision each, finished steps, countersign turns, advancing, determinism."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ticket_svc.processes.machine import (
    CLOSE,
    CONTINUE_FLAGGED,
    DECISIONS,
    Accepted,
    ApprovalStep,
    Closed,
    CountersignStep,
    Finished,
    FollowUp,
    Goto,
    Outcome,
    Refused,
    StepState,
    TaskStep,
    advance,
    decide,
    evaluate,
    expire,
    start,
    state_from_json,
    state_to_json,
)

SETTINGS = settings(max_examples=int(os.environ.get("PROCESS_PROPERTY_EXAMPLES", "300")), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
PEOPLE = tuple(f"u{i}" for i in range(10))
ALL_DECISIONS = sorted(set().union(*DECISIONS.values()) | {"maybe"})
FOLLOW_UPS = st.sampled_from([CLOSE, CONTINUE_FLAGGED, FollowUp("return_to", "s0"), FollowUp("return_to", "s1")])


@st.composite
def approval_steps(draw: st.DrawFn) -> ApprovalStep:
    approvers = draw(st.frozensets(st.sampled_from(PEOPLE), min_size=1, max_size=6))
    rule = draw(st.sampled_from(("all", "any", "n_of_m")))
    n = draw(st.integers(1, len(approvers))) if rule == "n_of_m" else None
    return ApprovalStep("approval", approvers, rule=rule, n=n, on_reject=draw(FOLLOW_UPS))


def required(step: ApprovalStep) -> int:
    """The oracle's reading of the rules, written from the issue rather than from the machine."""
    return {"all": len(step.approvers), "any": 1}.get(step.rule, step.n)


def apply(step, script, state=None):
    state = state or StepState.start(T0)
    answers = []
    for i, (actor, decision) in enumerate(script):
        answer = decide(step, state, actor=actor, decision=decision, at=T0 + timedelta(seconds=i))
        answers.append(answer)
        if isinstance(answer, Accepted):
            state = answer.state
    return state, answers


# (1) an independent model of approvals, decision by decision ------------------------------------

scripts = st.lists(st.tuples(st.sampled_from(PEOPLE), st.sampled_from(ALL_DECISIONS)), max_size=25)


@SETTINGS
@given(step=approval_steps(), script=scripts)
def test_approval_matches_a_reference_model(step, script):
    """Every answer, accepted or refused with its exact reason, is what the rules say."""
    state = StepState.start(T0)
    decided: dict[str, str] = {}
    status = "pending"
    for i, (actor, decision) in enumerate(script):
        at = T0 + timedelta(seconds=i)
        answer = decide(step, state, actor=actor, decision=decision, at=at)
        if status != "pending":
            assert answer == Refused("step_finished")
            continue
        if decision not in ("approve", "reject"):
            assert answer == Refused("wrong_decision_for_kind")
            continue
        if actor not in step.approvers:
            assert answer == Refused("not_an_approver")
            continue
        if actor in decided:
            assert answer == Refused("already_decided")
            continue
        assert isinstance(answer, Accepted)
        decided[actor] = decision
        yes = sum(d == "approve" for d in decided.values())
        still_open = len(step.approvers) - len(decided)
        if yes >= required(step):
            status = "completed"
            assert answer.outcome == Outcome("completed", "approved")
        elif yes + still_open < required(step):
            status = "rejected"
            assert answer.outcome == Outcome("rejected", follow_up=step.on_reject)
        else:
            assert answer.outcome == Outcome("pending")
        assert answer.state.finished_at == (None if status == "pending" else at)
        state = answer.state
    # one decision per approver, only approvers, in the order they were accepted
    actors = [d.actor for d in state.decisions]
    assert len(actors) == len(set(actors)) and set(actors) <= step.approvers
    assert {d.actor: d.decision for d in state.decisions} == decided
    assert state.outcome.status == status


# (2) every order of a full set of votes ends the same way, at the earliest possible moment -----


@st.composite
def full_votes(draw: st.DrawFn):
    step = draw(approval_steps())
    votes = [(a, draw(st.sampled_from(("approve", "reject")))) for a in sorted(step.approvers)]
    noise = draw(st.lists(st.tuples(st.sampled_from(PEOPLE), st.sampled_from(("approve", "reject"))), max_size=8))
    order = draw(st.permutations(votes + noise))
    return step, votes, order


@SETTINGS
@given(case=full_votes())
def test_every_order_of_votes_reaches_the_same_outcome(case):
    """``all`` / ``any`` / ``n_of_m`` complete exactly when the approvals reach n, whatever the order,
    interleaved with non-approvers and duplicates; and the step ends at the first decision that
    settles it, neither earlier nor later."""
    step, _, order = case
    vote_of: dict[str, str] = {}  # an approver's vote is their first decision in this order
    for actor, decision in order:
        if actor in step.approvers:
            vote_of.setdefault(actor, decision)
    assert set(vote_of) == step.approvers
    state, answers = apply(step, order)
    approvals = sum(v == "approve" for v in vote_of.values())
    expected = "completed" if approvals >= required(step) else "rejected"
    assert state.outcome.status == expected
    # the decisive moment: replay the approvers' first votes in this order
    yes = no = 0
    settled_at = None
    seen: set[str] = set()
    for index, (actor, _) in enumerate(order):
        if actor not in vote_of or actor in seen:
            continue
        seen.add(actor)
        if vote_of[actor] == "approve":
            yes += 1
        else:
            no += 1
        if yes >= required(step) or yes + (len(vote_of) - yes - no) < required(step):
            settled_at = index
            break
    assert settled_at is not None
    for index, answer in enumerate(answers):
        if index < settled_at:
            assert isinstance(answer, Refused) or answer.outcome.status == "pending"
        elif index == settled_at:
            assert isinstance(answer, Accepted) and answer.outcome.status == expected
        else:
            assert answer == Refused("step_finished")


@SETTINGS
@given(case=full_votes())
def test_final_approvers_decisions_are_a_prefix_of_the_votes(case):
    """What the state records is exactly the approvers' first votes up to the decisive one."""
    step, votes, order = case
    state, _ = apply(step, order)
    first_votes = []
    for actor, decision in order:
        if actor in step.approvers and actor not in {a for a, _ in first_votes}:
            first_votes.append((actor, decision))
    recorded = [(d.actor, d.decision) for d in state.decisions]
    assert recorded == first_votes[: len(recorded)]
    assert evaluate(step, state.decisions) == state.outcome


# (3) a rejection follows its definition ---------------------------------------------------------

KEYS = ("s0", "s1", "s2", "s3", "s4")


@SETTINGS
@given(step=approval_steps(), index=st.integers(0, 4), skipped=st.frozensets(st.sampled_from(KEYS)),
       order=st.permutations(PEOPLE))
def test_a_rejection_follows_its_definition(step, index, skipped, order):
    """Rejecting until the rule cannot be met ends the step with the definition's follow-up, and
    ``advance`` does what that follow-up says."""
    state, _ = apply(step, [(actor, "reject") for actor in order])
    assert state.outcome == Outcome("rejected", follow_up=step.on_reject)
    steps = [TaskStep(k) for k in KEYS]
    nxt = advance(steps, index, state.outcome, skipped)
    if step.on_reject == CLOSE:
        assert nxt == Closed("rejected")
        return
    if step.on_reject == CONTINUE_FLAGGED:
        first = index + 1
    else:
        first = KEYS.index(step.on_reject.step_key)
    later = [i for i in range(first, len(KEYS)) if KEYS[i] not in skipped]
    assert nxt == (Goto(later[0]) if later else Finished())


# (4) nothing is accepted on a finished step; a refusal changes nothing --------------------------


@SETTINGS
@given(step=approval_steps(), script=scripts, late=scripts)
def test_a_finished_step_takes_nothing(step, script, late):
    state, _ = apply(step, [(a, "approve") for a in sorted(step.approvers)] + script)
    assert state.outcome.finished
    for actor, decision in late:
        assert decide(step, state, actor=actor, decision=decision, at=T0 + timedelta(days=1)) == Refused("step_finished")
        assert expire(step, state, at=T0 + timedelta(days=1)) == Refused("step_finished")


@SETTINGS
@given(step=approval_steps(), script=scripts)
def test_refusals_leave_the_state_alone_and_acceptances_only_append(step, script):
    state = StepState.start(T0)
    for i, (actor, decision) in enumerate(script):
        answer = decide(step, state, actor=actor, decision=decision, at=T0 + timedelta(seconds=i))
        if isinstance(answer, Accepted):
            assert answer.state.decisions[:-1] == state.decisions
            assert answer.state.decisions[-1].actor == actor
            assert answer.state.started_at == state.started_at
            state = answer.state


# (5) expiry ----------------------------------------------------------------------------------------


@SETTINGS
@given(step=approval_steps(), hours=st.integers(1, 72), offsets=st.lists(st.integers(0, 100 * 3600), max_size=10),
       actors=st.lists(st.sampled_from(PEOPLE), min_size=10, max_size=10))
def test_nothing_is_accepted_after_the_expiry(step, hours, offsets, actors):
    step = ApprovalStep(step.key, step.approvers, rule=step.rule, n=step.n, on_reject=step.on_reject,
                        expires_after=timedelta(hours=hours))
    state = StepState.start(T0)
    for actor, offset in zip(actors, sorted(offsets)):
        at = T0 + timedelta(seconds=offset)
        answer = decide(step, state, actor=actor, decision="reject", at=at)
        if state.outcome.finished:
            assert answer == Refused("step_finished")
        elif at >= T0 + timedelta(hours=hours):
            assert answer == Refused("expired")
        else:
            assert answer != Refused("expired")
            if isinstance(answer, Accepted):
                state = answer.state
    end = T0 + timedelta(hours=hours)
    answer = expire(step, state, at=end)
    if state.outcome.finished:
        assert answer == Refused("step_finished")
    else:
        assert answer.outcome == Outcome("expired", follow_up=step.on_reject)


# (6) countersign turns -----------------------------------------------------------------------------


@SETTINGS
@given(parties=st.lists(st.sampled_from(PEOPLE), min_size=1, max_size=6, unique=True),
       order=st.sampled_from(("sequential", "parallel")),
       script=st.lists(st.tuples(st.sampled_from(PEOPLE), st.sampled_from(("sign", "sign", "sign", "approve"))),
                       max_size=30))
def test_countersign_accepts_only_the_next_party(parties, order, script):
    step = CountersignStep("sign", tuple(parties), order=order)
    state = StepState.start(T0)
    for i, (actor, decision) in enumerate(script):
        signed = [d.actor for d in state.decisions]
        answer = decide(step, state, actor=actor, decision=decision, at=T0 + timedelta(seconds=i))
        if state.outcome.finished:
            assert answer == Refused("step_finished")
        elif decision != "sign":
            assert answer == Refused("wrong_decision_for_kind")
        elif actor not in parties:
            assert answer == Refused("not_an_approver")
        elif actor in signed:
            assert answer == Refused("already_decided")
        elif order == "sequential" and actor != parties[len(signed)]:
            assert answer == Refused("out_of_turn")
        else:
            assert isinstance(answer, Accepted)
            state = answer.state
            done = len(state.decisions) == len(parties)
            assert state.outcome == (Outcome("completed", "signed") if done else Outcome("pending"))
    signed = [d.actor for d in state.decisions]
    if order == "sequential":
        assert signed == parties[: len(signed)]
    assert len(signed) == len(set(signed)) and set(signed) <= set(parties)


# (7) advancing ----------------------------------------------------------------------------------


@SETTINGS
@given(index=st.integers(0, 4), skipped=st.frozensets(st.sampled_from(KEYS)),
       result=st.sampled_from(("approved", "signed", "done")))
def test_advance_never_lands_on_a_skipped_step(index, skipped, result):
    steps = [TaskStep(k) for k in KEYS]
    nxt = advance(steps, index, Outcome("completed", result), skipped)
    later = [i for i in range(index + 1, len(KEYS)) if KEYS[i] not in skipped]
    assert nxt == (Goto(later[0]) if later else Finished())
    first = start(steps, skipped)
    assert isinstance(first, Finished) or KEYS[first.index] not in skipped


# (8) determinism --------------------------------------------------------------------------------


@SETTINGS
@given(step=approval_steps(), script=scripts)
def test_determinism(step, script):
    """The same step, state and decisions always give equal answers (two replicas agree)."""
    first = apply(step, script)
    second = apply(step, script)
    assert first == second
    rebuilt = ApprovalStep(step.key, frozenset(sorted(step.approvers, reverse=True)), rule=step.rule, n=step.n,
                           on_reject=step.on_reject)
    assert apply(rebuilt, script) == first


@SETTINGS
@given(parties=st.lists(st.frozensets(st.sampled_from(PEOPLE), min_size=1, max_size=3), min_size=1, max_size=5),
       order=st.sampled_from(("sequential", "parallel")),
       script=st.lists(st.sampled_from(PEOPLE), max_size=30))
def test_countersign_with_team_parties(parties, order, script):
    """Parties that are teams or roles (overlapping sets of users): an accepted signature is by a
    member of a party still unsigned (the one whose turn it is, in order), each party is signed
    once, each user signs once, and the step completes exactly when every party has signed."""
    step = CountersignStep("sign", tuple(parties), order=order)
    state = StepState.start(T0)
    for i, actor in enumerate(script):
        before = {d.party for d in state.decisions}
        answer = decide(step, state, actor=actor, decision="sign", at=T0 + timedelta(seconds=i))
        open_parties = [p for p in range(len(parties)) if p not in before and actor in parties[p]]
        if state.outcome.finished:
            assert answer == Refused("step_finished")
            continue
        if not any(actor in party for party in parties):
            assert answer == Refused("not_an_approver")
            continue
        if any(d.actor == actor for d in state.decisions) or not open_parties:
            assert answer == Refused("already_decided")
            continue
        turn = min(p for p in range(len(parties)) if p not in before)
        if order == "sequential" and turn not in open_parties:
            assert answer == Refused("out_of_turn")
            continue
        assert isinstance(answer, Accepted)
        signed_for = answer.state.decisions[-1].party
        assert signed_for == (turn if order == "sequential" else open_parties[0])
        state = answer.state
        done = {d.party for d in state.decisions} == set(range(len(parties)))
        assert state.outcome == (Outcome("completed", "signed") if done else Outcome("pending"))
    actors = [d.actor for d in state.decisions]
    assert len(actors) == len(set(actors))
    assert len({d.party for d in state.decisions}) == len(state.decisions)


@SETTINGS
@given(step=approval_steps(), script=scripts, expire_after=st.booleans())
def test_stored_state_round_trips(step, script, expire_after):
    """What the caller stores (jsonb) reads back as the very same state."""
    state, _ = apply(step, script)
    if expire_after and not state.outcome.finished:
        step = ApprovalStep(step.key, step.approvers, rule=step.rule, n=step.n, on_reject=step.on_reject,
                            expires_after=timedelta(minutes=1))
        state = expire(step, state, at=T0 + timedelta(hours=1)).state
    stored = json.loads(json.dumps(state_to_json(state)))
    assert state_from_json(stored) == state
