"""The churn-risk score with the default settings, cases worked out by hand.

Default weights: order_frequency_drop 30, order_overdue 20, sla_breaches 20,
unresolved_tickets 10, bad_csat 15, detractor_nps 10, repeat_contacts 10 (115 in all).
Points are weight x severity rounded half up."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from customer_svc.insights.churn import (
    ChurnInputs,
    EpisodeChange,
    EpisodeStep,
    OrderHistory,
    TicketFact,
    churn_risk,
    contributions,
    episode_step,
    order_history,
    points,
    repeated_contacts,
    risk_band,
    share_capped,
)
from customer_svc.insights.settings import ChurnSettings

DEFAULTS = ChurnSettings()

# (inputs, score, [(factor, points), ...] largest first)
CASES = [
    pytest.param(ChurnInputs(), 0, [], id="nothing known: no risk"),
    pytest.param(
        # drop: expected = 8 x 90/365 = 1.97; 1 - 1/1.97 = (720 - 365)/720 = 0.493; x 30 = 14.79 -> 15
        # overdue: (50/45 - 1)/(3 - 1) = 0.0556; x 20 = 1.11 -> 1
        ChurnInputs(orders_recent=1, orders_baseline=8, days_since_last_order=50, usual_gap_days=45),
        16, [("order_frequency_drop", 15), ("order_overdue", 1)], id="buying less often"),
    pytest.param(
        # drop 0/1.97 -> full 30; overdue (200/45 - 1)/2 = 1.72 -> full 20; breaches 2/2 -> 20;
        # bad CSAT 1/2 x 15 = 7.5 -> 8; open 2/3 x 10 = 6.67 -> 7; repeats 2/3 x 10 -> 7;
        # NPS 3: (7 - 3)/7 x 10 = 5.71 -> 6; 30+20+20+8+7+7+6 = 98 (under the cap)
        ChurnInputs(orders_recent=0, orders_baseline=8, days_since_last_order=200, usual_gap_days=45,
                    open_tickets=2, breached_tickets_recent=2, bad_csat_recent=1, last_nps=3,
                    repeat_contacts_recent=2),
        98, [("order_frequency_drop", 30), ("order_overdue", 20), ("sla_breaches", 20), ("bad_csat", 8),
             ("unresolved_tickets", 7), ("repeat_contacts", 7), ("detractor_nps", 6)], id="almost everything bad"),
    pytest.param(
        # every factor full: 115 points, 100 shared by largest remainder with total 115:
        # 30 -> 3000/115 = 26 r 10; 20 -> 17 r 45 (x2); 15 -> 13 r 5; 10 -> 8 r 80 (x3);
        # floors 26+17+17+13+8+8+8 = 97, the 3 leftover points go to the three remainders of 80
        ChurnInputs(orders_recent=0, orders_baseline=2, days_since_last_order=400, usual_gap_days=10,
                    open_tickets=9, breached_tickets_recent=9, bad_csat_recent=9, last_nps=0,
                    repeat_contacts_recent=9),
        100, [("order_frequency_drop", 26), ("order_overdue", 17), ("sla_breaches", 17), ("bad_csat", 13),
              ("unresolved_tickets", 9), ("detractor_nps", 9), ("repeat_contacts", 9)], id="capped at 100"),
    pytest.param(
        # the end-to-end story: a regular buyer (4 orders in the baseline, every 30 days) stops,
        # 120 days since: drop 1 -> 30, overdue (120/30 - 1)/2 = 1.5 -> full 20, two breaches -> 20
        ChurnInputs(orders_recent=0, orders_baseline=4, days_since_last_order=120, usual_gap_days=30,
                    breached_tickets_recent=2),
        70, [("order_frequency_drop", 30), ("order_overdue", 20), ("sla_breaches", 20)], id="orders stop, SLA breached"),
    pytest.param(
        # one order 200 days ago: gap 90 assumed; (200/90 - 1)/2 = 0.611 x 20 = 12.2 -> 12;
        # one baseline order is below min_baseline_orders (2): no drop points
        ChurnInputs(orders_recent=0, orders_baseline=1, days_since_last_order=200),
        12, [("order_overdue", 12)], id="a single order long ago"),
    pytest.param(
        # gap under a day counts as a day: (2/1 - 1)/2 = 0.5 x 20 = 10
        ChurnInputs(orders_recent=2, orders_baseline=0, days_since_last_order=2, usual_gap_days=0.2),
        10, [("order_overdue", 10)], id="gap floored at one day"),
    pytest.param(
        # NPS 6: 1/7 x 10 = 1.43 -> 1; NPS 7 and up adds nothing; 1 open of 3: 3.33 -> 3
        ChurnInputs(last_nps=6, open_tickets=1), 4, [("unresolved_tickets", 3), ("detractor_nps", 1)],
        id="a mild detractor"),
    pytest.param(ChurnInputs(last_nps=7, orders_recent=5, orders_baseline=4, days_since_last_order=3, usual_gap_days=20),
                 0, [], id="a passive who buys more than before"),
]


@pytest.mark.parametrize(("inputs", "score", "reasons"), CASES)
def test_scores_and_reasons(inputs, score, reasons):
    risk = churn_risk(inputs, DEFAULTS)
    assert risk.score == score
    assert [(r.factor, r.contribution) for r in risk.reasons] == reasons
    assert sum(r.contribution for r in risk.reasons) == risk.score


def test_reasons_read_as_sentences_in_both_languages():
    risk = churn_risk(CASES[2].values[0], DEFAULTS)
    sentences = {r.factor: (r.message_en, r.message_zh) for r in risk.reasons}
    assert sentences["order_frequency_drop"] == (
        "0 orders in the last 90 days, about 2 expected from 8 orders in the 365 days before",
        "近90天下单0次，按此前365天的8单应约2次")
    assert sentences["order_overdue"] == (
        "No order for 200 days, 4.4 times their usual gap of 45 days", "已200天未下单，为其平均下单间隔45天的4.4倍")
    assert sentences["sla_breaches"] == ("2 tickets breached the SLA in the last 90 days", "近90天有2个工单超出SLA时限")
    assert sentences["bad_csat"] == ("1 bad satisfaction rating (1-2 of 5) in the last 90 days",
                                     "近90天有1次满意度差评（1-2分）")
    assert sentences["unresolved_tickets"] == ("2 unresolved tickets", "2个工单尚未解决")
    assert sentences["detractor_nps"] == ("Last NPS answer 3 of 10 (a detractor)", "最近一次NPS评分为3分（贬损者）")
    assert sentences["repeat_contacts"] == ("2 repeated contacts about the same issue in the last 90 days",
                                            "近90天就同一问题重复联系2次")
    single = churn_risk(CASES[5].values[0], DEFAULTS).reasons[0]
    assert single.message_en == "No order for 200 days after a single order (2.2 times the 90 days a customer usually waits)"
    assert risk.reasons[0].as_dict() == {
        "factor": "order_frequency_drop", "contribution": 30,
        "message": {"en": sentences["order_frequency_drop"][0], "zh-CN": sentences["order_frequency_drop"][1]}}


def test_weights_are_settings():
    # drop and overdue off; breaches 2/2 x 50 = 50; open 1/3 x 10 = 3.33 -> 3
    custom = ChurnSettings(weight_order_frequency_drop=0, weight_order_overdue=0, weight_sla_breaches=50)
    inputs = ChurnInputs(orders_baseline=8, days_since_last_order=300, usual_gap_days=10, breached_tickets_recent=2,
                         open_tickets=1)
    assert contributions(inputs, custom) == {
        "order_frequency_drop": 0, "order_overdue": 0, "sla_breaches": 50, "unresolved_tickets": 3,
        "bad_csat": 0, "detractor_nps": 0, "repeat_contacts": 0}
    assert churn_risk(inputs, custom).score == 53


def test_settings_from_the_environment(monkeypatch):
    monkeypatch.setenv("CUSTOMER_CHURN_WEIGHT_BAD_CSAT", "40")
    monkeypatch.setenv("CUSTOMER_CHURN_EPISODE_ENTER_AT", "80")
    loaded = ChurnSettings()
    assert (loaded.weight_bad_csat, loaded.episode_enter_at, loaded.episode_leave_below) == (40, 80, 60)


@pytest.mark.parametrize("values", [
    {"weight_bad_csat": 101}, {"weight_bad_csat": -1}, {"episode_enter_at": 50, "episode_leave_below": 60},
    {"band_medium_from": 80, "band_high_from": 70}, {"overdue_full_ratio": 1}, {"breach_saturation": 0},
    {"recent_days": 0},
])
def test_settings_refuse_nonsense(values):
    with pytest.raises(ValidationError):
        ChurnSettings(**values)


@pytest.mark.parametrize("values", [
    {"open_tickets": -1}, {"days_since_last_order": -1}, {"last_nps": 11}, {"last_nps": -1},
    {"usual_gap_days": float("nan")}, {"usual_gap_days": -0.5},
])
def test_inputs_refuse_nonsense(values):
    with pytest.raises(ValueError):
        ChurnInputs(**values)


@pytest.mark.parametrize(("weight", "numerator", "denominator", "expected"), [
    (15, 1, 2, 8),      # 7.5 rounds half up
    (10, 1, 3, 3),      # 3.33
    (10, 2, 3, 7),      # 6.67
    (30, 355, 720, 15),  # 14.79
    (20, 0, 1, 0),
    (100, 1, 1, 100),
])
def test_points_round_half_up_exactly(weight, numerator, denominator, expected):
    assert points(weight, (numerator, denominator)) == expected


@pytest.mark.parametrize(("contribution", "shares"), [
    ([30, 20, 20, 10, 15, 10, 10], [26, 17, 17, 9, 13, 9, 9]),  # worked out in the "capped" case above
    ([60, 60], [50, 50]),
    ([100, 1], [99, 1]),                     # 10000/101 = 99 r 1, 100/101 = 0 r 100: the leftover point goes to the 1
    ([50, 50, 50], [34, 33, 33]),            # equal remainders and sizes: the earlier factor first
    ([40, 30, 20], [40, 30, 20]),            # under the cap: unchanged
    ([0, 0, 120], [0, 0, 100]),
])
def test_share_capped(contribution, shares):
    assert share_capped(contribution) == shares


@pytest.mark.parametrize(("score", "band"), [(0, "low"), (39, "low"), (40, "medium"), (69, "medium"), (70, "high"),
                                             (100, "high")])
def test_bands(score, band):
    assert risk_band(score, DEFAULTS) == band


@pytest.mark.parametrize(("active", "score", "step"), [
    (False, 69, EpisodeStep(False, None)),
    (False, 70, EpisodeStep(True, EpisodeChange.STARTED)),
    (True, 100, EpisodeStep(True, None)),
    (True, 65, EpisodeStep(True, None)),        # inside the band an open episode stays open
    (False, 65, EpisodeStep(False, None)),      # ...and a closed one stays closed
    (True, 60, EpisodeStep(True, None)),
    (True, 59, EpisodeStep(False, EpisodeChange.ENDED)),
    (False, 0, EpisodeStep(False, None)),
])
def test_episodes_with_hysteresis(active, score, step):
    assert episode_step(active=active, new_score=score, settings=DEFAULTS) == step


def test_a_score_wobbling_around_the_threshold_makes_one_episode():
    active, changes = False, []
    for score in [50, 71, 68, 72, 61, 70, 59, 69, 70]:
        step = episode_step(active=active, new_score=score, settings=DEFAULTS)
        active = step.active
        changes.append(step.change)
    assert changes == [None, "started", None, None, None, None, "ended", None, "started"]


AS_OF = datetime(2026, 6, 30, tzinfo=UTC)


def test_order_history():
    # recent window (2026-04-01, 2026-06-30], baseline (2025-04-01, 2026-04-01] (90 and 365 days)
    times = [
        datetime(2026, 6, 10, tzinfo=UTC),   # recent
        datetime(2026, 4, 1, tzinfo=UTC),    # the recent window's open start: baseline
        datetime(2025, 12, 1, tzinfo=UTC),   # baseline
        datetime(2025, 4, 1, tzinfo=UTC),    # the baseline's open start: neither
        datetime(2024, 1, 1, tzinfo=UTC),    # neither
    ]
    # last order 20 days ago; mean gap (2026-06-10 - 2024-01-01) / 4 = (731 + 160) / 4 = 222.75 days
    assert order_history(times, as_of=AS_OF, recent_days=90, baseline_days=365) == OrderHistory(
        orders_recent=1, orders_baseline=2, days_since_last_order=20, usual_gap_days=222.75)


def test_order_history_of_one_and_of_none():
    assert order_history([datetime(2026, 6, 29, 12, tzinfo=UTC)], as_of=AS_OF, recent_days=90,
                         baseline_days=365) == OrderHistory(1, 0, 0, None)
    assert order_history([], as_of=AS_OF, recent_days=90, baseline_days=365) == OrderHistory(0, 0, None, None)


def test_repeated_contacts():
    tickets = [
        TicketFact(datetime(2026, 3, 25, tzinfo=UTC), type="billing"),             # before the window: a seed
        TicketFact(datetime(2026, 4, 5, tzinfo=UTC), type="Billing"),              # 11 days after: +1
        TicketFact(datetime(2026, 4, 30, tzinfo=UTC), type="billing"),             # 25 days after: no
        TicketFact(datetime(2026, 5, 2, tzinfo=UTC), tags=frozenset({"login"})),   # first on login: no
        TicketFact(datetime(2026, 5, 10, tzinfo=UTC), tags=frozenset({"LOGIN", "vpn"})),  # 8 days: +1
        TicketFact(datetime(2026, 6, 1, tzinfo=UTC), type="shipping", reopened=2),  # reopened twice: +2
        TicketFact(datetime(2026, 6, 2, tzinfo=UTC)),                               # no topic: no
        TicketFact(datetime(2026, 6, 3, tzinfo=UTC)),
    ]
    assert repeated_contacts(reversed(tickets), as_of=AS_OF, recent_days=90, window_days=14) == 4
