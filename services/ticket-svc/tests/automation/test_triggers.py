"""Trigger evaluation: ordering, passes, once per update, and its laws under hypothesis."""

from __future__ import annotations

import os
import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ticket_svc.automation.actions import InternalNote, Skipped
from ticket_svc.automation.conditions import TicketState, UpdateContext, changed_fields
from ticket_svc.automation.triggers import MAX_PASSES, TriggerIn, evaluate_triggers, run_triggers

SETTINGS = settings(max_examples=int(os.environ.get("AUTOMATION_PROPERTY_EXAMPLES", "200")), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


def rule(name: str, position: int, actions: list[dict], all_: list[dict] = (), any_: list[dict] = (),
         rule_id=None, active: bool = True):
    body = {"name": name, "position": position, "active": active, "actions": actions,
            "conditions": {"all": list(all_), "any": list(any_)}}
    return TriggerIn.model_validate(body).to_trigger(trigger_id=rule_id)


def cond(field: str, op: str, value=None) -> dict:
    return {"field": field, "op": op, "value": value}


def tag(*tags: str) -> dict:
    return {"type": "add_tags", "tags": list(tags)}


def untag(*tags: str) -> dict:
    return {"type": "remove_tags", "tags": list(tags)}


def set_(field: str, value) -> dict:
    return {"type": "set_field", "field": field, "value": value}


OPEN = TicketState(status="open", priority="normal", tags=())
SOLVED = TicketState(status="solved", priority="normal", tags=())


def names(firings) -> list[str]:
    return [r.name for r, _ in firings]


def test_rules_fire_in_position_order_and_later_rules_see_earlier_changes() -> None:
    rules = [
        rule("urgent-vip", 20, [set_("priority", "urgent")], [cond("tags", "has_tag", "vip")]),
        rule("vip", 10, [tag("vip")], [cond("custom_fields.amount", "gt", 1000)]),
        rule("never", 5, [tag("x")], [cond("status", "eq", "closed")]),
    ]
    ticket = TicketState(status="open", custom_fields={"amount": 5000})
    run = run_triggers(rules, OPEN, ticket)
    assert names(run.firings) == ["vip", "urgent-vip"]
    assert run.passes == 2  # the first pass changed the ticket; the second fired nothing
    assert run.changes == {"tags": ("vip",), "priority": "urgent"}
    assert [r.pass_number for r in run.records] == [1, 1]


def test_a_rule_before_the_change_reacts_in_the_next_pass() -> None:
    rules = [
        rule("thank", 1, [{"type": "add_internal_note", "body": "solved by rule"}], [cond("status", "changed_to", "solved")]),
        rule("solve", 2, [set_("status", "solved")], [cond("tags", "has_tag", "done")]),
    ]
    run = run_triggers(rules, OPEN, TicketState(status="open", tags=("done",)))
    assert names(run.firings) == ["solve", "thank"]
    assert [r.pass_number for r in run.records] == [1, 2]
    assert run.effects == (InternalNote("solved by rule"),)
    assert not run.bounded


def test_a_rule_fires_once_per_update_even_when_its_conditions_stay_true() -> None:
    flip = rule("flip", 1, [tag("a")], [cond("tags", "not_in", ["b"])])
    flop = rule("flop", 2, [untag("a")], [cond("tags", "has_tag", "a")])
    run = run_triggers([flip, flop], OPEN, OPEN)
    assert names(run.firings) == ["flip", "flop"]
    assert run.ticket.tags == ()
    assert run.changes == {}  # tagged and untagged: nothing to write


def test_the_pass_bound_cuts_a_chain_and_says_so() -> None:
    # each rule, placed before the one that enables it, can only fire in the next pass
    chain = [rule(f"r{i}", 10 - i, [tag(f"t{i + 1}")], [cond("tags", "has_tag", f"t{i}")]) for i in range(8)]
    run = run_triggers(chain, OPEN, TicketState(tags=("t0",)), max_passes=MAX_PASSES)
    assert run.passes == MAX_PASSES
    assert len(run.firings) == MAX_PASSES
    assert run.bounded
    assert run_triggers(chain, OPEN, TicketState(tags=("t0",)), max_passes=20).passes == 9


def test_creation_and_context_conditions() -> None:
    rules = [
        rule("ack", 1, [tag("new")], [cond("update.event", "eq", "created"), cond("status", "changed_to", "new")]),
        rule("customer-wrote", 2, [tag("reply")], [cond("update.actor_kind", "eq", "customer"),
                                                   cond("update.message", "eq", "public")]),
    ]
    created = TicketState(status="new")
    assert names(evaluate_triggers(rules, None, created)) == ["ack"]
    assert names(evaluate_triggers(rules, created, created)) == []
    customer = UpdateContext(actor_kind="customer", message="public")
    assert names(evaluate_triggers(rules, created, created, (), customer)) == ["customer-wrote"]


def test_any_conditions_and_inactive_rules() -> None:
    rules = [
        rule("either", 1, [tag("hit")], [], [cond("priority", "eq", "urgent"), cond("status", "changed_to", "solved")]),
        rule("off", 0, [tag("off")], active=False),
    ]
    assert names(evaluate_triggers(rules, OPEN, SOLVED)) == ["either"]
    assert names(evaluate_triggers(rules, SOLVED, SOLVED)) == []


def test_an_illegal_status_from_a_trigger_is_skipped_not_applied() -> None:
    rules = [rule("reopen", 1, [set_("status", "open")], [cond("tags", "has_tag", "x")])]
    closed = TicketState(status="closed", tags=("x",))
    run = run_triggers(rules, closed, closed)
    assert run.ticket.status == "closed"
    assert run.effects == (Skipped("set_field", "a closed ticket cannot become open"),)


# --------------------------------------------------------------------------- properties

TAGS = ("a", "b", "c", "d")
STATUSES = ("open", "pending", "on_hold", "solved")
PRIORITIES = ("low", "normal", "high", "urgent")


@st.composite
def conditions(draw: st.DrawFn) -> dict:
    kind = draw(st.sampled_from(["tag", "no_tag", "status", "priority", "tag_added", "status_changed"]))
    if kind == "tag":
        return cond("tags", "has_tag", draw(st.sampled_from(TAGS)))
    if kind == "no_tag":
        return cond("tags", "not_in", [draw(st.sampled_from(TAGS))])
    if kind == "status":
        return cond("status", "eq", draw(st.sampled_from(STATUSES)))
    if kind == "priority":
        return cond("priority", draw(st.sampled_from(["eq", "gte", "lt"])), draw(st.sampled_from(PRIORITIES)))
    if kind == "tag_added":
        return cond("tags", "changed_to", draw(st.sampled_from(TAGS)))
    return cond("status", "changed", None)


@st.composite
def action_lists(draw: st.DrawFn) -> list[dict]:
    out = []
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["tag", "untag", "status", "priority", "note"]))
        if kind == "tag":
            out.append(tag(draw(st.sampled_from(TAGS))))
        elif kind == "untag":
            out.append(untag(draw(st.sampled_from(TAGS))))
        elif kind == "status":
            out.append(set_("status", draw(st.sampled_from(STATUSES))))
        elif kind == "priority":
            out.append(set_("priority", draw(st.sampled_from(PRIORITIES))))
        else:
            out.append({"type": "add_internal_note", "body": "n"})
    return out


