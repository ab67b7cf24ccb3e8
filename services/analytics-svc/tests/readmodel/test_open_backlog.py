"""The board's open backlog (open, unassigned, backlog ages) from the fold's open_rollups equals
the count over ticket_metrics' open rows it replaced, for random tickets folded in random order and
batches (created around the age bounds to the second, assigned, reassigned, solved, reopened,
merged), at several instants and for every kind of scope (admin, teams, an agent)."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from analytics_svc.access import Selection, ticket_filter
from analytics_svc.kpis import service
from analytics_svc.metrics.rules import BACKLOG_BUCKETS
from analytics_svc.reports.repository import OPEN_TICKET, ticket_scope_sql

from .test_fold_db import TEAM_X, TEAM_Y, assigned, created, fold_batches, merged, status

NOW = datetime(2026, 12, 1, 9, 41, 17, 250000, tzinfo=UTC)
BOUNDS_H = [1, 8, 24, 72, 168, 720]
AGENTS = ["a1", "a2", "a3"]


def old_open_sql(scope_sql: str) -> str:
    """The board's open-ticket figures as they were computed before open_rollups (a scan of the
    open tickets; $1 the age thresholds, youngest first; the scope's arguments from $2)."""
    backlog = ", ".join(
        f"count(*) FILTER (WHERE m.created_at > ($1::timestamptz[])[{i + 1}]"
        + (f" AND m.created_at <= ($1::timestamptz[])[{i}]" if i else "") + f") AS b{i}"
        for i in range(6))
    return (f"SELECT count(*) AS n, count(*) FILTER (WHERE m.assignee_id IS NULL) AS unassigned, {backlog} "
            f"FROM ticket_metrics m WHERE {OPEN_TICKET} AND {scope_sql}")


def created_at(rng: random.Random) -> datetime:
    """Around an age bound (exactly on it, or seconds either side), anywhere in 45 days, or just ahead."""
    kind = rng.random()
    if kind < 0.5:
        bound = NOW - timedelta(hours=rng.choice(BOUNDS_H))
        return bound + timedelta(seconds=rng.choice([0, 0, -1, 1, -59, 59, -3599, 3599, -0.5, 0.5]))
    if kind < 0.95:
        return NOW - timedelta(seconds=rng.uniform(0, 45 * 86400))
    return NOW + timedelta(seconds=rng.uniform(0, 600))


def ticket_events(rng: random.Random, tid: uuid.UUID, others: list[uuid.UUID]) -> list:
    at = created_at(rng)
    team = rng.choice([TEAM_X, TEAM_Y, None])
    assignee = rng.choice([None, *AGENTS]) if team is not None else None
    out = [created(tid, at=at, team=team, assignee=assignee)]
    version = 1
    for _ in range(rng.randint(0, 4)):
        step = rng.random()
        later = at + timedelta(minutes=rng.randint(1, 300))
        version += 1
        if step < 0.35:
            out.append(assigned(tid, later, rng.choice([None, *AGENTS]), rng.choice([TEAM_X, TEAM_Y])))
        elif step < 0.65:
            out.append(status(tid, "solved", later, version))
        elif step < 0.85:
            out.append(status(tid, "open", later, version, frm="solved"))
        elif others:
            out.append(merged(tid, rng.choice(others)))
    return out


async def fold_random_tickets(raw, rng: random.Random, count: int, events_of) -> None:
    """``count`` tickets' events (``events_of(rng, ticket, earlier tickets)``), shuffled and folded
    in batches of random size, as the consumer's."""
    tickets = [uuid.uuid4() for _ in range(count)]
    evts = [e for i, t in enumerate(tickets) for e in events_of(rng, t, tickets[:i])]
    rng.shuffle(evts)
    i = 0
    while i < len(evts):
        size = rng.randint(1, 40)
        await fold_batches(raw, evts[i:i + size], size)
        i += size


SCOPES = [
    Selection("all", ("",)),
    Selection("team", (str(TEAM_X),)),
    Selection("team", (str(TEAM_Y),)),
    Selection("team", (str(TEAM_X), str(TEAM_Y))),
    Selection("agent", ("a1",)),
    Selection("agent", ("a2", "a3")),
]


@pytest.mark.parametrize("seed", [7, 20261201])
async def test_open_backlog_from_open_rollups_equals_the_open_ticket_count(raw, seed):
    rng = random.Random(seed)
    await fold_random_tickets(raw, rng, 120, ticket_events)
    assert await raw.fetchval(f"SELECT count(*) FROM ticket_metrics m WHERE {OPEN_TICKET}") > 20
    assert await raw.fetchval(f"SELECT count(*) FROM ticket_metrics m WHERE NOT ({OPEN_TICKET})") > 10
    names = [name for name, _ in BACKLOG_BUCKETS]
    instants = [NOW, NOW + timedelta(seconds=1), NOW - timedelta(seconds=1), NOW + timedelta(minutes=30),
                NOW.replace(minute=0, second=0, microsecond=0), NOW + timedelta(hours=5, seconds=3)]
    compared = 0
    for now in instants:
        thresholds = service.age_thresholds(now)
        for selection in SCOPES:
            scope_sql, scope_args = ticket_scope_sql(ticket_filter(selection), "m", 2)
            old = dict(await raw.fetchrow(old_open_sql(scope_sql), thresholds, *scope_args))
            body = await service.kpis(raw, now=now, tz_name="UTC", selection=selection)
            expected_backlog = {name: int(old[f"b{i}"]) for i, name in enumerate(names[:-1])}
            expected_backlog[names[-1]] = int(old["n"]) - sum(expected_backlog.values())
            assert (body["open_tickets"], body["unassigned_tickets"], body["backlog"]) == \
                (old["n"], old["unassigned"], expected_backlog), (now, selection)
            compared += old["n"]
    assert compared > 0
