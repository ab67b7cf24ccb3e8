"""The ticket access rule (``tickets.policy``), table-driven, no database.

Rows read: who (role, teams), which ticket (team, assignee, creator), what they ask → answer.
"""

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from helpdesk_common.identity import Principal
from ticket_svc.tickets import policy

TEAM_A, TEAM_B, TEAM_C = (str(uuid.UUID(int=n)) for n in (1, 2, 3))

ADMIN = policy.viewer_of(Principal(kind="user", id="root", role="admin"))
SUP = policy.viewer_of(Principal(kind="user", id="boss", role="supervisor"))
A1 = policy.viewer_of(Principal(kind="user", id="a1", role="agent"), [uuid.UUID(TEAM_A)])
AC = policy.viewer_of(Principal(kind="user", id="ac", role="agent"), [TEAM_A, TEAM_C])
LONER = policy.viewer_of(Principal(kind="user", id="loner", role="agent"))
ROLELESS = policy.viewer_of(Principal(kind="user", id="x", role=None), [TEAM_A])
KEY = policy.viewer_of(Principal(kind="channel", id="key-1", channel="web"))
OTHER_KEY = policy.viewer_of(Principal(kind="channel", id="key-2", channel="web"))


def ticket(team: str | None = None, assignee: str | None = None, created_by: str = "channel:key-1") -> dict:
    return {"team_id": uuid.UUID(team) if team else None, "assignee_id": assignee, "created_by": created_by}


T_A, T_B, TRIAGE = ticket(TEAM_A), ticket(TEAM_B), ticket()
T_B_A1, T_A_A2, TRIAGE_A2 = ticket(TEAM_B, "a1"), ticket(TEAM_A, "a2"), ticket(None, "a2")
T_BY_A1 = ticket(TEAM_B, created_by="user:a1")


@pytest.mark.parametrize(("viewer", "row", "readable"), [
    (ADMIN, T_B, True), (SUP, T_B, True), (SUP, TRIAGE, True),
    (A1, T_A, True), (A1, T_A_A2, True), (A1, TRIAGE, True), (A1, TRIAGE_A2, True), (A1, T_B_A1, True),
    (A1, T_B, False),
    (A1, T_BY_A1, False),  # creating a ticket is not a licence to follow it into another team
    (AC, ticket(TEAM_C), True), (AC, T_B, False),
    (LONER, TRIAGE, True), (LONER, T_A, False), (LONER, ticket(TEAM_B, "loner"), True),
    (ROLELESS, T_A, True), (ROLELESS, T_B, False),  # an unknown role is an agent, not staff
    (KEY, T_B, True), (KEY, TRIAGE, True), (OTHER_KEY, T_B, False), (OTHER_KEY, TRIAGE, False),
])
def test_who_reads_what(viewer, row, readable):
    assert policy.may_read(viewer, row) is readable
    assert policy.may_write(viewer, row) is readable
    assert (policy.check_write(viewer, row) is None) is readable


@pytest.mark.parametrize(("viewer", "row", "changes", "answer"), [
    # staff: everything
    (SUP, T_B, {"team_id": uuid.UUID(TEAM_A), "assignee_id": "a1"}, None),
    (ADMIN, T_A_A2, {"assignee_id": None, "team_id": None}, None),
    (SUP, T_B, {"status": "closed"}, None),
    # agents: any field on what they may write, except assignment
    (A1, T_A, {"status": "solved", "priority": "urgent", "add_tags": ["x"]}, None),
    (A1, T_B_A1, {"status": "solved"}, None),
    (A1, T_A, {"team_id": uuid.UUID(TEAM_A), "assignee_id": None}, None),  # nothing really changes
    # ... other teams' tickets: 404 whatever the change
    (A1, T_B, {"assignee_id": "a1", "team_id": uuid.UUID(TEAM_A)}, 404),
    (A1, T_B, {"status": "solved"}, 404),
    (A1, T_B, {}, 404),
    # take and release
    (A1, T_A, {"assignee_id": "a1"}, None),
    (A1, TRIAGE, {"assignee_id": "a1"}, None),
    (A1, ticket(TEAM_A, "a1"), {"assignee_id": None}, None),
    (A1, T_B_A1, {"assignee_id": None}, None),
    (A1, T_A_A2, {"assignee_id": "a1"}, 403),  # taking over a teammate's ticket
    (A1, T_A_A2, {"assignee_id": None}, 403),  # releasing someone else's
    (A1, TRIAGE_A2, {"assignee_id": "a1"}, 403),
    # giving to someone else
    (A1, T_A, {"assignee_id": "a2"}, 403),
    (A1, ticket(TEAM_A, "a1"), {"assignee_id": "b1"}, 403),
    (A1, TRIAGE, {"assignee_id": "a2"}, 403),
    # teams: triage into an own team only; never out of or between teams
    (A1, TRIAGE, {"team_id": uuid.UUID(TEAM_A)}, None),
    (A1, TRIAGE, {"team_id": TEAM_A, "assignee_id": "a1"}, None),
    (A1, TRIAGE, {"team_id": uuid.UUID(TEAM_B)}, 403),
    (A1, TRIAGE, {"team_id": uuid.UUID(TEAM_B), "assignee_id": "a1"}, 403),
    (A1, T_A, {"team_id": uuid.UUID(TEAM_B)}, 403),
    (A1, T_A, {"team_id": None}, 403),
    (AC, T_A, {"team_id": uuid.UUID(TEAM_C)}, 403),  # even between two of their own teams
    (A1, T_B_A1, {"team_id": uuid.UUID(TEAM_A)}, 403),
    (LONER, TRIAGE, {"team_id": uuid.UUID(TEAM_A)}, 403),
    (LONER, TRIAGE, {"assignee_id": "loner"}, None),
    # channels change no field, and see only their own tickets
    (KEY, TRIAGE, {"priority": "urgent"}, 403),
    (OTHER_KEY, TRIAGE, {"priority": "urgent"}, 404),
])
def test_who_changes_what(viewer, row, changes, answer):
    refusal = policy.check_change(viewer, row, changes)
    assert (refusal.status if refusal else None) == answer, refusal
    if answer == 403 and viewer.kind == "user":
        assert refusal.kind == "assignment-forbidden" and refusal.field in ("team_id", "assignee_id")


