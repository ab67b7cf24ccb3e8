"""ticket.created in one statement: the projection and the timers written together when the
process has the policies of the current generation cached, and the fallbacks when it has not
(a policy written since, a replayed event)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

M = timedelta(minutes=1)
#: what differs between two tickets' timers whatever path wrote them
_PER_TICKET = {"ticket_id", "id", "created_at", "updated_at", "started_at", "running_since", "due_at", "fire_at",
               "next_fire_at", "paused_at"}


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


async def _policy(db, name, targets, **definition):
    """A policy written straight into the table, with the generation bump every policy write makes."""
    import uuid

    from sla_svc.policies import repository as policies
    from sla_svc.timers import repository

    body = {"conditions": {}, "targets": targets, "pause_statuses": ["pending", "on_hold"],
            "warning_fractions": [0.5, 0.75], "escalations": {}, **definition}
    async with db.begin() as conn:
        await policies.insert(conn, policy_id=uuid.uuid4(), name=name, position=await policies.next_position(conn),
                              enabled=True, definition=body)
        return await repository.bump_generation(conn)


class _Statements:
    """Statements run on the driver connections of ``db`` while the context is open."""

    def __init__(self):
        self.sql: list[str] = []

    def __call__(self, record):
        self.sql.append(record.query)


async def _handle_counting(db, event):
    """Apply one event as the consumer does (one transaction) and return the statements it ran,
    BEGIN and COMMIT left out."""
    from helpdesk_common.db import driver_of
    from sla_svc.timers.handlers import HANDLERS

    log = _Statements()
    async with db.begin() as conn:
        driver = await driver_of(conn)
        driver.add_query_logger(log)
        try:
            await HANDLERS[event.type](conn, event)
            await asyncio.sleep(0.05)  # the logger runs after the statement
        finally:
            driver.remove_query_logger(log)
    return [s for s in log.sql if s.strip().upper() not in ("BEGIN", "COMMIT", "BEGIN;", "COMMIT;")]


async def test_the_timer_columns_types_are_the_tables(db):
    from sla_svc.timers import repository

    async with db.connect() as conn:
        rows = (await conn.execute(text(
            "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
            "WHERE a.attrelid = 'sla_timers'::regclass AND a.attnum > 0 AND NOT a.attisdropped"))).all()
    table = {name: kind.replace("timestamp with time zone", "timestamptz") for name, kind in rows}
    assert {n: table[n] for n in repository.COLUMN_TYPES} == repository.COLUMN_TYPES


async def test_a_new_ticket_is_one_statement_once_the_policies_are_cached(make, handle, timers, sla_events, db):
    await _policy(db, "p", {"first_response": {"minutes": 30}, "resolution": {"minutes": 120}},
                  escalations={"first_response": {"set_priority": "urgent", "notify": ["supervisor"]}})
    t = _now()
    first = make.created(at=t)
    slow = await _handle_counting(db, first)  # nothing cached yet: the projection, the policies, each timer
    second = make.created(at=t)
    fast = await _handle_counting(db, second)
    assert len(fast) == 1 and "INSERT INTO sla_tickets" in fast[0] and "INSERT INTO sla_timers" in fast[0], fast
    assert len(slow) > len(fast)
    one, two = await timers(first.data.ticket_id), await timers(second.data.ticket_id)
    assert set(one) == set(two) == {"first_response", "resolution"}
    for metric in one:
        a = {k: v for k, v in one[metric].items() if k not in _PER_TICKET}
        b = {k: v for k, v in two[metric].items() if k not in _PER_TICKET}
        assert a == b and a["policy"] == "p"
        assert one[metric]["due_at"] == two[metric]["due_at"] == t + one[metric]["target_minutes"] * M
        assert one[metric]["fire_at"] == two[metric]["fire_at"]
    assert one["first_response"]["escalation"] == two["first_response"]["escalation"] is not None
    for ticket in (first, second):
        applied = [e for e in await sla_events(ticket.data.ticket_id) if e.type == "sla.applied"]
        assert [e.data.metric for e in applied] == ["first_response", "resolution"]
        assert [e.data.due_at for e in applied] == [t + 30 * M, t + 120 * M]


async def test_a_policy_written_since_the_cache_is_used_and_its_generation_stamped(make, handle, timers, db):
    await _policy(db, "old", {"first_response": {"minutes": 30}}, conditions={"priority": ["normal"]})
    await handle(make.created())  # caches the policies of this generation
    generation = await _policy(db, "new", {"first_response": {"minutes": 10}}, conditions={"priority": ["urgent"]})
    created = make.created(priority="urgent")
    ran = await _handle_counting(db, created)
    assert len(ran) > 1  # the statement wrote the projection only; the handler read the policies
    row = (await timers(created.data.ticket_id))["first_response"]
    assert (row["policy"], row["target_minutes"], row["generation"]) == ("new", 10, generation)
    again = make.created(priority="urgent")  # the cache now holds the new generation
    assert len(await _handle_counting(db, again)) == 1
    row = (await timers(again.data.ticket_id))["first_response"]
    assert (row["policy"], row["generation"]) == ("new", generation)


async def test_a_replayed_ticket_created_writes_nothing_twice(make, handle, timers, sla_events, db):
    await _policy(db, "p", {"first_response": {"minutes": 30}})
    await handle(make.created())
    created = make.created()
    await handle(created)
    before = await timers(created.data.ticket_id)
    async with db.begin() as conn:  # a later event changed the projection
        await conn.execute(text("UPDATE sla_tickets SET priority = 'urgent' WHERE ticket_id = :t"),
                           {"t": created.data.ticket_id})
    await handle(created)
    assert await timers(created.data.ticket_id) == before
    assert [e.type for e in await sla_events(created.data.ticket_id)] == ["sla.applied"]
    async with db.connect() as conn:
        priority = (await conn.execute(text("SELECT priority FROM sla_tickets WHERE ticket_id = :t"),
                                       {"t": created.data.ticket_id})).scalar_one()
    assert priority == "urgent"


async def test_a_ticket_created_in_a_pause_status_starts_paused_in_one_statement(make, handle, timers, sla_events, db):
    await _policy(db, "p", {"first_response": {"minutes": 30}, "resolution": {"minutes": 120}})
    await handle(make.created())
    t = _now()
    created = make.created(at=t, status="pending")
    ran = await _handle_counting(db, created)
    assert "INSERT INTO sla_timers" in ran[0] and all("UPDATE sla_timers" in s for s in ran[1:]), ran
    rows = await timers(created.data.ticket_id)
    assert {m: (r["status"], r["paused_at"]) for m, r in rows.items()} == {
        "first_response": ("paused", t), "resolution": ("paused", t)}
    assert [e.type for e in await sla_events(created.data.ticket_id)] == [
        "sla.applied", "sla.paused", "sla.applied", "sla.paused"]


async def test_a_policy_without_targets_writes_the_projection_alone(make, handle, timers, db):
    await _policy(db, "none", {}, conditions={"priority": ["low"]})
    await handle(make.created())
    created = make.created(priority="low")
    ran = await _handle_counting(db, created)
    assert len(ran) == 1 and "INSERT INTO sla_timers" not in ran[0]
    assert await timers(created.data.ticket_id) == {}
    async with db.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM sla_tickets WHERE ticket_id = :t"),
                                   {"t": created.data.ticket_id})).scalar_one() == 1
