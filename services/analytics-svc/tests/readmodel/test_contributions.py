"""Contributions and deltas (pure): a ticket's sums land in the hour of the instant they belong
to, under every dimension value it has; deltas applied in any sequence of re-folds leave the
rollups holding exactly the final state; facts survive their JSON body round trip."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from analytics_svc.metrics.rules import (
    Assigned, Created, Merged, Message, SlaOutcome, StatusChanged, SurveyAnswer, fold,
)
from analytics_svc.readmodel import histogram
from analytics_svc.readmodel.contributions import (
    Contributions, Delta, Dimensions, contributions, cycle_policies, delta, expand, hist_arrays, hour, quantize, ticket_state,
)
from analytics_svc.readmodel.facts import (
    DeliveryFailure, Dims, Linked, SlaState, SlaTarget, from_body, kind_of, ticket_facts, to_body,
)
from analytics_svc.readmodel.targets import target_row
from helpdesk_common import events

T0 = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
M = timedelta(minutes=1)
DIMS = Dimensions(team_id="t1", assignee_id="a1", channel="email", ticket_type="question", priority="high",
                  tier="金牌", organization_id="o1", brand="acme", tags=("vip", "退款", "vip"))


def h(at: datetime) -> str:
    return hour(at)


# --------------------------------------------------------------------------- attribution


def test_every_dimension_value_gets_a_row_and_missing_ones_none():
    assert DIMS.pairs() == [("all", ""), ("team", "t1"), ("agent", "a1"), ("channel", "email"),
                            ("type", "question"), ("priority", "high"), ("tier", "金牌"), ("brand", "acme"),
                            ("organization", "o1"), ("tag", "vip"), ("tag", "退款")]
    assert Dimensions().pairs() == [("all", "")]
    assert Dimensions(brand="", tags=("",)).pairs() == [("all", "")]


@given(st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(9998, 12, 31),
                    timezones=st.sampled_from([UTC, timezone(timedelta(hours=8)), timezone(timedelta(hours=5, minutes=30)),
                                               timezone(timedelta(hours=-3, minutes=-30))])))
def test_an_instants_hour_is_its_utc_hour_truncated(at):
    assert hour(at) == at.astimezone(UTC).replace(minute=0, second=0, microsecond=0).isoformat()
    edge = at.astimezone(UTC).replace(minute=59, second=59, microsecond=999999)
    assert hour(edge) == hour(edge - timedelta(minutes=59, seconds=59, microseconds=999999))
    assert hour(edge + timedelta(microseconds=1)) != hour(edge)


def test_figures_land_in_the_hour_of_their_instant():
    facts = [Created(at=T0), Message(at=T0 + 40 * M, author="agent", public=True),
             StatusChanged(at=T0 + 95 * M, to_status="solved"),
             SlaOutcome(at=T0 + 40 * M, metric="first_response", breached=False),
             SurveyAnswer(at=T0 + 26 * 60 * M, kind="csat", value=3),
             SurveyAnswer(at=T0 + 26 * 60 * M, kind="nps", value=6)]
    metrics = fold(facts)
    c = contributions(created_at=T0, metrics=metrics, dims=DIMS, policies=("gold",),
                      failures=[DeliveryFailure(at=T0 + 5 * M, delivery_id="d", channel="email")])
    assert c.metric[h(T0)] == {"created": 1, "delivery_failures": 1}
    assert c.metric[h(T0 + 40 * M)] == {
        "first_reply_n": 1, "first_reply_sum": 40, "first_reply_bsum": 40, f"first_reply_hist:{histogram.hist_bin(40)}": 1,
        "sla_n": 1, "sla_achieved": 1}
    solved = c.metric[h(T0 + 95 * M)]
    assert solved["solved"] == 1 and solved["resolution_sum"] == 95 and solved["one_touch"] == 1
    assert solved["first_contact"] == 1 and solved["replies"] == 1 and solved["requester_wait_sum"] == 95
    assert solved[f"resolution_hist:{histogram.hist_bin(95)}"] == 1
    assert c.metric[h(T0 + 26 * 60 * M)] == {"csat_n": 1, "csat_rating_sum": 3, "nps_n": 1, "nps_detractors": 1}
    assert c.sla == {(h(T0 + 40 * M), "gold", "first_response"): (1, 0)}


def test_no_creation_no_contribution_and_unresolved_tickets_add_no_resolution():
    assert contributions(created_at=None, metrics=fold([Message(at=T0, author="agent", public=True)]),
                         dims=DIMS) == Contributions()
    c = contributions(created_at=T0, metrics=fold([Created(at=T0), StatusChanged(at=T0 + M, to_status="pending")]),
                      dims=DIMS)
    assert c.metric == {h(T0): {"created": 1}}


def test_a_breach_and_its_late_fulfilment_are_one_breached_cycle_at_the_breach():
    metrics = fold([Created(at=T0), SlaOutcome(at=T0 + 60 * M, metric="resolution", breached=True, final=False),
                    SlaOutcome(at=T0 + 130 * M, metric="resolution", breached=True)])
    targets = [SlaTarget(at=T0, metric="resolution", policy="p1")]
    c = contributions(created_at=T0, metrics=metrics, dims=Dimensions(),
                      policies=cycle_policies(metrics, targets))
    assert c.metric[h(T0 + 60 * M)] == {"sla_n": 1}
    assert c.sla == {(h(T0 + 60 * M), "p1", "resolution"): (0, 1)}


def test_cycle_policy_is_the_latest_target_started_before_the_outcome():
    metrics = fold([Created(at=T0), SlaOutcome(at=T0 + 10 * M, metric="next_response", breached=False),
                    SlaOutcome(at=T0 + 90 * M, metric="next_response", breached=False),
                    SlaOutcome(at=T0 + 5 * M, metric="first_response", breached=False)])
    targets = [SlaTarget(at=T0, metric="next_response", policy="old"),
               SlaTarget(at=T0 + 60 * M, metric="next_response", policy="new")]
    assert cycle_policies(metrics, targets) == ("", "old", "new")  # first_response (5 min) has no target


def test_durations_are_quantized_so_sums_cancel_exactly():
    odd = 1 / 3
    assert quantize(odd) * 1024 == round(odd * 1024)
    total = 0.0
    values = [quantize(v / 7) for v in range(1, 200)]
    for v in values:
        total += v
    for v in reversed(values):
        total -= v
    assert total == 0.0


def test_hist_arrays_spread_bin_keys():
    arrays = hist_arrays({"first_reply_hist:3": 1, "first_reply_hist:5": -1, "created": 1})
    assert arrays["resolution_hist"] is None
    assert arrays["first_reply_hist"][3] == 1 and arrays["first_reply_hist"][5] == -1
    assert len(arrays["first_reply_hist"]) == histogram.BINS


# --------------------------------------------------------------------------- delta laws

contrib_st = st.builds(
    lambda pairs, metric, sla: Contributions(pairs=tuple(dict.fromkeys(pairs)), metric=metric, sla=sla),
    st.lists(st.sampled_from([("all", ""), ("team", "x"), ("team", "y"), ("tag", "退款"), ("agent", "a")]),
             max_size=4),
    st.dictionaries(st.sampled_from([h(T0), h(T0 + 60 * M), h(T0 + 120 * M)]),
                    st.dictionaries(st.sampled_from(["created", "solved", "first_reply_sum", "first_reply_hist:4"]),
                                    st.integers(1, 5), min_size=1), max_size=3),
    st.dictionaries(st.tuples(st.sampled_from([h(T0), h(T0 + 60 * M)]), st.sampled_from(["", "p"]),
                              st.sampled_from(["resolution", "step:a"])),
                    st.tuples(st.integers(0, 2), st.integers(0, 2)), max_size=3),
)


def apply(rollups: dict, d) -> None:
    for key, cols in d.metric:
        row = rollups.setdefault(("m", *key), Counter())
        row.update(cols)
    for key, (a, b) in d.sla:
        row = rollups.setdefault(("s", *key), Counter())
        row.update({"achieved": a, "breached": b})


def nonzero(rollups: dict) -> dict:
    out = {}
    for key, row in rollups.items():
        kept = {k: v for k, v in row.items() if v}
        if kept:
            out[key] = kept
    return out


def expected(c: Contributions) -> dict:
    metric, sla = expand(c)
    out = {("m", *k): {n: v for n, v in cols.items() if v} for k, cols in metric.items()}
    out.update({("s", *k): {n: v for n, v in zip(("achieved", "breached"), counts, strict=True) if v}
                for k, counts in sla.items()})
    return {k: v for k, v in out.items() if v}


@given(st.lists(contrib_st, min_size=1, max_size=5))
@settings(max_examples=200, deadline=None)
def test_deltas_in_sequence_leave_exactly_the_last_state(states):
    rollups: dict = {}
    previous = Contributions()
    for state in states:
        apply(rollups, delta(previous, state))
        previous = state
    assert nonzero(rollups) == expected(states[-1])
    assert not delta(states[-1], states[-1])


@given(contrib_st)
def test_the_stored_form_round_trips(c):
    assert Contributions.from_json(c.to_json()) == c
    assert Contributions.from_json([]) == Contributions()


@given(contrib_st, contrib_st)
def test_delta_rows_are_sorted_by_key(a, b):
    d = delta(a, b)
    assert [k for k, _ in d.metric] == sorted(k for k, _ in d.metric)
    assert [k for k, _ in d.sla] == sorted(k for k, _ in d.sla)


# --------------------------------------------------------------------------- a ticket refolded as facts arrive

fact_st = st.one_of(
    st.builds(Message, at=st.integers(0, 600).map(lambda n: T0 + n * M),
              author=st.sampled_from(["customer", "agent"]), public=st.booleans()),
    st.builds(StatusChanged, at=st.integers(0, 600).map(lambda n: T0 + n * M),
              to_status=st.sampled_from(["open", "pending", "solved", "closed", "on_hold"])),
    st.builds(Assigned, at=st.integers(0, 600).map(lambda n: T0 + n * M),
              assignee_id=st.sampled_from(["a1", "a2", None]), team_id=st.sampled_from(["x", "y", None])),
    st.builds(SlaOutcome, at=st.integers(0, 600).map(lambda n: T0 + n * M),
              metric=st.sampled_from(["first_response", "resolution"]), breached=st.booleans(),
              final=st.booleans()),
    st.builds(SurveyAnswer, at=st.integers(0, 900).map(lambda n: T0 + n * M), kind=st.just("csat"),
              value=st.integers(1, 5)),
    st.builds(Merged, at=st.integers(0, 600).map(lambda n: T0 + n * M)),
)


def state_of(history) -> Contributions:
    ticket = ticket_state(history)
    metric_facts = [f for f in history if not isinstance(f, Dims | Linked | SlaTarget | DeliveryFailure | SlaState)]
    created = next((f for f in metric_facts if isinstance(f, Created)), None)
    metrics = fold(metric_facts) if metric_facts else None
    return contributions(created_at=None if created is None else created.at, metrics=metrics, dims=ticket.dims,
                         policies=() if metrics is None else cycle_policies(metrics, ticket.targets))


@given(st.lists(fact_st, max_size=8), st.randoms(use_true_random=False))
@settings(max_examples=150, deadline=None)
def test_refolding_in_any_arrival_order_ends_in_the_same_rollups(facts, rnd):
    history = [Created(at=T0, team_id="x"), Dims(at=T0, version=0, values={"channel": "web", "tags": ["a"]}),
               *facts]
    order = list(history)
    rnd.shuffle(order)
    rollups: dict = {}
    previous = Contributions()
    for i in range(1, len(order) + 1):
        current = state_of(order[:i])
        apply(rollups, delta(previous, current))
        previous = current
    final = state_of(history)
    assert previous == final
    assert nonzero(rollups) == expected(final)


# --------------------------------------------------------------------------- dimensions


def test_dimensions_follow_versions_and_the_latest_assignment_in_any_order():
    history = [
        Dims(at=T0 + 5 * M, version=3, values={"priority": "urgent"}),
        Created(at=T0, team_id="x", assignee_id="a1"),
        Dims(at=T0, version=0, values={"priority": "normal", "channel": "email", "tags": ["a"], "customer_id": "c0"}),
        Assigned(at=T0 + 9 * M, assignee_id="a2", team_id="y"),
        Dims(at=T0 + 2 * M, version=2, values={"priority": "high", "tags": ["b"]}),
        Linked(at=T0 + M, customer_id="c1"),
    ]
    for order in (history, list(reversed(history))):
        state = ticket_state(order)
        assert state.dims.priority == "urgent" and state.dims.tags == ("b",) and state.dims.channel == "email"
        assert (state.dims.team_id, state.dims.assignee_id) == ("y", "a2")
        assert state.customer_id == "c1" and state.newest == T0 + 9 * M
    # a later customer change on the ticket (a merge re-pointing it) wins over the older link
    moved = [*history, Dims(at=T0 + 20 * M, version=4, values={"customer_id": "c2"})]
    assert ticket_state(moved).customer_id == "c2"


# --------------------------------------------------------------------------- facts


def make_events(tid):
    sid, mid = uuid.uuid4(), uuid.uuid4()
    created = events.TicketCreated(source="t", subject=str(tid), data=events.TicketCreatedData(
        ticket_id=tid, subject="退款", status="new", priority="normal", channel="wechat", tags=["售后"],
        requester=events.Requester(email="a@b.co"), created_by="user:u1", created_at=T0, number=3,
        custom_fields={"brand": "小米"}))
    return [
        created,
        events.TicketUpdated(source="t", subject=str(tid), data=events.TicketUpdatedData(
            ticket_id=tid, version=4, changes={"custom_fields": {"before": {"brand": "小米"}, "after": {"brand": None}},
                                               "subject": {"before": "a", "after": "b"}})),
        events.TicketMessageAdded(source="t", subject=str(tid), data=events.TicketMessageAddedData(
            ticket_id=tid, message_id=mid, author_kind="agent", public=True, created_at=T0 + M)),
        events.SurveyAnswered(source="c", subject=str(sid), data=events.SurveyAnsweredData(
            survey_id=sid, kind="csat", customer_id=uuid.uuid4(), ticket_id=tid, rating=4, at=T0 + 60 * M)),
        events.SlaApplied(source="s", subject=str(tid), data=events.SlaAppliedData(
            ticket_id=tid, metric="resolution", policy="p", target_minutes=60, started_at=T0, due_at=T0 + 60 * M)),
        events.SlaBreached(source="s", subject=str(tid), data=events.SlaAlertData(
            ticket_id=tid, metric="resolution", due_at=T0 + 60 * M)),
        events.DeliveryFailed(source="n", subject="d", data=events.DeliveryStatusData(
            delivery_id=uuid.uuid4(), kind="reply", channel="wechat", status="undeliverable", attempts=1,
            ticket_id=tid, at=T0 + 2 * M)),
        events.TicketMerged(source="t", subject=str(tid), data=events.TicketMergedData(
            ticket_id=tid, target_ticket_id=uuid.uuid4(), moved_messages=0)),
    ]


def test_facts_round_trip_through_their_body_and_keys_ignore_the_envelope():
    tid = uuid.uuid4()
    for event in make_events(tid):
        pairs = ticket_facts(event)
        assert pairs, event.type
        again = ticket_facts(event.model_copy(update={"id": uuid.uuid4()}))
        assert [k for k, _ in again] == [k for k, _ in pairs]
        for _, fact in pairs:
            body = to_body(fact)
            assert from_body(kind_of(fact), body) == fact
            assert from_body(kind_of(fact), body).at.utcoffset() == fact.at.utcoffset()


def test_the_creation_and_updates_carry_dimensions():
    tid = uuid.uuid4()
    created, updated = make_events(tid)[:2]
    (_, c), (key, dims) = ticket_facts(created)
    assert key == "dims:0" and dims.values["brand"] == "小米" and dims.values["tags"] == ["售后"]
    assert dims.values["channel"] == "wechat" and c.by_agent
    ((key, upd),) = ticket_facts(updated)
    assert key == "dims:4" and upd.values == {"brand": None}  # the subject is no dimension
    no_dims = updated.model_copy(update={"data": updated.data.model_copy(update={"changes": {"subject": {}}})})
    assert ticket_facts(no_dims) == []


# --------------------------------------------------------------------------- SLA targets

state_st = st.builds(
    lambda n, event, colour, due: SlaState(
        at=T0 + n * M, metric="resolution", event=event,
        state={"applied": "running", "paused": "paused", "resumed": "running", "fulfilled": "fulfilled",
               "cancelled": "cancelled"}.get(event),
        colour={"applied": "green", "warning": colour, "breached": "breached"}.get(event),
        policy="p" if event == "applied" else None, target_minutes=60 if event == "applied" else None,
        started_at=T0 + n * M if event == "applied" else None,
        due_at=None if event in ("paused", "cancelled") else T0 + due * M),
    st.integers(0, 30), st.sampled_from(["applied", "warning", "breached", "paused", "resumed", "fulfilled",
                                         "cancelled"]),
    st.sampled_from(["yellow", "red"]), st.integers(30, 90))


@given(st.lists(state_st, min_size=1, max_size=7), st.randoms(use_true_random=False))
def test_a_target_row_does_not_depend_on_arrival_order(states, rnd):
    shuffled = list(states)
    rnd.shuffle(shuffled)
    assert target_row(shuffled) == target_row(states)


def test_each_target_attribute_comes_from_the_newest_event_carrying_it():
    row = target_row([
        SlaState(at=T0 + 10 * M, metric="m", event="paused", state="paused"),
        SlaState(at=T0, metric="m", event="applied", state="running", colour="green", policy="p", target_minutes=60,
                 started_at=T0, due_at=T0 + 60 * M),
        SlaState(at=T0 + 5 * M, metric="m", event="warning", colour="red", due_at=T0 + 60 * M),
    ])
    assert row == {"state": "paused", "colour": "red", "policy": "p", "target_minutes": 60, "started_at": T0,
                   "due_at": T0 + 60 * M, "event_at": T0 + 10 * M}
    assert target_row([]) is None


# --------------------------------------------------------------------------- soft deletion


def test_a_deleted_ticket_counts_nowhere_and_its_restore_brings_its_figures_back():
    """A deletion closes the ticket with reason "deleted": no resolution, no open backlog, no
    created count; the restore (back to the status it had, reason "restored") is no reopening, and
    the ticket's contributions are what they were before the deletion."""
    lived = [Created(at=T0), Message(at=T0 + 5 * M, author="agent", public=True),
             StatusChanged(at=T0 + 10 * M, to_status="open")]
    before = contributions(created_at=T0, metrics=fold(lived), dims=DIMS)
    assert before.metric[h(T0)]["created"] == 1 and before.open  # open, in the backlog
    deleted = lived + [StatusChanged(at=T0 + 60 * M, to_status="closed", reason="deleted")]
    gone = fold(deleted)
    assert gone.deleted and not gone.resolved and gone.full_resolution is None and gone.reopens == 0
    assert contributions(created_at=T0, metrics=gone, dims=DIMS) == Contributions()
    restored = fold(deleted + [StatusChanged(at=T0 + 90 * M, to_status="open", reason="restored")])
    assert not restored.deleted and not restored.resolved and restored.reopens == 0
    back = contributions(created_at=T0, metrics=restored, dims=DIMS)
    assert back.metric == before.metric and back.open == before.open


