"""The Standard Webhooks retry schedule and the auto-disable rule (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from notify_svc.webhooks import schedule

T0 = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)


def test_the_published_schedule() -> None:
    delays = [schedule.next_delay_s(n) for n in range(schedule.MAX_ATTEMPTS)]
    assert delays == [0, 5, 300, 1800, 7200, 18000, 36000, 36000]
    assert schedule.next_delay_s(schedule.MAX_ATTEMPTS) is None
    assert schedule.next_attempt_at(T0, 2) == T0 + timedelta(minutes=5)
    assert schedule.next_attempt_at(T0, 8) is None


@pytest.mark.parametrize(("status", "verdict"), [(200, "success"), (204, "success"), (299, "success"),
                                                 (None, "retry"), (301, "retry"), (302, "retry"),
                                                 (400, "retry"), (404, "retry"), (429, "retry"),
                                                 (500, "retry"), (503, "retry"), (410, "disable")])
def test_classify(status: int | None, verdict: str) -> None:
    assert schedule.classify(status) == verdict


def test_retry_after_lengthens_up_to_the_longest_step() -> None:
    assert schedule.next_delay_s(1, retry_after_s=60) == 60
    assert schedule.next_delay_s(3, retry_after_s=60) == 1800  # never shortens
    assert schedule.next_delay_s(1, retry_after_s=10**9) == 36000


def test_jitter_adds_at_most_a_tenth() -> None:
    assert schedule.next_delay_s(0, jitter=0.99) == 0
    assert 300 <= schedule.next_delay_s(2, jitter=0.5) <= 330
    with pytest.raises(ValueError):
        schedule.next_delay_s(2, jitter=1.0)


@given(st.integers(0, schedule.MAX_ATTEMPTS - 2), st.floats(0, 0.999))
def test_delays_never_shrink_and_jitter_stays_within_a_tenth(n: int, jitter: float) -> None:
    assert schedule.next_delay_s(n) <= schedule.next_delay_s(n + 1)
    base = schedule.next_delay_s(n)
    assert base <= schedule.next_delay_s(n, jitter=jitter) <= base * 1.1


def test_auto_disable_after_five_days_of_failures() -> None:
    since = None
    since = schedule.failing_since_after(since, succeeded=False, at=T0)
    assert since == T0
    since = schedule.failing_since_after(since, succeeded=False, at=T0 + timedelta(days=2))
    assert since == T0  # the run started at the first failure
    assert not schedule.should_auto_disable(since, now=T0 + timedelta(days=4, hours=23))
    assert schedule.should_auto_disable(since, now=T0 + timedelta(days=5))


def test_a_success_ends_the_run() -> None:
    since = schedule.failing_since_after(T0, succeeded=True, at=T0 + timedelta(days=4))
    assert since is None
    assert not schedule.should_auto_disable(since, now=T0 + timedelta(days=30))
    restarted = schedule.failing_since_after(since, succeeded=False, at=T0 + timedelta(days=5))
    assert not schedule.should_auto_disable(restarted, now=T0 + timedelta(days=9))


@given(st.lists(st.tuples(st.booleans(), st.integers(0, 3600 * 24)), max_size=40))
def test_failing_since_is_the_first_failure_after_the_last_success(steps: list[tuple[bool, int]]) -> None:
    since, at, expected = None, T0, None
    for ok, gap in steps:
        at = at + timedelta(seconds=gap)
        since = schedule.failing_since_after(since, succeeded=ok, at=at)
        expected = None if ok else (expected or at)
        assert since == expected


@pytest.mark.parametrize(("since", "verdict", "expected_since", "cause"), [
    (None, "success", None, None),
    (T0, "success", None, None),  # a success ends the run, however long
    (None, "failure", T0 + timedelta(days=6), None),  # the first failure starts it
    (T0 + timedelta(days=1, seconds=1), "failure", T0 + timedelta(days=1, seconds=1), None),  # 4 days, 23:59:59
    (T0 + timedelta(days=1), "failure", T0 + timedelta(days=1), "failing"),  # 5 days exactly
    (T0, "failure", T0, "failing"),
    (None, "gone", T0 + timedelta(days=6), "gone"),  # 410: at once, without a history
    (T0, "gone", T0, "gone"),
])
def test_endpoint_after_attempt(since, verdict, expected_since, cause) -> None:
    at = now = T0 + timedelta(days=6)
    assert schedule.endpoint_after_attempt(since, verdict=verdict, at=at, now=now) == (expected_since, cause)


@given(st.lists(st.tuples(st.sampled_from(["success", "failure"]), st.integers(0, 3600 * 30)), max_size=40))
def test_disabled_exactly_when_the_failures_have_lasted_five_days(steps: list[tuple[str, int]]) -> None:
    since, at = None, T0
    for verdict, gap in steps:
        at = at + timedelta(seconds=gap)
        since, cause = schedule.endpoint_after_attempt(since, verdict=verdict, at=at, now=at)
        assert (cause == "failing") == (since is not None and at - since >= timedelta(days=5))
        if cause:
            break


def test_disabled_reasons() -> None:
    assert schedule.disabled_reason("gone", failing_since=None) == "the receiver answered 410 Gone"
    assert schedule.disabled_reason("admin", failing_since=T0) == "disabled by an admin"
    from zoneinfo import ZoneInfo

    shanghai = T0.astimezone(ZoneInfo("Asia/Shanghai"))
    assert schedule.disabled_reason("failing", failing_since=shanghai) == (
        "failing since 2026-11-30T03:00:00Z: no successful delivery for 5 days")
