"""Timer lifecycle on the real database: ticket events through the handlers (as the consumer
applies them), the scheduler of the ``api`` app running alongside."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from helpdesk_common.identity import Principal
from helpdesk_common.testing import identity_headers, wait_for

ADMIN = identity_headers(Principal(kind="user", id="admin", role="admin"))
AGENT = identity_headers(Principal(kind="user", id="agent", role="agent"))
M = timedelta(minutes=1)


def now_s() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


async def create_policy(api, **body):
    body.setdefault("name", "p")
    r = await api.post("/v1/sla/policies", json=body, headers=ADMIN)
    assert r.status_code == 201, r.text
    return r.json()


def of_type(evts, kind):
    return [e for e in evts if e.type == kind]


async def test_pause_and_resume_carry_the_remaining_time(api, make, handle, timers, sla_events):
    await create_policy(api, targets={"first_response": {"minutes": 30}, "resolution": {"minutes": 120}})
    t = now_s()
    created = make.created(at=t)
    tid = created.data.ticket_id
    await handle(created, make.status(tid, "new", "pending", t + 10 * M))
    rows = await timers(tid)
    assert {m: (r["status"], r["consumed_s"], r["next_fire_at"]) for m, r in rows.items()} == {
        "first_response": ("paused", 600.0, None), "resolution": ("paused", 600.0, None)}
    await handle(make.status(tid, "pending", "open", t + 70 * M))
    rows = await timers(tid)
    assert rows["first_response"]["status"] == rows["resolution"]["status"] == "running"
    assert rows["first_response"]["due_at"] == t + 90 * M  # 20 minutes were left at the pause
    assert rows["resolution"]["due_at"] == t + 180 * M
    assert rows["resolution"]["next_fire_at"] == t + 70 * M + 50 * M  # the 50 % point: 60 min in, 10 before
    evts = await sla_events(tid)
    assert [e.type for e in evts] == ["sla.applied", "sla.applied", "sla.paused", "sla.paused",
                                      "sla.resumed", "sla.resumed"]
    paused = {e.data.metric: e.data.remaining_seconds for e in of_type(evts, "sla.paused")}
    assert paused == {"first_response": 1200.0, "resolution": 6600.0}
    resumed = {e.data.metric: e.data.due_at for e in of_type(evts, "sla.resumed")}
    assert resumed == {"first_response": t + 90 * M, "resolution": t + 180 * M}
    # a move between two pause statuses changes nothing; the status API shows the live state
    await handle(make.status(tid, "open", "on_hold", t + 80 * M), make.status(tid, "on_hold", "pending", t + 85 * M))
    status = (await api.get(f"/v1/sla/tickets/{tid}", headers=ADMIN)).json()
    metrics = {m["metric"]: m for m in status["metrics"]}
    assert metrics["resolution"]["state"] == "paused" and metrics["resolution"]["due_at"] is None
    assert metrics["resolution"]["remaining_seconds"] == 7200 - 600 - 600
    assert metrics["resolution"]["colour"] == "green"


async def test_priority_and_tag_changes_recalculate_keeping_consumed_time(api, make, handle, timers, sla_events):
    await create_policy(api, name="urgent", conditions={"priority": ["urgent"]},
                        targets={"first_response": {"minutes": 60}})
    await create_policy(api, name="outage", conditions={"tags": ["outage"]},
                        targets={"first_response": {"minutes": 15}})
    t = now_s() - 45 * M  # the events happened over the last 45 minutes
    created = make.created(at=t, priority="normal")
    tid = created.data.ticket_id
    await handle(created)
    assert (await timers(tid))["first_response"]["due_at"] == t + 480 * M  # nothing matches: the default
    await handle(make.updated(tid, t + 30 * M, priority=("normal", "urgent")))
    row = (await timers(tid))["first_response"]
    assert (row["policy"], row["target_minutes"], row["due_at"]) == ("urgent", 60, t + 60 * M)
    assert row["consumed_s"] == 1800.0 and row["running_since"] == t + 30 * M
    await handle(make.updated(tid, t + 35 * M, priority=("urgent", "low")))  # matching on the projection: default
    row = (await timers(tid))["first_response"]
    assert (row["policy"], row["due_at"]) == ("default", t + 1440 * M)
    await handle(make.updated(tid, t + 40 * M, tags=([], ["outage", "vip"])))
    row = (await timers(tid))["first_response"]
    # 15-minute target with 40 minutes used: overdue, so its due time is the re-target moment
    assert (row["policy"], row["due_at"]) == ("outage", t + 40 * M)
    await wait_for(lambda: _status(timers, tid, "first_response", "breached"), timeout=10)
    applied = [e.data.due_at for e in of_type(await sla_events(tid), "sla.applied")]
    assert applied == [t + 480 * M, t + 60 * M, t + 1440 * M, t + 40 * M]


async def _status(timers, tid, metric, state):
    return (await timers(tid))[metric]["status"] == state


async def test_policy_and_calendar_edits_recalculate_live_timers(api, make, handle, timers):
    calendar = (await api.post("/v1/sla/calendars", headers=ADMIN, json={
        "name": "all week", "timezone": "UTC", "weekly_hours": {d: [["00:00", "24:00"]] for d in
                                                                ("mon", "tue", "wed", "thu", "fri", "sat", "sun")},
    })).json()
    policy = await create_policy(api, targets={"first_response": {"minutes": 480},
                                               "resolution": {"minutes": 600, "time": "business",
                                                              "calendar_id": calendar["id"]}})
    t = now_s()
    created = make.created(at=t)
    tid = created.data.ticket_id
    await handle(created)
    assert (await timers(tid))["resolution"]["due_at"] == t + 600 * M
    body = {k: policy[k] for k in ("name", "conditions", "targets", "pause_statuses", "warning_fractions")}
    body["targets"] = {**body["targets"], "first_response": {"minutes": 120}}
    r = await api.put(f"/v1/sla/policies/{policy['id']}", json=body, headers={**ADMIN, "If-Match": 'W/"1"'})
    assert r.status_code == 200 and r.headers["etag"] == 'W/"2"'

    async def first_response_retargeted():
        row = (await timers(tid))["first_response"]
        return row["target_minutes"] == 120 and row["due_at"] < t + 125 * M
    await wait_for(first_response_retargeted, timeout=15)
    # the calendar now has no Sunday-to-Saturday hours except 00:00-00:01 each day: the due time moves far out
    r = await api.put(f"/v1/sla/calendars/{calendar['id']}", headers=ADMIN, json={
        "name": "all week", "timezone": "UTC", "weekly_hours": {d: [["00:00", "00:01"]] for d in
                                                                ("mon", "tue", "wed", "thu", "fri", "sat", "sun")},
    })
    assert r.status_code == 200, r.text

    async def resolution_moved():
        return (await timers(tid))["resolution"]["due_at"] > t + timedelta(days=100)
    await wait_for(resolution_moved, timeout=15)


async def test_solve_fulfils_resolution_and_reopen_starts_a_fresh_cycle(api, make, handle, timers, sla_events):
    await create_policy(api, targets={"first_response": {"minutes": 30}, "next_response": {"minutes": 60},
                                      "periodic_update": {"minutes": 240}, "resolution": {"minutes": 240}})
    t = now_s()
    created = make.created(at=t)
    tid = created.data.ticket_id
    await handle(created)
    await handle(make.message(tid, t + 2 * M))  # customer again before the first response: no next_response
    assert set(await timers(tid)) == {"first_response", "resolution"}
    await handle(make.message(tid, t + 5 * M, author="agent", first_response=True, response=True))
    rows = await timers(tid)
    assert rows["first_response"]["status"] == "fulfilled"
    assert rows["periodic_update"]["status"] == "running"  # started by the first public agent reply
    await handle(make.message(tid, t + 10 * M))
    assert (await timers(tid))["next_response"]["due_at"] == t + 70 * M
    await handle(make.message(tid, t + 12 * M))  # still waiting: the clock keeps its start
    assert (await timers(tid))["next_response"]["due_at"] == t + 70 * M
    await handle(make.message(tid, t + 20 * M, author="agent", public=False))  # internal note: not a response
    assert (await timers(tid))["next_response"]["status"] == "running"
    await handle(make.message(tid, t + 25 * M, author="agent", response=True))
    rows = await timers(tid)
    assert rows["next_response"]["status"] == "fulfilled"
    assert (rows["periodic_update"]["cycle"], rows["periodic_update"]["due_at"]) == (2, t + 265 * M)
    await handle(make.status(tid, "open", "solved", t + 30 * M))
    rows = await timers(tid)
    assert rows["resolution"]["status"] == "fulfilled" and rows["resolution"]["fulfilled_at"] == t + 30 * M
    assert rows["periodic_update"]["status"] == "cancelled"
    await handle(make.status(tid, "solved", "open", t + 50 * M))
    rows = await timers(tid)
    assert (rows["resolution"]["status"], rows["resolution"]["cycle"]) == ("running", 2)
    assert rows["resolution"]["due_at"] == t + 290 * M  # a fresh 240-minute target from the reopening
    await handle(make.message(tid, t + 51 * M))  # the customer's message that came with the reopening
    assert (await timers(tid))["next_response"]["status"] == "running"
    await handle(make.status(tid, "open", "closed", t + 60 * M))
    rows = await timers(tid)
    assert {m: r["status"] for m, r in rows.items()} == {
        "first_response": "fulfilled", "next_response": "cancelled", "periodic_update": "cancelled",
        "resolution": "cancelled"}
    types = [e.type for e in await sla_events(tid)]
    assert types.count("sla.fulfilled") == 4 and types.count("sla.cancelled") == 3

    r = await api.get("/v1/sla/compliance", params={"from": (t - M).isoformat(), "to": (t + 2 * 60 * M).isoformat()},
                      headers=AGENT)
    assert r.status_code == 200, r.text
    assert r.json()["metrics"] == {
        "first_response": {"fulfilled_on_time": 1, "breached": 0, "compliance_pct": 100.0},
        "next_response": {"fulfilled_on_time": 1, "breached": 0, "compliance_pct": 100.0},
        "periodic_update": {"fulfilled_on_time": 1, "breached": 0, "compliance_pct": 100.0},
        "resolution": {"fulfilled_on_time": 1, "breached": 0, "compliance_pct": 100.0},
    }


async def test_merge_cancels_and_a_breach_requests_the_escalation(api, make, handle, timers, sla_events, db):
    team = "2b9f8a3c-1d5e-4f6a-9b7c-0d1e2f3a4b5c"
    await create_policy(api, targets={"first_response": {"minutes": 1}, "resolution": {"minutes": 600}},
                        escalations={"first_response": {"set_priority": "urgent", "set_team_id": team,
                                                        "notify": ["supervisor"]}})
    t = now_s()
    created = make.created(at=t - 2 * M)  # arrives late: already past its one-minute target
    tid = created.data.ticket_id
    await handle(created)
    await wait_for(lambda: _status(timers, tid, "first_response", "breached"), timeout=10)
    evts = await sla_events(tid)
    breach, escalation = of_type(evts, "sla.breached"), of_type(evts, "sla.escalation_requested")
    assert len(breach) == 1 and breach[0].data.metric == "first_response"
    assert [e.data.actions.model_dump(mode="json") for e in escalation] == [
        {"set_priority": "urgent", "set_team_id": team, "notify": ["supervisor"]}]
    assert not of_type(evts, "sla.warning")  # all warnings were behind the breach: skipped, not sent late
    status = {m["metric"]: m for m in (await api.get(f"/v1/sla/tickets/{tid}", headers=ADMIN)).json()["metrics"]}
    assert status["first_response"]["colour"] == "breached" and status["first_response"]["remaining_seconds"] < -59
    # the agent had answered in time; the consumer only delivered it after the breach: the outcome is corrected
    await handle(make.message(tid, t - 90 * timedelta(seconds=1), author="agent", first_response=True))
    async with db.connect() as conn:
        outcome = await conn.scalar(text("SELECT outcome FROM sla_outcomes WHERE ticket_id = :t"), {"t": tid})
    assert outcome == "fulfilled"
    merged = make.status(tid, "new", "closed", t)  # merging closes the source ticket
    await handle(merged)
    rows = await timers(tid)
    assert rows["resolution"]["status"] == "cancelled" and rows["first_response"]["status"] == "breached"


async def test_a_late_solve_is_recorded_and_a_reopen_starts_resolution_afresh(api, make, handle, timers, sla_events):
    await create_policy(api, targets={"resolution": {"minutes": 1}}, warning_fractions=[])
    t = now_s()
    created = make.created(at=t - 3 * M)
    tid = created.data.ticket_id
    await handle(created)
    await wait_for(lambda: _status(timers, tid, "resolution", "breached"), timeout=10)
    await handle(make.status(tid, "open", "solved", t))
    row = (await timers(tid))["resolution"]
    assert (row["status"], row["fulfilled_at"]) == ("breached", t)
    fulfilled = of_type(await sla_events(tid), "sla.fulfilled")
    assert [(e.data.metric, e.data.breached) for e in fulfilled] == [("resolution", True)]
    await handle(make.status(tid, "solved", "open", t + M))
    row = (await timers(tid))["resolution"]
    assert (row["status"], row["cycle"], row["due_at"], row["fulfilled_at"]) == ("running", 2, t + 2 * M, None)


async def test_a_policy_edit_that_changes_pause_statuses_pauses_and_resumes_live_timers(api, make, handle, timers):
    policy = await create_policy(api, targets={"resolution": {"minutes": 600}}, pause_statuses=["pending"])
    t = now_s()
    waiting, held = make.created(at=t), make.created(at=t)
    await handle(waiting, held, make.status(waiting.data.ticket_id, "new", "pending", t),
                 make.status(held.data.ticket_id, "new", "on_hold", t))
    assert (await timers(waiting.data.ticket_id))["resolution"]["status"] == "paused"
    assert (await timers(held.data.ticket_id))["resolution"]["status"] == "running"
    body = {k: policy[k] for k in ("name", "conditions", "targets", "warning_fractions")}
    r = await api.put(f"/v1/sla/policies/{policy['id']}", json={**body, "pause_statuses": ["on_hold"]},
                      headers=ADMIN)
    assert r.status_code == 200, r.text

    async def swapped():
        return ((await timers(waiting.data.ticket_id))["resolution"]["status"] == "running"
                and (await timers(held.data.ticket_id))["resolution"]["status"] == "paused")
    await wait_for(swapped, timeout=15)


async def test_customer_tier_and_custom_fields_choose_the_policy_and_a_tier_change_retargets(api, make, handle, timers):
    """ticket-svc sends the tier and custom fields on ticket.created and the tier again on
    ticket.updated when customer-svc changes it; conditions compare tiers case-folded."""
    await create_policy(api, name="vip", conditions={"customer_tier": ["VIP"]},
                        targets={"first_response": {"minutes": 30}})
    await create_policy(api, name="enterprise", conditions={"custom_fields": {"plan": ["enterprise"]}},
                        targets={"first_response": {"minutes": 120}})
    t = now_s() - 20 * M
    vip = make.created(at=t, customer_tier="vip")
    plan = make.created(at=t, custom_fields={"plan": "enterprise"})
    plain = make.created(at=t)
    await handle(vip, plan, plain)
    assert (await timers(vip.data.ticket_id))["first_response"]["policy"] == "vip"
    assert (await timers(plan.data.ticket_id))["first_response"]["policy"] == "enterprise"
    assert (await timers(plain.data.ticket_id))["first_response"]["policy"] == "default"

    # customer-svc makes the plain ticket's customer a VIP ten minutes in: re-targeted, time kept
    tid = plain.data.ticket_id
    await handle(make.updated(tid, t + 10 * M, customer_tier=(None, "vip")))
    row = (await timers(tid))["first_response"]
    assert (row["policy"], row["target_minutes"], row["due_at"]) == ("vip", 30, t + 30 * M)
    assert row["consumed_s"] == 600.0
    # and back: the tier is cleared, the default target returns
    await handle(make.updated(tid, t + 15 * M, customer_tier=("vip", None)))
    assert (await timers(tid))["first_response"]["policy"] == "default"


def assigned(ticket_id, at, team_id, previous_team_id=None):
    from helpdesk_common import events as ev

    return ev.TicketAssigned(source="test", subject=str(ticket_id), data=ev.TicketAssignedData(
        ticket_id=ticket_id, team_id=team_id, previous_team_id=previous_team_id, reason="manual", assigned_at=at))


def step(kind, ticket_id, key, at):
    import uuid as _uuid

    from helpdesk_common import events as ev

    if kind == "started":
        return ev.TicketStepStarted(source="test", subject=str(ticket_id), data=ev.TicketStepStartedData(
            ticket_id=ticket_id, step_id=_uuid.uuid5(_uuid.NAMESPACE_URL, key), step=key, started_at=at))
    return ev.TicketStepCompleted(source="test", subject=str(ticket_id), data=ev.TicketStepCompletedData(
        ticket_id=ticket_id, step_id=_uuid.uuid5(_uuid.NAMESPACE_URL, key), step=key, outcome="approved",
        completed_at=at))


async def test_business_targets_without_a_calendar_count_in_the_teams_calendar(api, make, handle, timers):
    import uuid as _uuid

    # one working minute a day: 600 business minutes end more than a year out
    sparse = (await api.post("/v1/sla/calendars", headers=ADMIN, json={
        "name": "a minute a day", "timezone": "Asia/Shanghai",
        "weekly_hours": {d: [["09:00", "09:01"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")},
    })).json()
    team, other_team = _uuid.uuid4(), _uuid.uuid4()
    r = await api.put(f"/v1/sla/teams/{team}/calendar", json={"calendar_id": sparse["id"]}, headers=ADMIN)
    assert r.status_code == 200, r.text
    assert r.json()["calendar_id"] == sparse["id"]
    got = await api.get(f"/v1/sla/teams/{team}/calendar", headers=AGENT)
    assert got.status_code == 200 and got.json()["team_id"] == str(team)
    assert (await api.get(f"/v1/sla/teams/{other_team}/calendar", headers=AGENT)).status_code == 404
    await create_policy(api, targets={"resolution": {"minutes": 600, "time": "business"}})

    t = now_s()
    in_team = make.created(at=t, team_id=team)
    no_team = make.created(at=t)
    await handle(in_team, no_team)
    row = (await timers(in_team.data.ticket_id))["resolution"]
    assert str(row["calendar_id"]) == sparse["id"] and row["due_at"] > t + timedelta(days=365)
    row = (await timers(no_team.data.ticket_id))["resolution"]
    assert row["calendar_id"] is None and row["due_at"] == t + 600 * M  # no team calendar: calendar time

    # moving tickets between teams re-targets them, keeping the time already used
    await handle(assigned(no_team.data.ticket_id, t + 10 * M, team),
                 assigned(in_team.data.ticket_id, t + 10 * M, other_team, previous_team_id=team))
    moved_in = (await timers(no_team.data.ticket_id))["resolution"]
    assert str(moved_in["calendar_id"]) == sparse["id"] and moved_in["consumed_s"] == 600.0
    assert moved_in["due_at"] > t + timedelta(days=365)
    moved_out = (await timers(in_team.data.ticket_id))["resolution"]
    assert moved_out["calendar_id"] is None and moved_out["due_at"] == t + 10 * M + 600 * M  # ~0 business s used

    # removing the team's calendar re-targets its live timers (the recalculation sweep)
    assert (await api.delete(f"/v1/sla/teams/{team}/calendar", headers=ADMIN)).status_code == 204
    assert (await api.get(f"/v1/sla/teams/{team}/calendar", headers=AGENT)).status_code == 404

    async def back_in_calendar_time():
        return (await timers(no_team.data.ticket_id))["resolution"]["calendar_id"] is None
    await wait_for(back_in_calendar_time, timeout=15)

    # bad requests
    r = await api.put(f"/v1/sla/teams/{team}/calendar", json={"calendar_id": str(_uuid.uuid4())}, headers=ADMIN)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "body.calendar_id"
    r = await api.put(f"/v1/sla/teams/{team}/calendar", json={"calendar_id": sparse["id"]}, headers=AGENT)
    assert r.status_code == 403
    r = await api.put(f"/v1/sla/teams/{team}/calendar", json={"calendar": sparse["id"]}, headers=ADMIN)
    assert r.status_code == 422
    assert (await api.delete(f"/v1/sla/teams/{team}/calendar", headers=ADMIN)).status_code == 404


async def test_workflow_steps_have_their_own_targets(api, make, handle, timers, sla_events):
    await create_policy(api, targets={"resolution": {"minutes": 600}, "step:approval": {"minutes": 60}},
                        escalations={"step:approval": {"notify": ["supervisor"]}})
    t = now_s()
    created = make.created(at=t)
    tid = created.data.ticket_id
    await handle(created, step("started", tid, "approval", t), step("started", tid, "legal_review", t))
    rows = await timers(tid)
    assert set(rows) == {"resolution", "step:approval"}  # no target for legal_review: not timed
    assert rows["step:approval"]["due_at"] == t + 60 * M and rows["step:approval"]["status"] == "running"
    assert rows["step:approval"]["escalation"] == {"set_priority": None, "set_team_id": None, "notify": ["supervisor"]}

    await handle(step("completed", tid, "approval", t + 30 * M))
    assert (await timers(tid))["step:approval"]["status"] == "fulfilled"
    # a second approval round is a new cycle with the full target; it pauses with the ticket
    await handle(step("started", tid, "approval", t + 40 * M))
    again = (await timers(tid))["step:approval"]
    assert again["status"] == "running" and again["due_at"] == t + 100 * M and again["cycle"] == 2
    await handle(make.status(tid, "open", "pending", t + 50 * M))
    assert (await timers(tid))["step:approval"]["status"] == "paused"
    await handle(make.status(tid, "pending", "solved", t + 55 * M))
    assert (await timers(tid))["step:approval"]["status"] == "cancelled"

    evts = await sla_events(tid)
    applied = [e.data.metric for e in evts if e.type == "sla.applied"]
    assert applied == ["resolution", "step:approval", "step:approval"]
    [fulfilled] = [e for e in evts if e.type == "sla.fulfilled" and e.data.metric == "step:approval"]
    assert fulfilled.data.breached is False
    r = await api.get("/v1/sla/compliance", params={"from": (t - M).isoformat(), "to": (t + 600 * M).isoformat()},
                      headers=AGENT)
    assert r.status_code == 200
    assert r.json()["metrics"]["step:approval"] == {"fulfilled_on_time": 1, "breached": 0, "compliance_pct": 100.0}


async def test_a_deleted_ticket_restored_starts_resolution_afresh(api, make, handle, timers, sla_events):
    """Deleting closes the ticket (every live timer cancelled); a restore is the one way out of
    closed: a fresh resolution cycle, paused at once when the status it gets back pauses, and a
    first response still owed when the ticket was deleted is owed again from the restore."""
    await create_policy(api, targets={"first_response": {"minutes": 30}, "resolution": {"minutes": 120}})
    t = now_s()
    for restored_to, expected in (("open", "running"), ("pending", "paused")):
        created = make.created(at=t)
        tid = created.data.ticket_id
        await handle(created, make.status(tid, "new", restored_to, t + M))
        await handle(make.status(tid, restored_to, "closed", t + 10 * M, reason="deleted"))  # the deletion
        assert {r["status"] for r in (await timers(tid)).values()} == {"cancelled"}
        await handle(make.status(tid, "closed", restored_to, t + 20 * M, reason="restored"))  # the restore
        rows = await timers(tid)
        assert (rows["resolution"]["status"], rows["resolution"]["cycle"]) == (expected, 2), restored_to
        assert rows["first_response"]["status"] == expected, restored_to
        if expected == "running":
            assert rows["resolution"]["due_at"] == t + 140 * M  # the full 120 minutes from the restore
            assert rows["first_response"]["due_at"] == t + 50 * M  # the full 30 minutes from the restore


async def test_a_restored_ticket_already_answered_is_not_asked_for_a_first_response_again(
        api, make, handle, timers):
    await create_policy(api, targets={"first_response": {"minutes": 30}, "resolution": {"minutes": 120}})
    t = now_s()
    created = make.created(at=t)
    tid = created.data.ticket_id
    await handle(created, make.message(tid, t + 5 * M, author="agent", first_response=True),
                 make.status(tid, "new", "closed", t + 10 * M, reason="deleted"),
                 make.status(tid, "closed", "open", t + 20 * M, reason="restored"))
    rows = await timers(tid)
    assert rows["first_response"]["status"] == "fulfilled" and rows["resolution"]["status"] == "running"


async def test_a_new_tickets_timers_carry_the_generation_read_with_its_projection(make, handle, timers, db):
    """ticket.created reads the recalculation generation in the projection's own statement: timers
    started after a policy or calendar write carry the new generation (the sweep leaves them
    alone), and a replayed event, which inserts nothing, reads it on its own."""
    from sla_svc.tickets import repository as tickets
    from sla_svc.timers import repository

    async with db.begin() as conn:
        before = await repository.current_generation(conn)
        bumped = await repository.bump_generation(conn)
    assert bumped == before + 1
    created = make.created()
    await handle(created)
    started = await timers(created.data.ticket_id)
    assert started and {row["generation"] for row in started.values()} == {bumped}
    d = created.data
    async with db.begin() as conn:
        row, generation = await tickets.upsert_created(
            conn, ticket_id=d.ticket_id, status="open", priority="urgent", type=None, channel="api", tags=[],
            customer_tier=None, custom_fields={}, team_id=None, assignee_id=None, created_at=d.created_at)
    assert (row.status, row.priority, generation) == ("new", "normal", bumped)
