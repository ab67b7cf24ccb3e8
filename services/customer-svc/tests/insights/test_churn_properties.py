"""Hypothesis laws of the churn-risk score: monotone in every factor, reasons that add up,
the cap, and episodes that alternate."""

from __future__ import annotations

import dataclasses

from hypothesis import given, settings
from hypothesis import strategies as st

from customer_svc.insights.churn import (
    FACTORS,
    ChurnInputs,
    EpisodeChange,
    churn_risk,
    contributions,
    episode_step,
    share_capped,
)
from customer_svc.insights.settings import ChurnSettings

MANY = settings(max_examples=400, deadline=None)

counts = st.integers(min_value=0, max_value=40)
inputs = st.builds(
    ChurnInputs,
    orders_recent=counts,
    orders_baseline=counts,
    days_since_last_order=st.none() | st.integers(min_value=0, max_value=2000),
    usual_gap_days=st.none() | st.floats(min_value=0, max_value=800, allow_nan=False),
    open_tickets=counts,
    breached_tickets_recent=counts,
    bad_csat_recent=counts,
    last_nps=st.none() | st.integers(min_value=0, max_value=10),
    repeat_contacts_recent=counts,
)
churn_settings = st.builds(
    ChurnSettings,
    **{f"weight_{factor}": st.integers(min_value=0, max_value=100) for factor in FACTORS},
    recent_days=st.integers(min_value=1, max_value=365),
    baseline_days=st.integers(min_value=1, max_value=1000),
    min_baseline_orders=st.integers(min_value=1, max_value=5),
    default_gap_days=st.integers(min_value=1, max_value=400),
    overdue_full_ratio=st.floats(min_value=1.01, max_value=10),
    unresolved_saturation=st.integers(min_value=1, max_value=10),
    breach_saturation=st.integers(min_value=1, max_value=10),
    bad_csat_saturation=st.integers(min_value=1, max_value=10),
    repeat_contact_saturation=st.integers(min_value=1, max_value=10),
)
some_settings = st.just(ChurnSettings()) | churn_settings
more = st.integers(min_value=1, max_value=50)


def _less(value: int, by: int) -> int:
    return max(0, value - by)


#: one factor made worse, everything else kept: (name, how)
WORSENINGS = {
    "fewer recent orders": lambda i, k: dataclasses.replace(i, orders_recent=_less(i.orders_recent, k)),
    "a larger baseline": lambda i, k: dataclasses.replace(i, orders_baseline=i.orders_baseline + k),
    "longer since the last order": lambda i, k: dataclasses.replace(
        i, days_since_last_order=None if i.days_since_last_order is None else i.days_since_last_order + k),
    "a shorter usual gap": lambda i, k: dataclasses.replace(
        i, usual_gap_days=None if i.usual_gap_days is None else i.usual_gap_days / (1 + k)),
    "more open tickets": lambda i, k: dataclasses.replace(i, open_tickets=i.open_tickets + k),
    "more breaches": lambda i, k: dataclasses.replace(i, breached_tickets_recent=i.breached_tickets_recent + k),
    "more bad CSAT": lambda i, k: dataclasses.replace(i, bad_csat_recent=i.bad_csat_recent + k),
    "a lower NPS": lambda i, k: dataclasses.replace(i, last_nps=_less(10 if i.last_nps is None else i.last_nps, k)),
    "more repeated contacts": lambda i, k: dataclasses.replace(i, repeat_contacts_recent=i.repeat_contacts_recent + k),
}


@MANY
@given(inputs, some_settings, st.sampled_from(sorted(WORSENINGS)), more)
def test_making_one_factor_worse_never_lowers_the_score(base, config, worsening, by):
    worse = WORSENINGS[worsening](base, by)
    assert churn_risk(worse, config).score >= churn_risk(base, config).score
    before, after = contributions(base, config), contributions(worse, config)
    assert all(after[factor] >= before[factor] for factor in FACTORS)


@MANY
@given(inputs, some_settings)
def test_reasons_add_up_to_the_score(risk_inputs, config):
    risk = churn_risk(risk_inputs, config)
    raw = contributions(risk_inputs, config)
    assert 0 <= risk.score <= 100
    assert risk.score == min(100, sum(raw.values()))
    assert sum(reason.contribution for reason in risk.reasons) == risk.score
    assert all(0 < reason.contribution <= raw[reason.factor] for reason in risk.reasons)
    assert len({reason.factor for reason in risk.reasons}) == len(risk.reasons)
    assert [r.contribution for r in risk.reasons] == sorted((r.contribution for r in risk.reasons), reverse=True)
    assert all(reason.message_en and reason.message_zh for reason in risk.reasons)


@MANY
@given(inputs, some_settings)
def test_no_factor_exceeds_its_weight(risk_inputs, config):
    raw = contributions(risk_inputs, config)
    assert all(0 <= raw[factor] <= getattr(config, f"weight_{factor}") for factor in FACTORS)


@MANY
@given(st.lists(st.integers(min_value=0, max_value=100), min_size=1, max_size=7))
def test_capped_shares_are_proportional_and_exact(contribution):
    shares = share_capped(contribution)
    total = sum(contribution)
    assert sum(shares) == min(100, total)
    for share, points in zip(shares, contribution):
        assert share <= points
        if total > 100:  # within one point of the exact proportional share
            assert abs(share * total - points * 100) < total


@MANY
@given(st.lists(st.integers(min_value=0, max_value=100), max_size=40),
       st.integers(min_value=1, max_value=100), st.integers(min_value=1, max_value=100))
def test_episodes_alternate_and_respect_the_hysteresis(scores, a, b):
    leave_below, enter_at = sorted((a, b))
    config = ChurnSettings(episode_enter_at=enter_at, episode_leave_below=leave_below)
    active, changes = False, []
    for score in scores:
        step = episode_step(active=active, new_score=score, settings=config)
        if step.change is EpisodeChange.STARTED:
            assert not active and score >= enter_at
        elif step.change is EpisodeChange.ENDED:
            assert active and score < leave_below
        else:
            assert step.active == active
        assert step.active == (score >= enter_at or (active and score >= leave_below))
        active = step.active
        if step.change:
            changes.append(step.change)
    assert changes == [EpisodeChange.STARTED, EpisodeChange.ENDED] * (len(changes) // 2) + (
        [EpisodeChange.STARTED] if len(changes) % 2 else [])
