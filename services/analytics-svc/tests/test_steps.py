"""Process steps in analytics (issue 12): step events fold into one row per run in any order,
a re-published event changes nothing, and ``GET /v1/analytics/steps`` gives per step key the
count, median / p90 duration, rejection rate and the runs open now, per ticket type and window."""

import random
import uuid
from datetime import UTC, datetime, timedelta

from analytics_svc.kpis import handlers as kpis
from analytics_svc.steps import handlers
from helpdesk_common import events
from helpdesk_common.identity import Principal
from helpdesk_common.testing import identity_headers

# an admin: supervisors and agents are scoped by team (ticket-svc lookups; tests/reports/)
ADMIN = identity_headers(Principal(kind="user", id="u1", role="admin"))
CHANNEL = identity_headers(Principal(kind="channel", id="k", channel="api"))
T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
H = timedelta(hours=1)


def created(ticket_id, ticket_type):
    return events.TicketCreated(source="ticket-svc", subject=str(ticket_id), data=events.TicketCreatedData(
        ticket_id=ticket_id, subject="退款 refund", status="new", priority="normal", type=ticket_type, channel="api",
        requester=events.Requester(email="a@b.co"), created_by="channel:k", created_at=T0))


def retyped(ticket_id, before, after):
    return events.TicketUpdated(source="ticket-svc", subject=str(ticket_id), data=events.TicketUpdatedData(
        ticket_id=ticket_id, changes={"type": {"before": before, "after": after}}))


def started(ticket_id, step_id, key, at, kind="approval"):
    return events.TicketStepStarted(source="ticket-svc", subject=str(ticket_id), data=events.TicketStepStartedData(
        ticket_id=ticket_id, step_id=step_id, step=key, kind=kind, target_minutes=60, process_version=2,
        started_at=at))


def completed(ticket_id, step_id, key, at, outcome="completed"):
    return events.TicketStepCompleted(source="ticket-svc", subject=str(ticket_id), data=events.TicketStepCompletedData(
        ticket_id=ticket_id, step_id=step_id, step=key, outcome=outcome, completed_at=at))


def decided(ticket_id, step_id, key, who, decision, status, at):
    return events.TicketApprovalDecided(source="ticket-svc", subject=str(ticket_id),
                                        data=events.TicketApprovalDecidedData(
                                            ticket_id=ticket_id, step_id=step_id, step=key, kind="approval",
                                            decision=decision, decided_by=who, step_status=status, decided_at=at))


HANDLERS = {**handlers.HANDLERS, "ticket.created": kpis.handle_ticket_created,
            "ticket.updated": kpis.handle_ticket_updated}


async def fold(raw, *evts):
    for e in evts:
        async with raw.transaction():
            await HANDLERS[e.type](raw, e)


def refund_runs():
    """Five refund tickets' approvals (1, 2, 3, 4 hours and one still open; the 3-hour one
    rejected by the second approver) and a confirmation step; one complaint ticket."""
    evts, open_step = [], None
    for i, hours in enumerate((1, 2, 3, 4, None)):
        tid, sid = uuid.uuid4(), uuid.uuid4()
        evts.append([created(tid, "refund"), started(tid, sid, "approval", T0 + i * H)])
        if hours == 3:
            evts[-1] += [decided(tid, sid, "approval", "alice", "approve", "pending", T0 + i * H + H),
                         decided(tid, sid, "approval", "bob", "reject", "rejected", T0 + i * H + 3 * H),
                         completed(tid, sid, "approval", T0 + i * H + 3 * H, outcome="rejected")]
        elif hours is not None:
            evts[-1] += [decided(tid, sid, "approval", "alice", "approve", "completed", T0 + i * H + hours * H),
                         completed(tid, sid, "approval", T0 + i * H + hours * H)]
            cid = uuid.uuid4()
            evts[-1] += [started(tid, cid, "confirm", T0 + i * H + hours * H, kind="customer_confirmation"),
                         completed(tid, cid, "confirm", T0 + i * H + hours * H + 30 * 60 * timedelta(seconds=1),
                                   outcome="confirmed")]
        else:
            open_step = sid
    other = uuid.uuid4()
    evts.append([created(other, "complaint"), started(other, uuid.uuid4(), "approval", T0)])
    return evts, open_step


async def steps(api, **params):
    r = await api.get("/v1/analytics/steps", params=params, headers=ADMIN)
    assert r.status_code == 200, r.text
    return {item["step"]: item for item in r.json()["items"]}


async def test_steps_fold_in_any_order_and_give_durations_and_rejections(api, raw):
    per_ticket, _ = refund_runs()
    # each ticket's events in order (one Kafka partition per ticket), tickets interleaved at random;
    # then the whole history again, as a re-publication with new event ids would bring it
    rng = random.Random(12)
    flat = [e for ticket in per_ticket for e in ticket]
    queues = [list(t) for t in per_ticket]
    while any(queues):
        q = rng.choice([q for q in queues if q])
        await fold(raw, q.pop(0))
    await fold(raw, *[e.model_copy(update={"id": uuid.uuid4()}) for e in flat])

    refund = await steps(api, ticket_type="refund")
    assert refund["approval"] == {
        "step": "approval", "kind": "approval", "started": 5, "completed": 4, "open_now": 1,
        "median_duration_s": 2.5 * 3600, "p90_duration_s": 3.7 * 3600, "max_duration_s": 4 * 3600.0,
        "rejected": 1, "rejection_rate": 0.25, "decisions": 5, "reject_decisions": 1}
    assert refund["confirm"]["kind"] == "customer_confirmation"
    assert (refund["confirm"]["completed"], refund["confirm"]["median_duration_s"]) == (3, 1800.0)
    everything = await steps(api)
    assert (everything["approval"]["started"], everything["approval"]["open_now"]) == (6, 2)
    # the window is on the start: the runs started from 10:00 on
    later = await steps(api, ticket_type="refund", **{"from": (T0 + H).isoformat()})
    assert (later["approval"]["started"], later["approval"]["completed"]) == (4, 3)
    assert later["approval"]["median_duration_s"] == 3 * 3600.0


async def test_a_completion_before_its_start_and_a_changed_type_fold_to_one_row(api, raw):
    tid, sid = uuid.uuid4(), uuid.uuid4()
    await fold(raw, created(tid, "question"), retyped(tid, "question", "refund"),
               completed(tid, sid, "approval", T0 + 2 * H), started(tid, sid, "approval", T0))
    rows = await raw.fetch("SELECT ticket_type, duration_s, outcome FROM step_runs")
    assert [tuple(r) for r in rows] == [("refund", 7200.0, "completed")]
    assert (await steps(api, ticket_type="refund"))["approval"]["median_duration_s"] == 7200.0
    assert await steps(api, ticket_type="question") == {}


async def test_bad_queries_are_4xx(api):
    r = await api.get("/v1/analytics/steps", params={"from": "2026-11-02T10:00:00Z", "to": "2026-11-02T09:00:00Z"},
                      headers=ADMIN)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "query.to"
    r = await api.get("/v1/analytics/steps", params={"from": "yesterday"}, headers=ADMIN)
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
    assert (await api.get("/v1/analytics/steps", headers=CHANNEL)).status_code == 403
    assert (await api.get("/v1/analytics/steps")).status_code == 401
