"""The only place with SQL for timers on the event-handler and API side, on the caller's
transaction: SQLAlchemy Core, except what every ticket.created runs (``start``,
``current_generation``), which goes to the asyncpg connection under it (``db.driver_of``). The
scheduler's hot path is in ``firing.py`` on bare asyncpg."""

from __future__ import annotations

import functools
import uuid
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from helpdesk_common.db import RecordRow, driver_of
from helpdesk_common.outbox import insert_many_sql, insert_rows_params, note_write

from . import deferral

TIMERS_CHANNEL = "sla_timers"
RECALC_CHANNEL = "sla_recalc"
_SWEEP_LOCK_ID = 0x736C6173776570  # "slaswep"

_WRITABLE = (
    "policy", "policy_id", "target_minutes", "calendar_id", "started_at", "running_since", "consumed_s", "due_at",
    "fire_at", "fractions", "fired_count", "next_fire_at", "status", "pause_statuses", "escalation", "generation",
    "paused_at", "fulfilled_at", "breached_at", "cancelled_at", "target_from",
)


def _params(values: dict[str, Any]) -> dict[str, Any]:
    return {k: (orjson.dumps(v).decode() if k == "escalation" and v is not None else v) for k, v in values.items()}


def _value_sql(name: str) -> str:
    return f"CAST(:{name} AS jsonb)" if name == "escalation" else f":{name}"


@functools.lru_cache(maxsize=64)
def _start_sql(names: tuple[str, ...], restart: bool) -> str:
    """The INSERT of a timer with these columns (``$n`` in their order; pure, cached: a start
    always passes the same columns)."""
    vals = ", ".join(f"CAST(${i} AS jsonb)" if n == "escalation" else f"${i}" for i, n in enumerate(names, 1))
    if restart:
        sets = ", ".join(f"{n} = EXCLUDED.{n}" for n in names[2:])
        # the caller passes every column of a fresh timer (the *_at markers as None)
        conflict = f"DO UPDATE SET {sets}, cycle = sla_timers.cycle + 1, updated_at = now()"
    else:
        conflict = "DO NOTHING"
    return (f"INSERT INTO sla_timers ({', '.join(names)}) VALUES ({vals}) "
            f"ON CONFLICT (ticket_id, metric) {conflict} RETURNING *")


#: the SQL types of the columns a fresh timer is inserted with, for statements whose
#: parameters PostgreSQL cannot type from the target columns (``INSERT ... SELECT``);
#: ``tests/test_created_statement.py`` compares them with the table
COLUMN_TYPES = {
    "ticket_id": "uuid", "metric": "text", "policy": "text", "policy_id": "uuid", "target_minutes": "integer",
    "calendar_id": "uuid", "started_at": "timestamptz", "running_since": "timestamptz",
    "consumed_s": "double precision", "due_at": "timestamptz", "fire_at": "timestamptz[]",
    "fractions": "double precision[]", "fired_count": "integer", "next_fire_at": "timestamptz", "status": "text",
    "pause_statuses": "text[]", "escalation": "jsonb", "generation": "bigint", "paused_at": "timestamptz",
    "fulfilled_at": "timestamptz", "breached_at": "timestamptz", "cancelled_at": "timestamptz",
    "target_from": "text",
}


def start_columns(values: dict[str, Any]) -> tuple[str, ...]:
    """The columns ``start`` writes for these values, in order."""
    return ("ticket_id", "metric", *[k for k in values if k in _WRITABLE])


def start_params(values: dict[str, Any], names: tuple[str, ...]) -> list[Any]:
    params = _params(values)
    return [params[n] for n in names]


async def start(conn: AsyncConnection, values: dict[str, Any], *, restart: bool) -> Any:
    """Insert the (ticket, metric) timer. ``restart`` turns an existing row into a fresh cycle
    (cycle + 1); without it an existing row wins and None is returned (a replayed start).
    Every ticket.created runs it twice: on the driver connection (``db.driver_of``)."""
    names = start_columns(values)
    row = await (await driver_of(conn)).fetchrow(_start_sql(names, restart), *start_params(values, names))
    return RecordRow(row) if row is not None else None


async def get(conn: AsyncConnection, ticket_id: uuid.UUID, metric: str, *, lock: bool = False) -> Row | None:
    return (await conn.execute(
        text("SELECT * FROM sla_timers WHERE ticket_id = :t AND metric = :m" + (" FOR UPDATE" if lock else "")),
        {"t": ticket_id, "m": metric},
    )).first()


async def live_of(conn: AsyncConnection, ticket_id: uuid.UUID) -> list[Row]:
    """The ticket's running and paused timers, locked (the scheduler skips locked rows)."""
    return list((await conn.execute(
        text("SELECT * FROM sla_timers WHERE ticket_id = :t AND status IN ('running', 'paused') "
             "ORDER BY metric FOR UPDATE"), {"t": ticket_id})).all())


