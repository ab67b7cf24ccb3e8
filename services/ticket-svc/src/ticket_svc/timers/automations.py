"""Time-based automations on ticket timers: planning, re-planning and firing.

An automation is due on a ticket at ``schedule.due_at`` and belongs to the episode
``schedule.episode_key``; both are pure functions of the ticket's facts, so this module keeps
one pending timer (kind ``automation``, ref the automation id, episode the key) per active
automation and ticket, and makes sure it is always the one those functions give now:

- **planning**: every creation, change and message of a ticket re-plans its automations in the
  same transaction (lifecycle hooks). Only moved, new or obsolete timers are written, in one
  statement; with no active automation the hook is one cached lookup and nothing else;
- **re-planning**: an admin write of automations notifies ``ticket_automations_changed``; every
  replica hearing it drops the pending timers of automations that are gone or inactive and
  re-plans the open tickets in batches (also once at start, for notifications missed while
  down), one batch at a time across replicas (advisory lock);
- **firing**: the handler re-reads the ticket (locked by the scheduler), recomputes facts and
  conditions at now, and runs the actions only if the automation is due *and* still in the
  timer's episode; otherwise the timer is forgotten and the ticket re-planned (it changed in a
  way the planner has not seen, e.g. a team calendar or an automation edit).

Business hours: the team's calendar projected from sla-svc (``sla/calendars.business_time_fn``);
a ticket whose team has no calendar cannot be planned for business-hour automations, which is
logged rather than quietly counted in calendar hours.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import Counter

from ..automation import executor, facts
from ..automation import service as automation_service
from ..automation.conditions import TicketState, time_anchor
from ..automation.schedule import Automation, BusinessCalendarRequired, BusinessTimeFn, due_at, episode_key
from ..sla import calendars
from ..tickets import hooks
from ..tickets import repository as tickets_repository
from . import repository, scheduler, service

log = logging.getLogger(__name__)

KIND = "automation"
#: how far before its computed due time a fired timer still counts as due (clock skew between
#: the database, whose ``now()`` claimed the timer, and this process)
SKEW = timedelta(milliseconds=500)
_MESSAGE_ANCHORS = frozenset({"customer_replied", "agent_replied"})

RUNS = Counter("ticket_automation_runs_total", "Time-based automations fired on a ticket", ["outcome"])


# --------------------------------------------------------------------------- pure


def uses_business_hours(automations: Sequence[Automation]) -> bool:
    return any(c.calendar == "business" for a in automations for c in a.time_conditions)


def uses_message_anchors(automations: Sequence[Automation]) -> bool:
    return any(time_anchor(c.field) in _MESSAGE_ANCHORS for a in automations for c in a.time_conditions)


def plan_rows(automations: Sequence[Automation], state: TicketState,
              business_time_fn: BusinessTimeFn | None) -> list[tuple[str, str, datetime]]:
    """(ref, episode, due_at) of the timer each automation should have on this ticket now."""
    rows = []
    for automation in automations:
        try:
            due = due_at(automation, state, business_time_fn)
        except BusinessCalendarRequired:
            log.info("automation counts business hours and the ticket's team has no calendar: not planned",
                     extra={"automation": str(automation.id)})
            continue
        episode = episode_key(automation, state)
        if due is not None and episode is not None:
            rows.append((str(automation.id), episode, due))
    return rows


def is_due(automation: Automation, state: TicketState, business_time_fn: BusinessTimeFn | None, *,
           episode: str, now: datetime) -> bool:
    """Does the timer of ``episode`` fire now? Due, and the anchors have not moved since."""
    try:
        due = due_at(automation, state, business_time_fn)
    except BusinessCalendarRequired:
        return False
    return due is not None and due <= now + SKEW and episode_key(automation, state) == episode


# --------------------------------------------------------------------------- collaborators


async def active_automations(conn: Any) -> list[Automation]:
    """The rules' cached list: one dictionary read per ticket change while nothing changed."""
    return list(await automation_service.active_automations(conn))


def invalidate_automation_cache() -> None:
    """Another replica saved an automation: this process's cached list is stale now, not in
    ``CACHE_SECONDS``."""
    automation_service.invalidate()


async def business_time_fn_for(conn: Any, ticket: Mapping[str, Any],
                               automations: Sequence[Automation]) -> BusinessTimeFn | None:
    if not uses_business_hours(automations):
        return None
    return await calendars.business_time_fn(conn, ticket["team_id"])


async def _state(conn: Any, ticket: Mapping[str, Any], automations: Sequence[Automation]) -> TicketState:
    return await facts.state_of(conn, ticket, message_anchors=uses_message_anchors(automations))


# --------------------------------------------------------------------------- planning


async def plan(conn: Any, ticket_id: uuid.UUID, *, automations: Sequence[Automation] | None = None) -> None:
    """Make the ticket's pending automation timers what its facts say now (ticket locked or new)."""
    if automations is None:
        automations = await active_automations(conn)
    if not automations:
        return
    ticket = await tickets_repository.get_ticket_raw(conn, ticket_id)  # the newest row: hooks nest
    if ticket is None:
        return
    # a deleted ticket is nobody's to act on: its plan is emptied (a restore plans it afresh)
    rows = [] if ticket["deleted_at"] is not None else plan_rows(
        automations, await _state(conn, ticket, automations), await business_time_fn_for(conn, ticket, automations))
    await repository.replace_plan(conn, kind=KIND, ticket_id=ticket_id, plan=rows)
    soonest = min((due for _, _, due in rows), default=None)
    if soonest is not None and service.needs_wake(soonest):
        await repository.notify_due(conn, soonest)


