"""The scripted Shanghai day (tests/fixtures/shanghai_day.py) through the real consumer and API.

200 tickets of eleven archetypes are published to the test broker as ticket-svc, sla-svc and
customer-svc publish them, interleaved across tickets, some tickets' events in reverse order,
some events delivered twice (same id: the inbox drops it) and some re-published under a new id
(the read model's natural fact keys drop it). Once the consumer has folded everything, every
per-ticket figure, the day's rollups and the reports must equal the hand-computed values of the
scenario, in calendar and in business minutes.
"""

from __future__ import annotations

import asyncio
import importlib.util
import random
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import text

from helpdesk_common import events
from helpdesk_common.identity import Principal
from helpdesk_common.testing import identity_headers, wait_for


def _load_scenario() -> Any:
    """The scenario module (pytest runs with --import-mode=importlib: no sys.path for tests)."""
    name = "analytics_shanghai_day_scenario"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).parent / "fixtures" / "shanghai_day.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


S = _load_scenario()
ADMIN = identity_headers(Principal(kind="user", id=str(uuid.uuid5(S.NS, "admin")), role="admin"))
FOLD_CONSUMER = "analytics-svc.facts"
#: the scripted day in Shanghai, [00:00, 24:00) local, as UTC instants
DAY_START, DAY_END = S.sh(0, 0), S.sh(0, 0) + timedelta(days=1)
#: per-ticket columns compared (everything the scenario states for a ticket)
DURATIONS = ("first_reply", "next_replies_total", "full_resolution", "requester_wait", "agent_wait", "on_hold")


def delivery(tickets: list[Any], seed: int = 20261124) -> tuple[list[Any], int]:
    """The order the consumer sees: tickets interleaved at random (each ticket's events keep
    their order, as one Kafka key does), every fifth ticket's events reversed (a solve before
    the creation), every eleventh event delivered again with the same id, and every
    thirteenth message or survey answer re-published under a new id. Returns (events, copies)."""
    rng = random.Random(seed)
    queues = []
    for n, t in enumerate(tickets):
        evts = list(t.events)
        if n % 5 == 2:
            evts.reverse()
        queues.append(evts)
    stream: list[Any] = []
    while any(queues):
        queue = rng.choice([q for q in queues if q])
        stream.append(queue.pop(0))
    out: list[Any] = []
    copies = 0
    for n, e in enumerate(stream):
        out.append(e)
        if n % 11 == 5:
            out.append(e)  # a redelivery: same envelope id
            copies += 1
        if n % 13 == 7 and e.type in ("ticket.message_added", "survey.answered"):
            out.append(e.model_copy(update={"id": uuid.uuid5(S.NS, f"republished/{e.id}")}))
            copies += 1
    return out, copies


async def publish(bootstrap: str, prefix: str, evts: list[Any]) -> None:
    """Publish to each event's topic with its key (like helpdesk_common.testing.produce), sending
    without waiting for each acknowledgement: per key the producer keeps the order."""
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        pending = [await producer.send(prefix + events.TOPIC_BY_TYPE[e.type], events.encode(e),
                                       key=e.subject.encode()) for e in evts]
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


async def folded_count(db: Any) -> int:
    async with db.connect() as conn:
        return await conn.scalar(text("SELECT count(*) FROM inbox WHERE consumer = :c"), {"c": FOLD_CONSUMER})


def _same(expected: Any, got: Any) -> bool:
    if isinstance(expected, float) and isinstance(got, int | float) and not isinstance(got, bool):
        return abs(expected - got) < 1e-6
    if isinstance(expected, datetime) and isinstance(got, datetime):
        return expected == got
    if isinstance(expected, uuid.UUID):
        return str(expected) == str(got)
    return expected == got


def compare_tickets(tickets: list[Any], rows: dict[uuid.UUID, Any]) -> tuple[list[str], int]:
    """Every stated figure of every ticket against its row: (differences, values checked)."""
    wrong: list[str] = []
    checked = 0
    for t in tickets:
        row = rows.get(t.id)
        if row is None:
            wrong.append(f"{t.archetype}#{t.i}: no ticket_metrics row")
            continue
        for column, expected in t.expected.items():
            got = row._mapping[column]
            checked += 1
            if not _same(expected, got):
                wrong.append(f"{t.archetype}#{t.i} {column}: expected {expected!r}, got {got!r}")
        checked += 1
        if sorted(row.tags or []) != sorted(t.tags):
            wrong.append(f"{t.archetype}#{t.i} tags: expected {sorted(t.tags)!r}, got {row.tags!r}")
    return wrong, checked


