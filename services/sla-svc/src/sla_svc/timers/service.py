"""Timer lifecycle on the caller's transaction (the consumer's, with its inbox row); never
commits. Starting, pausing, resuming, fulfilling, cancelling and re-targeting all end in
the same place: a row whose precomputed fire points the scheduler compares with the clock.

Rules (docs/sla.md has the full table):
- ticket.created starts first_response and resolution (when the policy has a target);
- a customer message starts next_response once the first response is behind us (it is not
  restarted by further customer messages while it runs); a response fulfils it;
- every public agent reply fulfils the running periodic_update cycle and starts the next;
- a pause status pauses every live timer; leaving it resumes them with the time left;
- solved fulfils resolution and cancels the other live timers; reopening starts a *fresh*
  resolution cycle (the time already spent is not carried over: each solve answered the
  request as it stood, and compliance counts each cycle);
- closed and merged cancel every live timer;
- a change of priority / type / tags / custom fields, and any policy or calendar edit,
  re-targets live timers keeping the time already consumed.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from helpdesk_common import events
from helpdesk_common.outbox import enqueue, insert_rows, outbox_rows

from ..calendars.business_time import NoWorkingTime
from ..calendars_api.service import clock_for, team_calendar_id
from ..db import outbox
from ..policies import matching
from ..policies.service import active_policies
from ..tickets import repository as tickets
from . import plan as plans
from . import deferral, repository
from .clock import CALENDAR_TIME, Clock

log = logging.getLogger(__name__)
SOURCE = "sla-svc"


# ----------------------------------------------------------------------------- helpers


def facts_of(row: Any) -> matching.TicketFacts:
    return matching.TicketFacts(priority=row.priority, type=row.type, channel=row.channel, tags=tuple(row.tags or ()),
                                customer_tier=row.customer_tier, custom_fields=row.custom_fields or {})


async def policy_for(conn: AsyncConnection, ticket: Any, generation: int | None = None) -> matching.Policy:
    """The policy matching the ticket now; pass the generation read earlier in the transaction
    (handlers read it before the policies, see docs/sla.md) to use the per-generation cache."""
    return matching.select(await active_policies(conn, generation=generation), facts_of(ticket))


async def _clock(conn: AsyncConnection, calendar_id: uuid.UUID | None) -> Clock:
    return await clock_for(conn, calendar_id)


async def calendar_for(conn: AsyncConnection, target: matching.Target, ticket: Any) -> uuid.UUID | None:
    """The calendar a target counts in for this ticket: none (calendar time), the target's own,
    or, for a business target without one, the calendar of the ticket's team (calendar time
    when the team has none). A team change therefore re-targets the ticket's timers."""
    if not target.business:
        return None
    if target.calendar_id is not None:
        return target.calendar_id
    return await team_calendar_id(conn, ticket.team_id)


def _plan(clock: Clock, **kwargs: Any) -> tuple[plans.Plan, Clock]:
    """A plan on ``clock``; a calendar with no working time left falls back to calendar time
    (logged) rather than failing the event handler and dead-lettering the ticket's events."""
    try:
        return plans.plan(clock, **kwargs), clock
    except NoWorkingTime:
        log.warning("calendar has no working time left; timing in calendar time")
        return plans.plan(CALENDAR_TIME, **kwargs), CALENDAR_TIME


async def _emit(conn: AsyncConnection, *evts: Any) -> None:
    deferred = deferral.current()
    if deferred is not None:  # a consumer transaction: written once, at its end
        deferred.rows.extend(outbox_rows(*evts))  # now: the handler's span is the trace parent
        return
    await enqueue(conn, outbox, *evts)


async def begin_consumer_batch(conn: AsyncConnection) -> None:
    """The consumer's ``on_begin``: collect events and wake-ups from here on (``deferral``)."""
    deferral.start()


async def end_consumer_batch(conn: AsyncConnection) -> None:
    """The consumer's ``before_commit``: the transaction's ``sla.*`` events in one pipelined
    statement, in the order they were emitted, and one scheduler wake-up for the earliest fire
    time."""
    deferred = deferral.take()
    if deferred is None:
        return
    if deferred.rows and deferred.wakeups:  # a batch that started timers: one statement
        await repository.write_events_and_wake(conn, outbox, deferred.rows, min(deferred.wakeups))
        return
    if deferred.rows:
        await insert_rows(conn, outbox, deferred.rows)
    if deferred.wakeups:
        await repository.notify_timers(conn, min(deferred.wakeups))


def _ev(cls: type, data_cls: type, ticket_id: uuid.UUID, **data: Any) -> Any:
    return cls(source=SOURCE, subject=str(ticket_id), data=data_cls(ticket_id=ticket_id, **data))


