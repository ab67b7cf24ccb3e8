from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sla_svc.timers import policies


@pytest.mark.parametrize(("priority", "minutes"), [("urgent", 60), ("high", 240), ("normal", 480), ("low", 1440), ("???", 480)])
def test_first_response_target(priority, minutes):
    assert policies.first_response_target(priority) == minutes


@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)))
def test_due_after_start_and_tighter_for_higher_priority(started):
    dues = [policies.due_at(started, policies.first_response_target(p)) for p in policies.PRIORITY_ORDER]
    assert all(d > started for d in dues)
    assert dues == sorted(dues, reverse=True)
