"""The board's overdue and at-risk counts, maintained by the fold (``targets.sla_clock`` ->
open_rollups' ``overdue_from`` / ``at_risk_from`` and ticket_metrics' ``sla_overdue_at`` /
``sla_at_risk_at``), equal a direct count of the open tickets over sla_targets with the shared
target definitions (reports.repository's OVERDUE_TARGET / AT_RISK_TARGET), each ticket once and
an overdue ticket never also at risk: for random tickets with random SLA lives (applied,
warned, breached, paused, resumed with a new due time, fulfilled, cancelled, several metrics)
folded in random order and batches, at instants on, around and across the hour boundaries of
the due times, for every kind of scope."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from analytics_svc.access import Selection, ticket_filter
from analytics_svc.kpis import service
from analytics_svc.readmodel.targets import sla_clock
from analytics_svc.readmodel.facts import SlaState
from analytics_svc.reports.repository import AT_RISK_TARGET, OPEN_TICKET, OVERDUE_TARGET, ticket_scope_sql

from .test_fold_db import (
    TEAM_X, TEAM_Y, assigned, created, merged, sla_applied, sla_breached, sla_event, sla_fulfilled, status,
)
from .test_open_backlog import SCOPES, fold_random_tickets

NOW = datetime(2026, 12, 1, 9, 41, 17, 250000, tzinfo=UTC)
#: every event happens before this (a warning or a breach is in the past at every instant compared)
H0 = NOW.replace(minute=0, second=0, microsecond=0)
AGENTS = ["a1", "a2", "a3"]
METRICS = ["first_response", "next_response", "resolution"]
M = timedelta(minutes=1)


def reference_sql(scope_sql: str) -> str:
    """Open tickets with an overdue target, and those with an at-risk one but none overdue, counted
    over sla_targets ($1 now; the scope's arguments from $2)."""
    overdue = f"EXISTS (SELECT 1 FROM sla_targets t WHERE t.ticket_id = m.ticket_id AND {OVERDUE_TARGET})"
    at_risk = f"EXISTS (SELECT 1 FROM sla_targets t WHERE t.ticket_id = m.ticket_id AND {AT_RISK_TARGET})"
    return (f"SELECT count(*) FILTER (WHERE {overdue}) AS overdue, "
            f"count(*) FILTER (WHERE {at_risk} AND NOT {overdue}) AS at_risk "
            f"FROM ticket_metrics m WHERE {OPEN_TICKET} AND {scope_sql}")


def due_near(rng: random.Random) -> datetime:
    """A due time on, around or across the hour boundaries of the instants compared."""
    base = rng.choice([NOW, H0, H0 + 60 * M, NOW + 30 * M, NOW - 90 * M, NOW + 5 * 60 * M])
    return base + timedelta(seconds=rng.choice([0, 0, -1, 1, -59, 59, -1799, 1799, -0.5, 0.5, rng.uniform(-7200, 7200)]))


def before_h0(rng: random.Random, start: datetime) -> datetime:
    return start + (H0 - start) * rng.random()


def sla_life(rng: random.Random, tid: uuid.UUID, metric: str, created_at: datetime) -> list:
    applied_at = before_h0(rng, created_at)
    minutes = rng.choice([10, 60, 240, 1440])
    due = due_near(rng)
    first = sla_applied(tid, metric, applied_at, minutes=minutes)
    first = first.model_copy(update={"data": first.data.model_copy(update={"due_at": due})})
    out = [first]
    for _ in range(rng.randint(0, 3)):
        at = before_h0(rng, applied_at)
        kind = rng.random()
        if kind < 0.3:
            out.append(sla_event("warning", tid, metric, at, due_at=due, colour=rng.choice(["yellow", "red"]),
                                 policy="gold"))
        elif kind < 0.45 and due <= H0:
            out.append(sla_breached(tid, metric, due))
        elif kind < 0.6:
            out.append(sla_event("paused", tid, metric, at, remaining_seconds=600))
        elif kind < 0.8:
            due = due_near(rng)
            out.append(sla_event("resumed", tid, metric, at, due_at=due, remaining_seconds=600))
        elif kind < 0.9:
            out.append(sla_fulfilled(tid, metric, at))
        else:
            out.append(sla_event("cancelled", tid, metric, at, reason="merged"))
    return out


def ticket_events(rng: random.Random, tid: uuid.UUID, others: list[uuid.UUID]) -> list:
    at = H0 - timedelta(seconds=rng.uniform(2 * 3600, 20 * 86400))
    team = rng.choice([TEAM_X, TEAM_Y, None])
    assignee = rng.choice([None, *AGENTS]) if team is not None else None
    out = [created(tid, at=at, team=team, assignee=assignee)]
    for metric in rng.sample(METRICS, rng.randint(0, 3)):
        out += sla_life(rng, tid, metric, at)
    step = rng.random()
    later = before_h0(rng, at)
    if step < 0.15:
        out.append(status(tid, "solved", later, 2))
    elif step < 0.2 and others:
        out.append(merged(tid, rng.choice(others)))
    elif step < 0.4:
        out.append(assigned(tid, later, rng.choice([None, *AGENTS]), rng.choice([TEAM_X, TEAM_Y])))
    return out


@pytest.mark.parametrize("seed", [3, 20261130])
async def test_overdue_and_at_risk_from_open_rollups_equal_the_open_tickets_targets(raw, seed):
    rng = random.Random(seed)
    await fold_random_tickets(raw, rng, 150, ticket_events)
    instants = [NOW, NOW + timedelta(seconds=1), NOW - timedelta(seconds=1), H0, H0 + 60 * M,
                H0 + 60 * M - timedelta(microseconds=1), NOW + 30 * M, NOW + timedelta(hours=5, seconds=3)]
    seen = {"overdue": 0, "at_risk": 0}
    for now in instants:
        for selection in SCOPES:
            scope_sql, scope_args = ticket_scope_sql(ticket_filter(selection), "m", 2)
            expected = dict(await raw.fetchrow(reference_sql(scope_sql), now, *scope_args))
            body = await service.kpis(raw, now=now, tz_name="UTC", selection=selection)
            assert (body["overdue_tickets"], body["at_risk_tickets"]) == \
                (expected["overdue"], expected["at_risk"]), (now, selection)
            for key in seen:
                seen[key] += expected[key]
    # the comparison is not vacuous: both figures are non-zero somewhere
    assert seen["overdue"] > 20 and seen["at_risk"] > 5, seen
    # and tickets with two overdue targets exist, which a count of targets would count twice
    doubled = await raw.fetchval(
        f"SELECT count(*) FROM (SELECT t.ticket_id FROM sla_targets t JOIN ticket_metrics m USING (ticket_id) "
        f"WHERE {OPEN_TICKET} AND {OVERDUE_TARGET} GROUP BY t.ticket_id HAVING count(*) > 1) x", NOW)
    assert doubled > 0


def test_sla_clock_of_one_ticket():
    t0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    applied = SlaState(at=t0, metric="resolution", event="applied", state="running", colour="green",
                       target_minutes=240, started_at=t0, due_at=t0 + 240 * M)
    # the last quarter of 240 minutes starts 60 minutes before the due time
    assert sla_clock([applied]) == (t0 + 240 * M, t0 + 180 * M)
    # a warning at 150 minutes makes it at risk from then; an earlier first reply target rules both
    warned = SlaState(at=t0 + 150 * M, metric="resolution", event="warning", colour="yellow", due_at=t0 + 240 * M)
    first = SlaState(at=t0, metric="first_response", event="applied", state="running", colour="green",
                     target_minutes=60, started_at=t0, due_at=t0 + 60 * M)
    assert sla_clock([applied, warned]) == (t0 + 240 * M, t0 + 150 * M)
    assert sla_clock([warned, first, applied]) == (t0 + 60 * M, t0 + 45 * M)
    # paused targets do not run; a breach reported before the due time makes it overdue then
    paused = SlaState(at=t0 + 10 * M, metric="first_response", event="paused", state="paused")
    assert sla_clock([applied, first, paused]) == (t0 + 240 * M, t0 + 180 * M)
    breached = SlaState(at=t0 + 30 * M, metric="first_response", event="breached", colour="breached",
                        due_at=t0 + 60 * M)
    assert sla_clock([applied, first, breached]) == (t0 + 30 * M, t0 + 30 * M)
    assert sla_clock([]) == (None, None)