def test_a_solved_ticket_deleted_and_restored_is_solved_again_not_reopened():
    lived = [Created(at=T0), Message(at=T0 + 5 * M, author="agent", public=True),
             StatusChanged(at=T0 + 10 * M, to_status="solved")]
    solved = fold(lived)
    gone = fold(lived + [StatusChanged(at=T0 + 60 * M, to_status="closed", reason="deleted")])
    assert gone.deleted and not gone.resolved
    again = fold(lived + [StatusChanged(at=T0 + 60 * M, to_status="closed", reason="deleted"),
                          StatusChanged(at=T0 + 70 * M, to_status="solved", reason="restored")])
    assert again.resolved and again.reopens == 0 and again.full_resolution == solved.full_resolution


def test_the_deletion_reason_survives_the_stored_fact_and_old_bodies_read_without_it():
    fact = StatusChanged(at=T0, to_status="closed", reason="deleted")
    assert from_body(kind_of(fact), to_body(fact)) == fact
    assert from_body("status", {"at": T0.isoformat(), "to_status": "open"}) == StatusChanged(at=T0, to_status="open")


def delta_by_expansion(old: Contributions, new: Contributions) -> Delta:
    """The definition ``delta`` computes without expanding: every row of both states, diffed."""
    from analytics_svc.readmodel.contributions import _diff_rows, expand_open

    old_m, old_s = expand(old)
    new_m, new_s = expand(new)
    sla = []
    for key in sorted(old_s.keys() | new_s.keys()):
        a0, b0 = old_s.get(key, (0, 0))
        a1, b1 = new_s.get(key, (0, 0))
        if (a1 - a0, b1 - b0) != (0, 0):
            sla.append((key, (a1 - a0, b1 - b0)))
    return Delta(metric=_diff_rows(old_m, new_m), sla=tuple(sla),
                 open=_diff_rows(expand_open(old), expand_open(new)))


open_st = st.dictionaries(st.sampled_from([h(T0), h(T0 + 60 * M), h(T0 + 180 * M)]),
                          st.dictionaries(st.sampled_from(["open", "unassigned", "overdue_from", "at_risk_from"]),
                                          st.integers(0, 2), min_size=1), max_size=3)


@given(contrib_st, contrib_st, open_st, open_st, st.floats(-3, 3, allow_nan=False))
@settings(max_examples=400, deadline=None)
def test_delta_is_the_difference_of_the_expanded_rows(a, b, open_a, open_b, amount):
    """``delta`` works per pair case instead of per expanded row: the same rows, columns and
    order as diffing the expansions, for any two states (open buckets and float sums included)."""
    a = Contributions(pairs=a.pairs, metric={**a.metric, h(T0 + 240 * M): {"first_reply_sum": amount}},
                      sla=a.sla, open=open_a)
    b = Contributions(pairs=b.pairs, metric=b.metric, sla=b.sla, open=open_b)
    for old, new in ((a, b), (b, a), (a, a), (Contributions(), b), (a, Contributions())):
        got, want = delta(old, new), delta_by_expansion(old, new)
        assert got == want
        assert [list(cols) for _, cols in got.metric] == [list(cols) for _, cols in want.metric]
