"""Workflow steps timed against their own targets (issue 12): ``ticket.step_started`` carries
the step's ``target_minutes`` from its process definition; sla-svc times ``step:<key>`` against
it when the ticket's policy names no target for the step (the policy's target wins), on the
clock of the policy's resolution target, and reports each step's time against its target."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from helpdesk_common import events as ev
from helpdesk_common.identity import Principal
from helpdesk_common.testing import identity_headers

ADMIN = identity_headers(Principal(kind="user", id="admin", role="admin"))
AGENT = identity_headers(Principal(kind="user", id="agent", role="agent"))
M = timedelta(minutes=1)
#: a Monday in the future, 08:00 in Shanghai: nothing here falls due while the test runs
MONDAY = datetime(2030, 1, 7, 0, 0, tzinfo=UTC)


def started(ticket_id, key, at, *, target_minutes=None, kind="approval"):
    return ev.TicketStepStarted(source="test", subject=str(ticket_id), data=ev.TicketStepStartedData(
        ticket_id=ticket_id, step_id=uuid.uuid5(uuid.NAMESPACE_URL, key), step=key, kind=kind,
        target_minutes=target_minutes, process_version=1, started_at=at))


def completed(ticket_id, key, at, outcome="completed"):
    return ev.TicketStepCompleted(source="test", subject=str(ticket_id), data=ev.TicketStepCompletedData(
        ticket_id=ticket_id, step_id=uuid.uuid5(uuid.NAMESPACE_URL, key), step=key, outcome=outcome,
        completed_at=at))


async def create_policy(api, **body):
    body.setdefault("name", "p")
    r = await api.post("/v1/sla/policies", json=body, headers=ADMIN)
    assert r.status_code == 201, r.text
    return r.json()


async def report(api, ticket_id):
    r = await api.get(f"/v1/sla/tickets/{ticket_id}", headers=ADMIN)  # agents: test_ticket_access.py
    assert r.status_code == 200, r.text
    return {m["metric"]: m for m in r.json()["metrics"]}


def z(instant):
    return instant.isoformat().replace("+00:00", "Z")


async def test_a_step_without_a_policy_target_is_timed_against_its_own(api, make, handle, timers, sla_events):
    created = make.created(at=MONDAY)
    tid = created.data.ticket_id
    await handle(created, started(tid, "approval", MONDAY, target_minutes=45),
                 started(tid, "legal_review", MONDAY))  # no target anywhere: not timed
    rows = await timers(tid)
    assert "step:legal_review" not in rows
    row = rows["step:approval"]
    assert (row["target_minutes"], row["target_from"], row["calendar_id"], row["due_at"]) == (
        45, "step", None, MONDAY + 45 * M)  # the default policy has no resolution target: calendar time

    await handle(completed(tid, "approval", MONDAY + 30 * M))
    step = (await report(api, tid))["step:approval"]
    assert {k: step[k] for k in ("state", "target_minutes", "target_from", "time", "started_at", "completed_at",
                                 "elapsed_seconds", "elapsed_business_seconds", "counted_seconds", "outcome")} == {
        "state": "fulfilled", "target_minutes": 45, "target_from": "step", "time": "calendar",
        "started_at": z(MONDAY), "completed_at": z(MONDAY + 30 * M), "elapsed_seconds": 1800.0,
        "elapsed_business_seconds": None, "counted_seconds": 1800.0, "outcome": "achieved"}
    [fulfilled] = [e for e in await sla_events(tid) if e.type == "sla.fulfilled"]
    assert (fulfilled.data.metric, fulfilled.data.breached) == ("step:approval", False)


async def test_the_policys_step_target_wins_over_the_definitions(api, make, handle, timers):
    await create_policy(api, targets={"step:approval": {"minutes": 60}})
    created = make.created(at=MONDAY)
    tid = created.data.ticket_id
    await handle(created, started(tid, "approval", MONDAY, target_minutes=45))
    row = (await timers(tid))["step:approval"]
    assert (row["target_minutes"], row["target_from"], row["due_at"]) == (60, "policy", MONDAY + 60 * M)


async def test_a_step_counts_business_time_when_the_ticket_resolution_does(api, make, handle, timers):
    cal = (await api.post("/v1/sla/calendars", headers=ADMIN, json={
        "name": "上海", "timezone": "Asia/Shanghai",
        "weekly_hours": {d: [["09:00", "12:00"], ["13:00", "18:00"]] for d in ("mon", "tue", "wed", "thu", "fri")},
    })).json()
    await create_policy(api, targets={"resolution": {"minutes": 2400, "time": "business", "calendar_id": cal["id"]}})
    created = make.created(at=MONDAY)
    tid = created.data.ticket_id
    # 08:00 in Shanghai: counting starts at 09:00, so 150 business minutes end at 11:30
    await handle(created, started(tid, "approval", MONDAY, target_minutes=150))
    row = (await timers(tid))["step:approval"]
    assert (row["target_from"], str(row["calendar_id"])) == ("step", cal["id"])
    assert row["due_at"] == MONDAY + 3 * 60 * M + 30 * M  # 11:30 in Shanghai

    # a priority change re-targets the ticket: the step keeps its own target instead of being cancelled
    await handle(make.updated(tid, MONDAY + 60 * M, priority=("normal", "high")))
    row = (await timers(tid))["step:approval"]
    assert (row["status"], row["target_minutes"], row["target_from"]) == ("running", 150, "step")
    assert row["due_at"] == MONDAY + 3 * 60 * M + 30 * M

    # done at 14:00 in Shanghai, late: 09:00-12:00 and 13:00-14:00 counted
    await handle(completed(tid, "approval", MONDAY + 6 * 60 * M))
    step = (await report(api, tid))["step:approval"]
    assert (step["time"], step["elapsed_seconds"], step["elapsed_business_seconds"], step["counted_seconds"],
            step["outcome"]) == ("business", 6 * 3600.0, 4 * 3600.0, 4 * 3600.0, "breached")


async def test_a_skipped_or_cancelled_step_cancels_its_timer_and_has_no_verdict(api, make, handle, timers, sla_events):
    created = make.created(at=MONDAY)
    tid = created.data.ticket_id
    await handle(created, started(tid, "approval", MONDAY, target_minutes=45),
                 completed(tid, "approval", MONDAY + 5 * M, outcome="cancelled"))
    step = (await report(api, tid))["step:approval"]
    assert (step["state"], step["completed_at"], step["outcome"], step["elapsed_seconds"]) == (
        "cancelled", z(MONDAY + 5 * M), None, 300.0)
    assert [e.data.reason for e in await sla_events(tid) if e.type == "sla.cancelled"] == ["cancelled"]
    r = await api.get("/v1/sla/compliance", params={"from": z(MONDAY - M), "to": z(MONDAY + 60 * M)}, headers=AGENT)
    assert "step:approval" not in r.json()["metrics"]


async def test_the_customer_confirmation_started_by_the_solve_keeps_running(api, make, handle, timers):
    for order in ("status first", "step first"):
        created = make.created(at=MONDAY)
        tid = created.data.ticket_id
        solved = make.status(tid, "open", "solved", MONDAY + 60 * M)
        confirm = started(tid, "confirm", MONDAY + 60 * M, target_minutes=3 * 24 * 60, kind="customer_confirmation")
        earlier = started(tid, "review", MONDAY + 10 * M, target_minutes=600, kind="task")
        await handle(created, earlier, *((solved, confirm) if order == "status first" else (confirm, solved)))
        rows = await timers(tid)
        assert rows["step:confirm"]["status"] == "running", order
        assert rows["step:confirm"]["due_at"] == MONDAY + 60 * M + timedelta(days=3)
        assert rows["step:review"]["status"] == "cancelled", order  # running before the solve: as before
        await handle(completed(tid, "confirm", MONDAY + 120 * M, outcome="confirmed"))
        assert (await timers(tid))["step:confirm"]["status"] == "fulfilled"
        await handle(make.status(tid, "solved", "closed", MONDAY + 121 * M))
        closed_step = started(tid, "late", MONDAY + 122 * M, target_minutes=5)
        await handle(closed_step)
        assert "step:late" not in await timers(tid)  # a closed ticket times nothing


# -- the pure pieces ------------------------------------------------------------------------


def test_outcome_counted_time_and_the_step_a_solve_starts():
    from sla_svc.policies import matching
    from sla_svc.timers import plan
    from sla_svc.timers.clock import CALENDAR_TIME

    due = MONDAY + 60 * M
    assert plan.outcome(status="running", due_at=due, fulfilled_at=None) is None
    assert plan.outcome(status="cancelled", due_at=due, fulfilled_at=None) is None
    assert plan.outcome(status="fulfilled", due_at=due, fulfilled_at=due) == "achieved"  # the due instant is in time
    assert plan.outcome(status="fulfilled", due_at=due, fulfilled_at=due + timedelta(microseconds=1)) == "breached"
    assert plan.outcome(status="breached", due_at=due, fulfilled_at=None) == "breached"
    # breached by the scheduler, but the reply's own time proves it came in time
    assert plan.outcome(status="breached", due_at=due, fulfilled_at=due - M) == "achieved"

    running = dict(consumed_s=120.0, running_since=MONDAY, ended_at=MONDAY + 10 * M)
    assert plan.counted_seconds(CALENDAR_TIME, paused_at=None, **running) == 720.0
    assert plan.counted_seconds(CALENDAR_TIME, paused_at=MONDAY + 5 * M, **running) == 120.0  # paused: spell folded
    assert plan.counted_seconds(CALENDAR_TIME, consumed_s=0.0, running_since=None, paused_at=None,
                                ended_at=MONDAY) == 0.0

    assert plan.started_by("step:confirm", MONDAY, MONDAY) and plan.started_by("step:confirm", MONDAY + M, MONDAY)
    assert not plan.started_by("step:review", MONDAY - M, MONDAY)
    assert not plan.started_by("next_response", MONDAY + M, MONDAY)  # only steps

    calendar_id = uuid.uuid4()
    business = matching.Policy(id=None, name="b", conditions={}, targets={
        "resolution": matching.Target(minutes=600, calendar_id=calendar_id, business=True)})
    calendar = matching.Policy(id=None, name="c", conditions={}, targets={"resolution": matching.Target(minutes=600)})
    bare = matching.Policy(id=None, name="d", conditions={}, targets={})
    assert matching.step_target(business, 45) == matching.Target(minutes=45, calendar_id=calendar_id, business=True)
    assert matching.step_target(calendar, 45) == matching.step_target(bare, 45) == matching.Target(minutes=45)