async def _applied(conn: AsyncConnection, row: Any) -> None:
    await _emit(conn, _ev(events.SlaApplied, events.SlaAppliedData, row.ticket_id, metric=row.metric,
                          policy=row.policy, target_minutes=row.target_minutes, started_at=row.started_at,
                          due_at=row.due_at))
    if row.next_fire_at is not None:
        await repository.notify_timers(conn, row.next_fire_at)


# ----------------------------------------------------------------------------- transitions


async def start(conn: AsyncConnection, *, ticket: Any, policy: matching.Policy, metric: str, started_at: datetime,
                generation: int, restart: bool = False, step_target_minutes: int | None = None) -> bool:
    """Start ``metric`` for the ticket under ``policy``; False when the policy has no target
    for it (nor the step its own ``step_target_minutes``), or (without ``restart``) when the
    timer already exists. The policy's target wins over the step's own."""
    values = await timer_values(conn, ticket=ticket, policy=policy, metric=metric, started_at=started_at,
                                generation=generation, step_target_minutes=step_target_minutes)
    if values is None:
        return False
    row = await repository.start(conn, values, restart=restart)
    if row is None:
        return False
    await started(conn, row, policy=policy, status=ticket.status, at=started_at)
    return True


async def timer_values(conn: AsyncConnection, *, ticket: Any, policy: matching.Policy, metric: str,
                       started_at: datetime, generation: int, step_target_minutes: int | None = None
                       ) -> dict[str, Any] | None:
    """The columns of a fresh ``metric`` timer for the ticket under ``policy`` (None: no target).
    Reads the target's calendar; writes nothing, so a caller can insert the timer in the
    statement of its choice (``ticket.created`` inserts it with the projection) and then call
    ``started``. ``ticket`` needs ``ticket_id`` and ``team_id``."""
    target = policy.targets.get(metric)
    target_from = "policy"
    if target is None and step_target_minutes:
        target, target_from = matching.step_target(policy, step_target_minutes), "step"
    if target is None:
        return None
    calendar_id = await calendar_for(conn, target, ticket)
    clock = await _clock(conn, calendar_id)
    p, clock = _plan(clock, anchor=started_at, target_s=target.minutes * 60.0, consumed_s=0.0,
                     warning_fractions=list(policy.warning_fractions))
    escalation = policy.escalations.get(metric)
    return {
        "ticket_id": ticket.ticket_id, "metric": metric, "policy": policy.name, "policy_id": policy.id,
        "target_minutes": target.minutes, "calendar_id": calendar_id if clock is not CALENDAR_TIME else None,
        "started_at": started_at, "running_since": started_at, "consumed_s": 0.0, "due_at": p.due_at,
        "fire_at": p.fire_at, "fractions": p.fractions, "fired_count": 0,
        "next_fire_at": p.fire_at[0], "status": "running", "pause_statuses": list(policy.pause_statuses),
        "escalation": escalation.as_actions() if escalation else None, "generation": generation,
        "paused_at": None, "fulfilled_at": None, "breached_at": None, "cancelled_at": None,
        "target_from": target_from,
    }


async def started(conn: AsyncConnection, row: Any, *, policy: matching.Policy, status: str, at: datetime) -> None:
    """What follows a timer's insert: its ``sla.applied`` and the schedulers' wake-up, and the
    pause when the ticket already is in one of the policy's pause statuses."""
    await _applied(conn, row)
    if status in policy.pause_statuses:
        await pause(conn, row, at=at)


async def pause(conn: AsyncConnection, timer: Any, *, at: datetime) -> None:
    clock = await _clock(conn, timer.calendar_id)
    consumed = timer.consumed_s + max(0.0, clock.between(timer.running_since, at))
    row = await repository.update(conn, timer.id, {
        "status": "paused", "consumed_s": consumed, "paused_at": at, "next_fire_at": None, "due_at": None,
        "fire_at": None,
    })
    await _emit(conn, _ev(events.SlaPaused, events.SlaPausedData, row.ticket_id, metric=row.metric, paused_at=at,
                          remaining_seconds=row.target_minutes * 60.0 - consumed))


async def resume(conn: AsyncConnection, timer: Any, *, at: datetime) -> None:
    clock = await _clock(conn, timer.calendar_id)
    p, clock = _plan(clock, anchor=at, target_s=timer.target_minutes * 60.0, consumed_s=timer.consumed_s,
                     warning_fractions=list(timer.fractions[:-1]))
    fired = plans.clamp_fired(timer.fired_count, len(p.fire_at))
    row = await repository.update(conn, timer.id, {
        "status": "running", "running_since": at, "paused_at": None, "due_at": p.due_at, "fire_at": p.fire_at,
        "fractions": p.fractions, "fired_count": fired, "next_fire_at": plans.next_fire(p.fire_at, fired),
    })
    await _emit(conn, _ev(events.SlaResumed, events.SlaResumedData, row.ticket_id, metric=row.metric, resumed_at=at,
                          due_at=p.due_at, remaining_seconds=row.target_minutes * 60.0 - row.consumed_s))
    await repository.notify_timers(conn, row.next_fire_at)