@st.composite
def rule_sets(draw: st.DrawFn) -> list:
    count = draw(st.integers(0, 12))
    return [
        rule(f"r{i}", draw(st.integers(0, 4)), draw(action_lists()),
             draw(st.lists(conditions(), max_size=3)), draw(st.lists(conditions(), max_size=2)), rule_id=i)
        for i in range(count)
    ]


tickets = st.builds(TicketState, status=st.sampled_from(STATUSES), priority=st.sampled_from(PRIORITIES),
                    tags=st.lists(st.sampled_from(TAGS), unique=True, max_size=4).map(tuple))


@SETTINGS
@given(rules=rule_sets(), before=tickets, after=tickets, max_passes=st.integers(1, 6))
def test_loop_bound_holds_for_any_rule_set(rules, before, after, max_passes) -> None:
    run = run_triggers(rules, before, after, max_passes=max_passes)
    keys = [r.rule.key for r in run.records]
    assert len(keys) == len(set(keys))  # at most once per originating update
    assert run.passes <= max_passes
    assert len(run.records) <= len(rules)
    assert all(1 <= r.pass_number <= run.passes for r in run.records)
    if run.bounded:  # only when the last allowed pass still changed the ticket
        assert run.passes == max_passes and any(r.pass_number == max_passes and r.result.changes for r in run.records)
    else:
        # the run ended on a pass that changed nothing, so that pass saw the final ticket: no rule
        # left unfired matches it (nothing was cut short)
        fired = set(keys)
        changed = changed_fields(before, run.ticket)
        context = UpdateContext()
        assert not any(r.conditions.matches(before, run.ticket, changed, context)
                       for r in rules if r.active and r.key not in fired)


@SETTINGS
@given(rules=rule_sets(), before=tickets, after=tickets, seed=st.integers(0, 2**32 - 1))
def test_ordering_is_deterministic_whatever_the_input_order(rules, before, after, seed) -> None:
    shuffled = list(rules)
    random.Random(seed).shuffle(shuffled)
    first = run_triggers(rules, before, after)
    second = run_triggers(shuffled, before, after)
    assert [r.rule.key for r in first.records] == [r.rule.key for r in second.records]
    assert first.ticket == second.ticket
    assert first.effects == second.effects
    positions = [r.rule.position for r in first.records if r.pass_number == 1]
    assert positions == sorted(positions)
