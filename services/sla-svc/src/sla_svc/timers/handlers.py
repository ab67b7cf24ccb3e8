"""Ticket events → timer transitions. Each handler runs inside the consumer's transaction
(with its inbox row), so a redelivered event has no second effect.

Every event first refreshes sla-svc's ticket projection (status, priority, team, assignee
ride along on every ticket event), then applies the transition rules of ``service``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from helpdesk_common import events

from ..policies import matching
from ..policies import service as policy_service
from ..tickets import repository as tickets
from . import plan as plans
from . import repository, service

PAUSE_EXEMPT = ("solved", "closed")
#: step outcomes that end a step without its work being done: its timer is cancelled, not met
NOT_DONE_OUTCOMES = frozenset({"cancelled", "skipped"})
#: ticket fields whose change can change the matching policy
RETARGET_FIELDS = frozenset({"priority", "type", "tags", "custom_fields", "channel", "customer_tier"})


def _ref_values(data: Any) -> dict[str, Any]:
    values = {"status": data.status, "priority": data.priority, "team_id": data.team_id,
              "assignee_id": data.assignee_id}
    return {k: v for k, v in values.items() if v is not None or k in ("team_id", "assignee_id")}


#: the metrics a new ticket starts, in the order their timers are written and announced
CREATED_METRICS = ("first_response", "resolution")


@dataclass(frozen=True, slots=True)
class NewTicket:
    """A ticket.created's ticket as the projection will hold it: what matching, the calendar
    choice and the pause check read (``facts_of``, ``calendar_for``)."""

    ticket_id: uuid.UUID
    status: str
    priority: str
    type: str | None
    channel: str | None
    tags: tuple[str, ...]
    customer_tier: str | None
    custom_fields: dict[str, Any]
    team_id: uuid.UUID | None


async def handle_ticket_created(conn: AsyncConnection, event: events.TicketCreated) -> None:
    """The projection and the timers in one statement when the process has the policies of a
    generation cached (every ticket but the first after a start or a policy change): the
    statement writes the timers only if that generation is still current, else the handler
    reads the ticket and the current policies and starts the timers as before."""
    d = event.data
    projection = dict(
        ticket_id=d.ticket_id, status=d.status, priority=d.priority, type=d.type, channel=d.channel,
        tags=list(d.tags), customer_tier=d.customer_tier, custom_fields=d.custom_fields,
        team_id=d.team_id, assignee_id=d.assignee_id, created_at=d.created_at, customer_id=d.customer_id,
    )
    cached = policy_service.cached_active(conn)
    if cached is not None:
        generation, policies = cached
        new = NewTicket(ticket_id=d.ticket_id, status=d.status, priority=d.priority, type=d.type, channel=d.channel,
                        tags=tuple(d.tags), customer_tier=d.customer_tier, custom_fields=d.custom_fields or {},
                        team_id=d.team_id)
        policy = matching.select(policies, service.facts_of(new))
        planned = [v for v in [await service.timer_values(conn, ticket=new, policy=policy, metric=metric,
                                                          started_at=d.created_at, generation=generation)
                               for metric in CREATED_METRICS] if v is not None]
        projected, current, rows = await tickets.insert_created(conn, **projection, timers_values=planned,
                                                                generation=generation)
        if projected and current == generation:
            rows.sort(key=lambda r: CREATED_METRICS.index(r.metric))
            for row in rows:
                await service.started(conn, row, policy=policy, status=d.status, at=d.created_at)
            return
        # a replay (the projection was there: later events may have changed it) or a policy
        # or calendar write since the cache: only the projection was written
        ticket, generation = await tickets.get(conn, d.ticket_id), current
    else:
        # the generation is read with the projection, before the policies: see docs/sla.md
        ticket, generation = await tickets.upsert_created(conn, **projection)
    policy = await service.policy_for(conn, ticket, generation)
    for metric in CREATED_METRICS:
        await service.start(conn, ticket=ticket, policy=policy, metric=metric, started_at=d.created_at,
                            generation=generation)


async def handle_status_changed(conn: AsyncConnection, event: events.TicketStatusChanged) -> None:
    d = event.data
    await tickets.update(conn, d.ticket_id, {**_ref_values(d), "status": d.to_status})
    at = d.changed_at
    live = await repository.live_of(conn, d.ticket_id)
    if d.to_status == "closed":
        for timer in live:
            await service.cancel(conn, timer, at=at, reason="closed")
        return
    if d.to_status == "solved":
        for timer in live:
            if timer.metric == "resolution":
                await service.fulfil(conn, timer, at=at)
            elif plans.started_by(timer.metric, timer.started_at, at):
                continue  # a step the solve itself started (the customer confirmation) runs on
            else:
                await service.cancel(conn, timer, at=at, reason="solved")
        resolution = await repository.get(conn, d.ticket_id, "resolution", lock=True)
        if resolution is not None and resolution.status == "breached" and resolution.fulfilled_at is None:
            await service.fulfil(conn, resolution, at=at)  # solved late: recorded, still a breach
        return
    if d.from_status in ("solved", "closed"):  # reopened, or restored after a deletion (closed is final otherwise)
        ticket = await tickets.get(conn, d.ticket_id)
        if ticket is not None:
            generation = await repository.current_generation(conn)
            policy = await service.policy_for(conn, ticket, generation)
            await service.start(conn, ticket=ticket, policy=policy, metric="resolution", started_at=at,
                                generation=generation, restart=True)
            if d.reason == "restored":
                # the deletion cancelled a first response still owed: it is owed again, from now
                first = await repository.get(conn, d.ticket_id, "first_response", lock=True)
                if first is not None and first.status == "cancelled":
                    await service.start(conn, ticket=ticket, policy=policy, metric="first_response", started_at=at,
                                        generation=generation, restart=True)
        return
    for timer in live:
        pausing = d.to_status in (timer.pause_statuses or ())
        if timer.status == "running" and pausing:
            await service.pause(conn, timer, at=at)
        elif timer.status == "paused" and not pausing:
            await service.resume(conn, timer, at=at)


async def handle_message_added(conn: AsyncConnection, event: events.TicketMessageAdded) -> None:
    d = event.data
    await tickets.update(conn, d.ticket_id, _ref_values(d))
    at = d.created_at
    if d.author_kind == "customer":
        first = await repository.get(conn, d.ticket_id, "first_response", lock=True)
        nxt = await repository.get(conn, d.ticket_id, "next_response", lock=True)
        awaiting_first = first is not None and first.status in ("running", "paused")
        if awaiting_first or (nxt is not None and nxt.status in ("running", "paused")):
            return
        ticket = await tickets.get(conn, d.ticket_id)
        if ticket is None or ticket.status in PAUSE_EXEMPT:
            return
        generation = await repository.current_generation(conn)
        policy = await service.policy_for(conn, ticket, generation)
        await service.start(conn, ticket=ticket, policy=policy, metric="next_response", started_at=at,
                            generation=generation, restart=True)
        return
    if d.author_kind != "agent" or not d.public:
        return
    for metric, flag in (("first_response", d.first_response), ("next_response", d.response)):
        if flag:
            timer = await repository.get(conn, d.ticket_id, metric, lock=True)
            if timer is not None and (timer.status in ("running", "paused") or timer.status == "breached"):
                await service.fulfil(conn, timer, at=at)
    periodic = await repository.get(conn, d.ticket_id, "periodic_update", lock=True)
    if periodic is not None and periodic.status in ("running", "paused", "breached"):
        await service.fulfil(conn, periodic, at=at)
    ticket = await tickets.get(conn, d.ticket_id)
    if ticket is not None and ticket.status not in PAUSE_EXEMPT:
        generation = await repository.current_generation(conn)
        policy = await service.policy_for(conn, ticket, generation)
        await service.start(conn, ticket=ticket, policy=policy, metric="periodic_update", started_at=at,
                            generation=generation, restart=True)


async def handle_updated(conn: AsyncConnection, event: events.TicketUpdated) -> None:
    d = event.data
    values = _ref_values(d)
    for name, change in d.changes.items():
        if name in RETARGET_FIELDS:
            values[name] = change.get("after") if name != "tags" else list(change.get("after") or [])
    await tickets.update(conn, d.ticket_id, values)
    if d.changes.keys() & RETARGET_FIELDS:
        # ticket.updated carries no change time of its own: the envelope's time is when it happened
        await service.retarget(conn, ticket_id=d.ticket_id, at=event.time,
                               generation=await repository.current_generation(conn))


async def handle_assigned(conn: AsyncConnection, event: events.TicketAssigned) -> None:
    d = event.data
    before = await tickets.get(conn, d.ticket_id)
    await tickets.update(conn, d.ticket_id, _ref_values(d))
    if before is not None and before.team_id != d.team_id:  # business targets may count in the team's calendar
        await service.retarget(conn, ticket_id=d.ticket_id, at=d.assigned_at,
                               generation=await repository.current_generation(conn))


async def handle_step_started(conn: AsyncConnection, event: events.TicketStepStarted) -> None:
    """A workflow step began: its ``step:<key>`` timer starts afresh, against the policy's
    target for it, else the step's own ``target_minutes`` from the process definition. A
    solved ticket still times its steps (the customer confirmation runs while it is solved);
    a closed one does not."""
    d = event.data
    await tickets.update(conn, d.ticket_id, _ref_values(d))
    ticket = await tickets.get(conn, d.ticket_id)
    if ticket is None or ticket.status == "closed" or not plans.is_metric(plans.step_metric(d.step)):
        return
    generation = await repository.current_generation(conn)
    policy = await service.policy_for(conn, ticket, generation)
    await service.start(conn, ticket=ticket, policy=policy, metric=plans.step_metric(d.step), started_at=d.started_at,
                        generation=generation, restart=True, step_target_minutes=d.target_minutes)


async def handle_step_completed(conn: AsyncConnection, event: events.TicketStepCompleted) -> None:
    """The step ended: its timer is met (on time or late), unless the step did not really run
    to an end (``cancelled`` / ``skipped``): then the timer is cancelled and counts in no
    compliance figure, like the timers of a closed ticket."""
    d = event.data
    await tickets.update(conn, d.ticket_id, _ref_values(d))
    timer = await repository.get(conn, d.ticket_id, plans.step_metric(d.step), lock=True)
    if timer is None or timer.status not in ("running", "paused", "breached"):
        return
    if d.outcome in NOT_DONE_OUTCOMES:
        if timer.status != "breached":
            await service.cancel(conn, timer, at=d.completed_at, reason=d.outcome)
        return
    await service.fulfil(conn, timer, at=d.completed_at)


async def handle_merged(conn: AsyncConnection, event: events.TicketMerged) -> None:
    d = event.data
    for timer in await repository.live_of(conn, d.ticket_id):
        await service.cancel(conn, timer, at=event.time, reason="merged")


HANDLERS = {
    "ticket.created": handle_ticket_created,
    "ticket.status_changed": handle_status_changed,
    "ticket.message_added": handle_message_added,
    "ticket.updated": handle_updated,
    "ticket.assigned": handle_assigned,
    "ticket.merged": handle_merged,
    "ticket.step_started": handle_step_started,
    "ticket.step_completed": handle_step_completed,
}