@pytest.mark.parametrize(("viewer", "team", "assignee", "answer"), [
    (KEY, None, None, None), (KEY, TEAM_A, None, 403), (KEY, None, "a1", 403),
    (A1, None, None, None), (A1, TEAM_A, None, None), (A1, TEAM_A, "a1", None), (A1, None, "a1", None),
    (A1, TEAM_B, None, 403), (A1, None, "a2", 403), (A1, TEAM_A, "a2", 403), (A1, TEAM_B, "a1", 403),
    (SUP, TEAM_B, "b1", None), (ADMIN, None, "anyone", None),
])
def test_who_creates_assigned_tickets(viewer, team, assignee, answer):
    refusal = policy.check_create(viewer, team_id=uuid.UUID(team) if team else None, assignee_id=assignee)
    assert (refusal.status if refusal else None) == answer


@pytest.mark.parametrize(("viewer", "source", "target", "answer"), [
    (A1, T_A, TRIAGE, None), (A1, T_B_A1, T_A, None),
    (A1, T_A, T_B, 404), (A1, T_B, T_A, 404), (SUP, T_A, T_B, None), (KEY, TRIAGE, TRIAGE, 403),
])
def test_merge_needs_write_access_to_both(viewer, source, target, answer):
    refusal = policy.check_merge(viewer, source, target)
    assert (refusal.status if refusal else None) == answer


@pytest.mark.parametrize(("principal", "scope"), [
    (Principal(kind="user", id="boss", role="supervisor"), {}),
    (Principal(kind="user", id="root", role="admin"), {}),
    (Principal(kind="user", id="a1", role="agent"), {"visible_to_agent": "a1"}),
    (Principal(kind="user", id="x", role=None), {"visible_to_agent": "x"}),
    (Principal(kind="channel", id="key-1", channel="web"), {"created_by": "channel:key-1"}),
])
def test_list_scope(principal, scope):
    assert policy.list_scope(principal) == scope
    assert policy.needs_teams(principal) is ("visible_to_agent" in scope)


def test_refusals_become_problems_that_hide_existence():
    problem = policy.NOT_FOUND.problem("t-1")
    assert (problem.status, problem.kind, problem.detail) == (404, "not-found", "No ticket t-1.")
    forbidden = policy.check_change(A1, T_A, {"assignee_id": "a2"}).problem("t-1")
    assert (forbidden.status, forbidden.kind, forbidden.extensions) == (403, "assignment-forbidden",
                                                                        {"field": "assignee_id"})


_ids = st.sampled_from(["a1", "a2", "b1", None])
_teams = st.sampled_from([TEAM_A, TEAM_B, TEAM_C, None])


@given(team=_teams, assignee=_ids, new_team=_teams, new_assignee=_ids, teams=st.sets(_teams.filter(bool)))
def test_an_allowed_change_never_hands_work_to_someone_else_nor_loses_sight_of_it(
        team, assignee, new_team, new_assignee, teams):
    """Laws: whatever an agent may do leaves the ticket assigned to nobody or to them, never
    changes a team it had, and (unless they released it) keeps it visible to them."""
    viewer = policy.Viewer(kind="user", id="a1", role="agent", team_ids=frozenset(teams))
    row = ticket(team, assignee)
    changes = {"team_id": new_team, "assignee_id": new_assignee}
    if policy.check_change(viewer, row, changes) is not None:
        return
    assert new_assignee in (None, "a1") or new_assignee == assignee
    assert new_team == team or team is None
    after = ticket(new_team, new_assignee)
    assert policy.may_read(viewer, after) or (assignee == "a1" and new_assignee is None)


@pytest.mark.parametrize("viewer", [ADMIN, SUP, A1, AC, LONER, ROLELESS, KEY, OTHER_KEY])
def test_a_deleted_ticket_is_nobodys_to_read_or_write(viewer):
    deleted = {**TRIAGE, "deleted_at": "2026-12-02T00:00:00Z"}
    assert policy.may_read(viewer, deleted) is False
    assert policy.check_write(viewer, deleted) is policy.NOT_FOUND


@pytest.mark.parametrize(("viewer", "row", "answer"), [
    (ADMIN, T_B, None), (SUP, T_B, None), (SUP, {**T_B, "deleted_at": "x"}, None),  # restore reaches it
    (A1, T_A, policy.DELETE_FORBIDDEN), (A1, TRIAGE, policy.DELETE_FORBIDDEN),  # may work it, not delete it
    (A1, {**T_A, "deleted_at": "x"}, policy.NOT_FOUND),  # once deleted: absent, like an id that names nothing
    (A1, T_B, policy.NOT_FOUND), (A1, {**T_B, "deleted_at": "x"}, policy.NOT_FOUND),  # existence stays private
    (ROLELESS, T_A, policy.DELETE_FORBIDDEN), (KEY, T_B, policy.DELETE_FORBIDDEN), (OTHER_KEY, T_B, policy.NOT_FOUND),
])
def test_who_deletes_and_restores(viewer, row, answer):
    assert policy.check_delete(viewer, row) is answer
