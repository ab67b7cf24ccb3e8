"""Zendesk's search syntax as the ticket list's filters (gateway/zendesk/search.py)."""

from __future__ import annotations

import pytest

from gateway.zendesk.search import Unsupported, parse


def test_the_common_syntax():
    found = parse('type:ticket status<solved tags:refund requester:x@y.com created>2026-01-01 "打印机 坏了" toner')
    assert found.kind == "ticket"
    assert found.words == ["打印机 坏了", "toner"]
    assert sorted(found.params) == sorted([
        ("tag", "refund"), ("requester", "x@y.com"), ("created_after", "2026-01-02T00:00:00Z"),
        ("status", "new"), ("status", "open"), ("status", "pending"), ("status", "on_hold")])


@pytest.mark.parametrize(("query", "params"), [
    ("status:hold", [("status", "on_hold")]),
    ("status>=solved", [("status", "solved"), ("status", "closed")]),
    ("status>new status<hold", [("status", "open"), ("status", "pending")]),
    ("created:2026-03-01", [("created_after", "2026-03-01T00:00:00Z"), ("created_before", "2026-03-02T00:00:00Z")]),
    ("updated<=2026-03-01", [("updated_before", "2026-03-02T00:00:00Z")]),
    ("updated>2026-03-01T10:00:00Z", [("updated_after", "2026-03-01T10:00:00+00:00")]),
    ("priority:HIGH ticket_type:incident", [("priority", "high"), ("type", "incident")]),
])
def test_terms(query, params):
    assert parse(query).params == params


def test_assignee_and_user_searches():
    assert parse("assignee:me").assignee == "me"
    assert parse("type:user email:a@example.com").kind == "user"


@pytest.mark.parametrize("query", ["-tags:spam", "-printer", "status:done", "type:organization", "brand:x",
                                   "priority>low", "created:2026-13-01", "status<new", "created:2026-01-01T00:00:00Z"])
def test_what_cannot_be_answered_is_refused_not_dropped(query):
    with pytest.raises(Unsupported):
        parse(query)