async def fulfil(conn: AsyncConnection, timer: Any, *, at: datetime) -> None:
    """Met at ``at``. On time when ``at`` is not after the due time. A breached timer stays
    breached, but if ``at`` proves the reply came in time (the consumer lagged behind the
    scheduler) its outcome is corrected to fulfilled."""
    on_time = timer.due_at is None or at <= timer.due_at
    if timer.status == "breached":
        if timer.fulfilled_at is not None:
            return
        await repository.update(conn, timer.id, {"fulfilled_at": at})
        if on_time:
            await repository.record_outcome(conn, ticket_id=timer.ticket_id, metric=timer.metric, cycle=timer.cycle,
                                            outcome="fulfilled", due_at=timer.due_at, at=at, overwrite=True)
    else:
        await repository.update(conn, timer.id, {"status": "fulfilled", "fulfilled_at": at, "next_fire_at": None})
        await repository.record_outcome(conn, ticket_id=timer.ticket_id, metric=timer.metric, cycle=timer.cycle,
                                        outcome="fulfilled" if on_time else "breached", due_at=timer.due_at, at=at)
    await _emit(conn, _ev(events.SlaFulfilled, events.SlaFulfilledData, timer.ticket_id, metric=timer.metric,
                          fulfilled_at=at, due_at=timer.due_at, breached=not on_time))


async def cancel(conn: AsyncConnection, timer: Any, *, at: datetime, reason: str) -> None:
    await repository.update(conn, timer.id, {"status": "cancelled", "cancelled_at": at, "next_fire_at": None})
    await _emit(conn, _ev(events.SlaCancelled, events.SlaCancelledData, timer.ticket_id, metric=timer.metric,
                          cancelled_at=at, reason=reason))


async def retarget(conn: AsyncConnection, *, ticket_id: uuid.UUID, at: datetime, generation: int,
                   only_stale: bool = False) -> None:
    """Recompute the ticket's live timers under the policy that matches it now, keeping the
    time already consumed. Warnings already sent are not sent again; a timer whose new due
    time has passed breaches at once (the scheduler is notified). ``only_stale`` (the sweep)
    skips timers already computed under ``generation``."""
    ticket = await tickets.get(conn, ticket_id)
    live = await repository.live_of(conn, ticket_id)
    if only_stale:
        live = [t for t in live if t.generation < generation]
    if ticket is None:
        for timer in live:
            await repository.update(conn, timer.id, {"generation": generation})
        return
    policy = await policy_for(conn, ticket, generation)
    for timer in live:
        target = policy.targets.get(timer.metric)
        target_from = "policy"
        if target is None and timer.target_from == "step":  # the step's own target, on the new policy's clock
            target, target_from = matching.step_target(policy, timer.target_minutes), "step"
        if target is None:
            await cancel(conn, timer, at=at, reason="policy")
            continue
        escalation = policy.escalations.get(timer.metric)
        calendar_id = await calendar_for(conn, target, ticket)
        common = {"policy": policy.name, "policy_id": policy.id, "target_minutes": target.minutes,
                  "calendar_id": calendar_id, "pause_statuses": list(policy.pause_statuses),
                  "escalation": escalation.as_actions() if escalation else None, "generation": generation,
                  "target_from": target_from}
        fractions = sorted(f for f in policy.warning_fractions if 0 < f < 1) + [1.0]
        pausing = ticket.status in policy.pause_statuses
        if timer.status == "paused":
            fired = plans.clamp_fired(timer.fired_count, len(fractions))
            row = await repository.update(conn, timer.id, {**common, "fractions": fractions, "fired_count": fired})
            if not pausing:  # the new policy does not pause in this status
                await resume(conn, row, at=at)
            continue
        old_clock = await _clock(conn, timer.calendar_id)
        consumed = timer.consumed_s + max(0.0, old_clock.between(timer.running_since, at))
        p, clock = _plan(await _clock(conn, calendar_id), anchor=at, target_s=target.minutes * 60.0,
                         consumed_s=consumed, warning_fractions=list(policy.warning_fractions))
        unchanged = (timer.policy_id == policy.id and timer.target_minutes == target.minutes
                     and timer.calendar_id == common["calendar_id"] and list(timer.fractions) == p.fractions
                     and timer.due_at == p.due_at)
        if unchanged:
            row = await repository.update(conn, timer.id, {**common})
            if pausing:
                await pause(conn, row, at=at)
            continue
        fired = plans.clamp_fired(timer.fired_count, len(p.fire_at))
        row = await repository.update(conn, timer.id, {
            **common, "calendar_id": calendar_id if clock is not CALENDAR_TIME else None,
            "running_since": at, "consumed_s": consumed, "due_at": p.due_at, "fire_at": p.fire_at,
            "fractions": p.fractions, "fired_count": fired, "next_fire_at": plans.next_fire(p.fire_at, fired),
        })
        await _applied(conn, row)
        if pausing:  # the new policy pauses in the ticket's current status
            await pause(conn, row, at=at)