async def all_of(conn: AsyncConnection, ticket_id: uuid.UUID) -> list[Row]:
    return list((await conn.execute(
        text("SELECT * FROM sla_timers WHERE ticket_id = :t ORDER BY metric"), {"t": ticket_id})).all())


async def update(conn: AsyncConnection, timer_id: int, values: dict[str, Any]) -> Row:
    names = [k for k in values if k in _WRITABLE]
    sets = ", ".join(f"{n} = {_value_sql(n)}" for n in names)
    return (await conn.execute(
        text(f"UPDATE sla_timers SET {sets}, updated_at = now() WHERE id = :timer_id RETURNING *"),
        {**_params({n: values[n] for n in names}), "timer_id": timer_id},
    )).one()


async def record_outcome(conn: AsyncConnection, *, ticket_id: uuid.UUID, metric: str, cycle: int, outcome: str,
                         due_at: datetime | None, at: datetime, overwrite: bool = False) -> None:
    """One outcome per cycle; ``overwrite`` corrects a breach that a late-arriving but on-time
    fulfilment disproves (the consumer lagged behind the scheduler)."""
    conflict = "DO UPDATE SET outcome = EXCLUDED.outcome, at = EXCLUDED.at" if overwrite else "DO NOTHING"
    await conn.execute(
        text("INSERT INTO sla_outcomes (ticket_id, metric, cycle, outcome, due_at, at) "
             f"VALUES (:t, :m, :c, :o, :d, :a) ON CONFLICT (ticket_id, metric, cycle) {conflict}"),
        {"t": ticket_id, "m": metric, "c": cycle, "o": outcome, "d": due_at, "a": at},
    )


async def notify_timers(conn: AsyncConnection, earliest: datetime) -> None:
    """Wake the schedulers (delivered at commit) when a timer may fire sooner than they sleep;
    inside a consumer transaction, once at its end for the earliest (``deferral``)."""
    deferred = deferral.current()
    if deferred is not None:
        deferred.wakeups.append(earliest)
        return
    await conn.execute(text("SELECT pg_notify(:c, :p)"), {"c": TIMERS_CHANNEL, "p": repr(earliest.timestamp())})


async def write_events_and_wake(conn: AsyncConnection, table: Any, rows: list[dict[str, Any]],
                                earliest: datetime) -> None:
    """A consumer transaction's ``sla.*`` rows (``outbox_rows``, in their order) and the
    schedulers' wake-up for ``earliest`` in one statement on the driver connection: two
    SQLAlchemy round trips before, at the end of nearly every batch that started timers."""
    note_write()
    await (await driver_of(conn)).execute(_events_and_wakeup_sql(table), *insert_rows_params(rows),
                                          TIMERS_CHANNEL, repr(earliest.timestamp()))


@functools.lru_cache(maxsize=4)
def _events_and_wakeup_sql(table: Any) -> str:
    return f"WITH written AS ({insert_many_sql(table, first=1)}) SELECT pg_notify($7, $8)"


#: the recalculation generation (docs/sla.md, "Recalculation"); also read by the statement that
#: projects a new ticket (``tickets.repository.upsert_created``), before its handler reads policies
GENERATION = "SELECT generation FROM sla_state WHERE id = 1"


async def current_generation(conn: AsyncConnection) -> int:
    return int(await (await driver_of(conn)).fetchval(GENERATION))


async def bump_generation(conn: AsyncConnection) -> int:
    """Every policy or calendar write: live timers computed before it get recalculated."""
    generation = int(await conn.scalar(
        text("UPDATE sla_state SET generation = generation + 1 WHERE id = 1 RETURNING generation")))
    await conn.execute(text("SELECT pg_notify(:c, :p)"), {"c": RECALC_CHANNEL, "p": str(generation)})
    return generation


async def try_sweep_lock(conn: AsyncConnection) -> bool:
    """One sweeping replica at a time (transaction-scoped advisory lock): a sweep that locked
    some of a ticket's rows with SKIP LOCKED while a handler held the others could deadlock."""
    return bool(await conn.scalar(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": _SWEEP_LOCK_ID}))


async def stale_tickets(conn: AsyncConnection, *, generation: int, limit: int) -> list[uuid.UUID]:
    """Tickets with a live timer computed under an older generation (partial-index probe).
    Not locked here: ``retarget`` locks each ticket's rows in the handlers' order."""
    rows = (await conn.execute(
        text("SELECT ticket_id FROM sla_timers WHERE status IN ('running', 'paused') AND generation < :g "
             "ORDER BY generation LIMIT :n"), {"g": generation, "n": limit})).all()
    return list(dict.fromkeys(r.ticket_id for r in rows))


async def compliance(conn: AsyncConnection, *, start: datetime, end: datetime) -> list[Row]:
    return list((await conn.execute(
        text("SELECT metric, count(*) FILTER (WHERE outcome = 'fulfilled') AS fulfilled, "
             "count(*) FILTER (WHERE outcome = 'breached') AS breached "
             "FROM sla_outcomes WHERE at >= :s AND at < :e GROUP BY metric ORDER BY metric"),
        {"s": start, "e": end})).all())