@hooks.after_create
async def _plan_created(conn: Any, row: Mapping[str, Any], actor: str) -> None:
    await plan(conn, row["id"])


async def _create_quiet(conn: Any, ticket_type: str | None) -> bool:
    return not await active_automations(conn)


hooks.quiet_when(_plan_created, _create_quiet)


@hooks.after_change
async def _plan_changed(conn: Any, before: Mapping[str, Any], row: Mapping[str, Any],
                        changes: Mapping[str, Any], actor: str) -> None:
    await plan(conn, row["id"])


@hooks.after_message
async def _plan_messaged(conn: Any, before: Mapping[str, Any], message: Mapping[str, Any],
                         row: Mapping[str, Any], actor: str) -> None:
    await plan(conn, row["id"])


# --------------------------------------------------------------------------- firing


async def fire(conn: Any, timer: service.Timer) -> None:
    automation = next((a for a in await active_automations(conn) if str(a.id) == timer.ref), None)
    if automation is None:
        RUNS.labels("gone").inc()
        return  # deleted or deactivated since it was planned
    ticket = await tickets_repository.lock_ticket(conn, timer.ticket_id)
    if ticket is None or ticket["deleted_at"] is not None:
        return
    state = await _state(conn, ticket, [automation])
    btf = await business_time_fn_for(conn, ticket, [automation])
    if not is_due(automation, state, btf, episode=timer.episode, now=datetime.now(UTC)):
        RUNS.labels("replanned").inc()
        await repository.forget(conn, timer.id)
        await plan(conn, timer.ticket_id)
        return
    label = f"automation:{automation.id}"
    await executor.execute(conn, ticket, list(automation.actions), rule=label, actor=label)
    RUNS.labels("fired").inc()


service.register(KIND, fire)


# --------------------------------------------------------------------------- re-planning sweep


async def sweep(pool: Any, *, batch_size: int = 200, pause_s: float = 0.2, only_if_stale: bool = False) -> int:
    """Re-plan every open ticket after an automation or calendar change; returns how many were
    re-planned.

    The plan depends on the automations and the team calendars, summed up by their fingerprint.
    A complete sweep records the fingerprint it planned under (``automation_planning``), so
    ``only_if_stale`` (start-up, reconnect) does nothing when it is current, and a sweep stops
    early once another replica has completed one under the same fingerprint. Each batch is one
    transaction holding the sweep's advisory lock: sweeps of several replicas take turns."""
    async with pool.acquire() as conn, conn.transaction():
        while not await repository.try_sweep_lock(conn):
            await asyncio.sleep(pause_s)
        fingerprint = await repository.plan_fingerprint(conn)
        if only_if_stale and await repository.planned_fingerprint(conn) == fingerprint:
            return 0
        automations = await active_automations(conn)
        dropped = await repository.drop_stray(conn, kind=KIND, keep_refs=[str(a.id) for a in automations])
        if not automations:
            await repository.set_planned_fingerprint(conn, fingerprint)
    if dropped:
        log.info("pending timers of removed automations dropped", extra={"timers": dropped})
    if not automations:
        return 0
    cursor, done = uuid.UUID(int=0), 0
    while True:
        async with pool.acquire() as conn, conn.transaction():
            if not await repository.try_sweep_lock(conn):
                await asyncio.sleep(pause_s)
                continue
            if await repository.planned_fingerprint(conn) == fingerprint:
                return done  # another replica has planned every open ticket under these rules
            ids = await repository.open_ticket_ids(conn, after=cursor, limit=batch_size)
            if not ids:
                await repository.set_planned_fingerprint(conn, fingerprint)
                return done
            automations = await active_automations(conn)
            for ticket_id in ids:
                await tickets_repository.lock_ticket(conn, ticket_id)
                await plan(conn, ticket_id, automations=automations)
            cursor, done = ids[-1], done + len(ids)


class Sweeper:
    """Runs ``sweep`` when the automations or calendars change, and at start and after a
    reconnect when what the timers were planned under is stale: fed by the scheduler's LISTEN
    connection (``TimerScheduler.listen``)."""

    def __init__(self, pool: Any, *, batch_size: int = 200) -> None:
        self._pool = pool
        self._batch = batch_size
        self._wanted = asyncio.Event()
        self._forced = False
        self.sweeps = 0

    def on_notify(self, payload: str) -> None:
        invalidate_automation_cache()
        if payload != scheduler.RECONNECTED:
            self._forced = True
        self._wanted.set()

    async def run(self) -> None:
        while True:
            await self._wanted.wait()
            self._wanted.clear()
            forced, self._forced = self._forced, False
            try:
                planned = await sweep(self._pool, batch_size=self._batch, only_if_stale=not forced)
                self.sweeps += 1
                if planned:
                    log.info("automations re-planned on open tickets", extra={"tickets": planned})
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("automation re-planning sweep failed, retrying")
                await asyncio.sleep(1.0)
                self._forced = self._forced or forced
                self._wanted.set()
