"""The state machine as pure functions: every legal move accepted, every other refused."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ticket_svc.tickets import lifecycle
from ticket_svc.tickets.lifecycle import StatusState, decide

CATEGORY = st.sampled_from(lifecycle.CATEGORIES)
CUSTOM = st.sampled_from([None, "waiting_vendor", "escalated"])
STATE = st.builds(StatusState, CATEGORY, CUSTOM)

LEGAL = {
    ("new", "open"), ("new", "pending"), ("new", "on_hold"), ("new", "solved"),
    ("open", "pending"), ("open", "on_hold"), ("open", "solved"),
    ("pending", "open"), ("pending", "on_hold"), ("pending", "solved"),
    ("on_hold", "open"), ("on_hold", "pending"), ("on_hold", "solved"),
    ("solved", "open"), ("solved", "closed"),
}


@pytest.mark.parametrize("current", lifecycle.CATEGORIES)
@pytest.mark.parametrize("target", lifecycle.CATEGORIES)
def test_transition_table(current, target):
    if current == target:
        assert decide(StatusState(current), StatusState(target)) is None
    elif (current, target) in LEGAL:
        assert decide(StatusState(current), StatusState(target)) == StatusState(target)
    else:
        with pytest.raises(lifecycle.IllegalTransition):
            decide(StatusState(current), StatusState(target))


def test_closed_is_final_even_for_custom_statuses():
    with pytest.raises(lifecycle.IllegalTransition):
        decide(StatusState("closed"), StatusState("closed", "archived"))
    assert lifecycle.after_customer_message("closed") == "follow_up"


@given(current=STATE, target=STATE)
def test_decide_accepts_exactly_the_legal_moves(current, target):
    try:
        result = decide(current, target)
    except lifecycle.IllegalTransition:
        assert (current.category, target.category) not in LEGAL
        assert current.category == "closed" or current.category != target.category
        return
    if result is None:
        assert current == target
    else:
        assert result == target
        assert (current.category, target.category) in LEGAL or (
            current.category == target.category != "closed" and current.custom_status != target.custom_status
        )


@settings(max_examples=300)
@given(st.lists(STATE, max_size=30))
def test_sequences_only_pass_through_legal_states(targets):
    """Any request sequence: the status walks only along legal edges, never leaves closed."""
    state = StatusState("new")
    changes = 0
    for target in targets:
        try:
            new = decide(state, target)
        except lifecycle.IllegalTransition:
            continue
        if new is not None:
            assert (state.category, new.category) in LEGAL or state.category == new.category
            assert state.category != "closed"
            state = new
            changes += 1
    assert changes <= len(targets)


@pytest.mark.parametrize(("current", "expected"), [
    ("new", None), ("open", None), ("pending", "open"), ("on_hold", "open"), ("solved", "open"),
    ("closed", "follow_up"),
])
def test_customer_message_reopens(current, expected):
    assert lifecycle.after_customer_message(current) == expected


@pytest.mark.parametrize(("public", "first_done", "awaiting", "first", "response"), [
    (True, False, True, True, True),     # first public reply
    (True, True, True, False, True),     # a reply to a waiting customer
    (True, True, False, False, False),   # a follow-up nobody asked for
    (False, False, True, False, False),  # internal notes are never responses
])
def test_reply_classification(public, first_done, awaiting, first, response):
    kind = lifecycle.classify_agent_reply(public=public, first_response_done=first_done, awaiting_agent=awaiting)
    assert (kind.first_response, kind.response) == (first, response)