async def rollup_sums(db: Any, dim: str, columns: tuple[str, ...], *, start: datetime = DAY_START,
                      end: datetime = DAY_END) -> dict[str, dict[str, float]]:
    """Sums of rollup columns over [start, end) per value of ``dim`` (hour buckets are UTC hours;
    the Shanghai day is whole UTC hours, so its hours are exactly the buckets in the range)."""
    select = ", ".join(f"sum({c}) AS {c}" for c in columns)
    async with db.connect() as conn:
        rows = (await conn.execute(text(
            f"SELECT dim_value, {select} FROM metric_rollups WHERE dim = :dim AND bucket >= :start AND bucket < :end "
            "GROUP BY dim_value"), {"dim": dim, "start": start, "end": end})).all()
    return {r.dim_value: {c: float(r._mapping[c] or 0) for c in columns} for r in rows}


def differences(expected: dict[str, float], got: dict[str, float], where: str) -> list[str]:
    return [f"{where} {k}: expected {v!r}, got {got.get(k)!r}" for k, v in expected.items()
            if not _same(float(v), got.get(k))]


async def test_the_scripted_shanghai_day(full, infra, db):
    from analytics_svc.main import fold_handlers

    tickets = S.build_day()
    assert len(tickets) == 200
    handled = set(fold_handlers())

    # the calendars were announced days before (stale versions last): folded before the day starts
    calendars = S.calendar_events()
    await publish(infra.kafka_bootstrap, full.topics, calendars)
    calendar_ids = {e.id for e in calendars if e.type in handled}

    async def calendars_folded():
        return await folded_count(db) >= len(calendar_ids)

    await wait_for(calendars_folded, timeout=60)

    stream, copies = delivery(tickets)
    await publish(infra.kafka_bootstrap, full.topics, stream)
    expected_inbox = len(calendar_ids) + len({e.id for e in stream if e.type in handled})

    async def everything_folded():
        return await folded_count(db) >= expected_inbox

    await wait_for(everything_folded, timeout=600, interval=0.5)

    # (a) every ticket's row, figure by figure
    async with db.connect() as conn:
        rows = {r.ticket_id: r for r in (await conn.execute(text("SELECT * FROM ticket_metrics"))).all()}
        facts = await conn.scalar(text("SELECT count(*) FROM ticket_history"))
    wrong, checked = compare_tickets(tickets, rows)
    assert not wrong, f"{len(wrong)} of {checked} per-ticket figures differ:\n" + "\n".join(wrong[:60])
    assert len(rows) == 200

    # the day's rollups (dimension 'all', the Shanghai day's 24 UTC hours)
    problems: list[str] = []
    totals = await rollup_sums(db, "all", tuple(S.DAY_TOTALS))
    problems += differences(S.DAY_TOTALS, totals.get("", {}), "day")
    team_columns = tuple(next(iter(S.TEAM_TOTALS.values())))
    teams = await rollup_sums(db, "team", team_columns)
    for team_id, name in S.TEAM_NAMES.items():
        problems += differences(S.TEAM_TOTALS[name], teams.get(str(team_id), {}), f"team {name}")
    for hour in range(24):
        start = S.sh(hour, 0)
        got = (await rollup_sums(db, "all", ("created", "solved"), start=start,
                                 end=start + timedelta(hours=1))).get("", {})
        problems += differences({"created": S.CREATED_BY_HOUR.get(hour, 0), "solved": S.SOLVED_BY_HOUR.get(hour, 0)},
                                {"created": got.get("created", 0.0), "solved": got.get("solved", 0.0)},
                                f"hour {hour:02d}")
    # the UTC day puts the ten tickets created before 08:00 in Shanghai on 23 November
    utc_23 = await rollup_sums(db, "all", ("created",), start=datetime(2026, 11, 23, tzinfo=UTC),
                               end=datetime(2026, 11, 24, tzinfo=UTC))
    problems += differences({"created": 10}, utc_23.get("", {}), "UTC 23 Nov")
    async with db.connect() as conn:
        sla_rows = (await conn.execute(text(
            "SELECT metric, sum(achieved) AS achieved, sum(breached) AS breached FROM sla_rollups "
            "WHERE dim = 'all' AND bucket >= :s AND bucket < :e GROUP BY metric"),
            {"s": DAY_START, "e": DAY_END})).all()
    got_sla = {r.metric: (int(r.achieved), int(r.breached)) for r in sla_rows}
    if got_sla != S.SLA_BY_METRIC:
        problems.append(f"sla_rollups per metric: expected {S.SLA_BY_METRIC}, got {got_sla}")
    assert not problems, "\n".join(problems)

    print(f"\nshanghai day: {len(tickets)} tickets, {len(stream)} events delivered ({copies} duplicates), "
          f"{facts} facts, {checked} per-ticket figures checked")