# ----------------------------------------------------------------------------- reads


async def status_of(conn: AsyncConnection, *, ticket_id: uuid.UUID, now: datetime | None = None) -> dict[str, Any]:
    """Each metric's state, due time, business seconds left and colour."""
    now = now or datetime.now(UTC)
    items = []
    for r in await repository.all_of(conn, ticket_id):
        try:
            clock = await _clock(conn, r.calendar_id)
            left = plans.remaining_seconds(
                clock, status=r.status, target_s=r.target_minutes * 60.0, consumed_s=r.consumed_s,
                running_since=r.running_since, now=min(now, r.fulfilled_at) if r.fulfilled_at else now)
        except NoWorkingTime:
            left = None
        warnings = max(0, len(r.fractions or [1.0]) - 1)
        ended = r.fulfilled_at or r.cancelled_at or now
        # (a span of business time is never an error: no working time in it is just zero)
        business = None if r.calendar_id is None else round(plans.elapsed(clock, started_at=r.started_at,
                                                                          ended_at=ended), 3)
        items.append({
            "metric": r.metric, "state": r.status, "policy": r.policy, "policy_id": r.policy_id,
            "target_minutes": r.target_minutes, "time": "business" if r.calendar_id else "calendar",
            "calendar_id": r.calendar_id, "cycle": r.cycle, "started_at": r.started_at, "due_at": r.due_at,
            "remaining_seconds": None if r.status in ("fulfilled", "cancelled") or left is None else round(left, 3),
            "colour": plans.colour(status=r.status, fired_count=r.fired_count, warnings=warnings),
            "warnings_fired": min(r.fired_count, warnings), "paused_at": r.paused_at, "breached_at": r.breached_at,
            "fulfilled_at": r.fulfilled_at, "cancelled_at": r.cancelled_at,
            "target_from": r.target_from, "completed_at": r.fulfilled_at or r.cancelled_at,
            "elapsed_seconds": round(plans.elapsed(CALENDAR_TIME, started_at=r.started_at, ended_at=ended), 3),
            "elapsed_business_seconds": business,
            "counted_seconds": round(plans.counted_seconds(clock, consumed_s=r.consumed_s, running_since=r.running_since,
                                                           paused_at=r.paused_at, ended_at=ended), 3),
            "outcome": plans.outcome(status=r.status, due_at=r.due_at, fulfilled_at=r.fulfilled_at),
        })
    return {"ticket_id": ticket_id, "metrics": items}


async def timers_of(conn: AsyncConnection, *, ticket_id: uuid.UUID) -> dict[str, Any]:
    """The original timer list (kept for compatibility with the first API)."""
    rows = await repository.all_of(conn, ticket_id)
    return {"items": [{"metric": r.metric, "policy": r.policy, "target_minutes": r.target_minutes,
                       "started_at": r.started_at, "due_at": r.due_at, "status": r.status} for r in rows]}


async def compliance(conn: AsyncConnection, *, start: datetime, end: datetime) -> dict[str, Any]:
    counts = {r.metric: (r.fulfilled, r.breached) for r in await repository.compliance(conn, start=start, end=end)}
    metrics = {}
    steps = sorted(m for m in counts if m not in plans.METRICS)
    for metric in (*plans.METRICS, *steps):
        ok, late = counts.get(metric, (0, 0))
        total = ok + late
        metrics[metric] = {"fulfilled_on_time": ok, "breached": late,
                           "compliance_pct": round(100.0 * ok / total, 2) if total else None}
    return {"from": start, "to": end, "metrics": metrics}


async def apply_first_response(conn: AsyncConnection, *, ticket_id: uuid.UUID, priority: str,
                               created_at: datetime) -> bool:
    """The first API's entry point (kept for its tests): the ticket under the default policy."""
    ticket, generation = await tickets.upsert_created(
        conn, ticket_id=ticket_id, status="new", priority=priority, type=None, channel=None, tags=[],
        customer_tier=None, custom_fields={}, team_id=None, assignee_id=None, created_at=created_at)
    return await start(conn, ticket=ticket, policy=matching.default_policy(priority), metric="first_response",
                       started_at=created_at, generation=generation)
