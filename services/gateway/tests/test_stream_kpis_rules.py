"""The live board's rules without a server: who gets a board, what "changed" means, the frame,
the zone check, and one connection's rate limit on a hand-driven clock."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from helpdesk_common.identity import Principal
from helpdesk_common.problems import Problem

from gateway.stream.kpis import (
    KpiBoards,
    KpiPoller,
    KpiSubscription,
    board_of,
    check_tz,
    figures_of,
    kpi_frame,
    kpi_roles,
    kpi_scope,
)

ROLES = kpi_roles("admin, supervisor,")


def user(role: str, uid: str = "u1") -> Principal:
    return Principal(kind="user", id=uid, role=role)


def test_admins_share_one_board_supervisors_have_their_own_agents_and_keys_none():
    assert ROLES == {"admin", "supervisor"}
    assert kpi_scope(user("admin", "a1"), ROLES) == kpi_scope(user("admin", "a2"), ROLES) == "all"
    assert kpi_scope(user("supervisor", "s1"), ROLES) == "supervisor:s1"
    assert kpi_scope(user("supervisor", "s2"), ROLES) == "supervisor:s2"
    assert kpi_scope(user("agent"), ROLES) is None
    assert kpi_scope(Principal(kind="channel", id="k", channel="email"), ROLES) is None
    assert kpi_scope(Principal(kind="visitor", id="v"), ROLES) is None
    # a deployment that gives agents a board gives each their own scope
    assert kpi_scope(user("agent", "g1"), kpi_roles("agent,admin")) == "agent:g1"


def test_changed_means_any_figure_but_as_of():
    base = {"tickets_created_today": 3, "csat": {"responses": 0, "average": None}, "tz": "UTC",
            "as_of": "2026-11-30T09:00:00+00:00"}
    later = {**base, "as_of": "2026-11-30T09:00:01+00:00"}
    assert figures_of(base) == figures_of(later)
    assert figures_of(base) == figures_of(dict(reversed(list(base.items()))))  # key order is no change
    assert figures_of(base) != figures_of({**base, "tickets_created_today": 4})
    assert figures_of(base) != figures_of({**base, "csat": {"responses": 1, "average": 5.0}})
    assert figures_of(base) != figures_of({**base, "new_key": 0})  # a figure analytics adds counts


def test_the_frame_has_no_id_and_one_line_of_json_chinese_kept():
    doc = {"tickets_created_today": 1, "tz": "Asia/Shanghai", "note": "今日\n新工单", "as_of": "2026-11-30T01:00:00Z"}
    frame = kpi_frame(doc)
    assert frame.startswith(b"event: kpis\ndata: ") and frame.endswith(b"\n\n")
    lines = frame.decode().split("\n")
    assert lines[:2] == ["event: kpis", lines[1]] and lines[2:] == ["", ""]  # exactly two fields
    assert not any(line.startswith("id:") for line in lines)
    assert orjson.loads(lines[1][len("data: "):]) == doc


def test_zones_are_checked_as_analytics_checks_them():
    assert check_tz("UTC") == "UTC"
    assert check_tz("Asia/Shanghai") == "Asia/Shanghai"
    for bad in ("Mars/Olympus", "localtime", "posixrules", "Factory", "../etc/passwd", "asia/shanghai", ""):
        with pytest.raises(Problem) as raised:
            check_tz(bad)
        assert raised.value.status == 422
        assert raised.value.extensions["errors"][0]["field"] == "query.tz"


class _Stream:
    def __init__(self) -> None:
        self.wakeup = asyncio.Event()


def _poller() -> KpiPoller:
    boards = KpiBoards(analytics_url="http://127.0.0.1:9", signer=None, session=lambda: None,  # type: ignore[arg-type]
                       interval_s=1.0, timeout_s=1.0, roles=ROLES)
    return KpiPoller(boards=boards, key=("all", "UTC"), principal=user("admin"), tz="UTC")


def test_first_board_at_once_then_only_changes_never_closer_than_the_interval():
    poller = _poller()
    sub = KpiSubscription(poller, interval_s=1.0)
    assert sub.take(100.0) is None and sub.wait_s(100.0) is None  # nothing fetched yet
    poller.board = board_of({"n": 1, "as_of": "a"})
    assert sub.take(100.0) == poller.board.frame  # the first board: at once
    assert sub.take(100.1) is None  # unchanged
    poller.board = board_of({"n": 1, "as_of": "b"})  # only as_of moved: no frame
    assert sub.take(105.0) is None and sub.wait_s(105.0) is None
    poller.board = board_of({"n": 2, "as_of": "c"})
    assert sub.take(105.2) == poller.board.frame  # changed, interval long past
    poller.board = board_of({"n": 3, "as_of": "d"})
    assert sub.take(105.5) is None  # changed, but only 0.3 s after the last frame
    assert sub.wait_s(105.5) == pytest.approx(0.7)
    poller.board = board_of({"n": 4, "as_of": "e"})  # boards coalesce: the newest goes out
    assert sub.take(106.2) == poller.board.frame
    poller.board = board_of({"n": 3, "as_of": "f"})  # back to an earlier value is a change too
    assert sub.take(107.2) == poller.board.frame


def test_each_connection_has_its_own_last_frame():
    poller = _poller()
    early, late = KpiSubscription(poller, 1.0), KpiSubscription(poller, 1.0)
    poller.board = board_of({"n": 1, "as_of": "a"})
    assert early.take(10.0) is not None
    poller.board = board_of({"n": 2, "as_of": "b"})
    assert late.take(10.5) == poller.board.frame  # a newcomer paints at once
    assert early.take(10.5) is None and early.wait_s(10.5) == pytest.approx(0.5)
    assert early.take(11.0) == poller.board.frame


def test_the_fetch_is_made_in_the_name_of_a_viewer_still_watching():
    poller = _poller()  # started by admin "u1"
    assert poller.viewer().id == "u1"
    stream = _Stream()
    stream.principal = user("admin", "u2")  # type: ignore[attr-defined]
    poller.subscribers.add(stream)
    assert poller.viewer().id == "u2"
    poller.subscribers.discard(stream)
    assert poller.viewer().id == "u2"  # nobody left: the last one known (the poller ends at its next tick)
