"""The visibility rule and the frame format, as plain functions."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from gateway.stream.service import StreamRow, Viewer, may_see, render_frame, reset_frame

ME, OTHER = "user-1", "user-2"
MY_TEAM, OTHER_TEAM = "team-a", "team-b"


def row(*, team=None, assignee=None, previous_team=None, previous_assignee=None) -> StreamRow:
    return StreamRow(seq=1, type="ticket.updated", team_id=team, assignee_id=assignee, previous_team_id=previous_team,
                     previous_assignee_id=previous_assignee, frame=b"")


AGENT = Viewer(user_id=ME, sees_all=False, team_ids=frozenset({MY_TEAM}))
NO_TEAMS = Viewer(user_id=ME, sees_all=False, team_ids=frozenset())
ADMIN = Viewer(user_id="boss", sees_all=True, team_ids=frozenset())


@pytest.mark.parametrize(
    ("viewer", "event", "visible"),
    [
        (AGENT, row(team=MY_TEAM), True),
        (AGENT, row(team=OTHER_TEAM), False),
        (AGENT, row(team=OTHER_TEAM, assignee=ME), True),
        (AGENT, row(team=OTHER_TEAM, assignee=OTHER), False),
        (AGENT, row(), True),  # no team: the triage queue, every agent (as in REST)
        (AGENT, row(assignee=OTHER), True),
        (NO_TEAMS, row(), True),
        (AGENT, row(team=OTHER_TEAM, assignee=OTHER, previous_assignee=ME), True),  # moved away from me
        (AGENT, row(team=OTHER_TEAM, previous_team=MY_TEAM), True),  # moved away from my team
        (NO_TEAMS, row(team=MY_TEAM), False),
        (NO_TEAMS, row(assignee=ME), True),
        (ADMIN, row(), True),
        (ADMIN, row(team=OTHER_TEAM, assignee=OTHER), True),
    ],
)
def test_may_see(viewer, event, visible):
    assert may_see(viewer, event) is visible


def test_frames_are_single_line_compact_json():
    at = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
    frame = render_frame(seq=42, type="ticket.message_added", ticket_id="t", team_id=None, assignee_id="a",
                         payload={"text": "多行\n文本", "public": False}, occurred_at=at)
    lines = frame.decode().split("\n")
    assert lines[:2] == ["id: 42", "event: ticket.message_added"] and lines[3:] == ["", ""]
    data = orjson.loads(lines[2].removeprefix("data: "))
    assert data == {"type": "ticket.message_added", "ticket_id": "t", "team_id": None, "assignee_id": "a",
                    "data": {"text": "多行\n文本", "public": False}, "time": "2026-11-24T09:00:00+00:00"}
    reset = reset_frame(resume_after=7, reason="expired").decode()
    assert reset.startswith("id: 7\nevent: stream.reset\ndata: {") and reset.endswith("\n\n")
