"""The rebuild's SQL (plain SQL on asyncpg): the fold lock, the fresh schema, the swap, and the
row-by-row comparison of two schemas' read-model tables.

Schema and table names are never taken from a caller: they are checked against ``_IDENT`` (the
names the rebuild makes itself, or what ``information_schema`` lists) before they are quoted into
DDL, which cannot take them as parameters.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from helpdesk_common.db import holds_session_state

#: the advisory-lock key the live consumer takes shared in every batch transaction and the
#: rebuild takes exclusively to swap tables: no batch can straddle the swap (a constant, so every
#: replica and the rebuild command agree: the bytes 'an-fold!' as a signed 64-bit integer)
FOLD_LOCK_KEY = int.from_bytes(b"an-fold!", "big", signed=True)
#: a session lock that keeps two rebuilds of one database from running at once
REBUILD_RUNNING_KEY = int.from_bytes(b"an-rbld!", "big", signed=True)

#: tables of the service that are not read models: the bus and Alembic's bookkeeping
NOT_READ_MODELS = frozenset({"alembic_version", "inbox", "outbox"})
#: where the tables a swap replaced are kept until the next rebuild
PREVIOUS_SCHEMA = "analytics_before_rebuild"
REBUILD_SCHEMA_PREFIX = "analytics_rebuild_"

_IDENT = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
# a column filled from the wall clock (default now() / clock_timestamp()): differs by design
# between a live fold and a replay, so comparisons leave it out
_WALL_CLOCK_DEFAULT = re.compile(r"clock_timestamp\(\)|now\(\)|current_timestamp|statement_timestamp\(\)", re.I)


def ident(name: str) -> str:
    """A schema or table name, quoted for DDL once it is known to be one of ours."""
    if not _IDENT.match(name):
        raise ValueError(f"not a plain identifier: {name!r}")
    return f'"{name}"'


async def hold_fold_lock(conn: Any) -> None:
    """The live consumer's first statement in each transaction (``ConsumerSpec.on_begin``)."""
    await conn.execute("SELECT pg_advisory_xact_lock_shared($1)", FOLD_LOCK_KEY)


async def take_fold_lock(conn: Any) -> None:
    """Exclusive: waits for the live batches in flight, holds new ones until this transaction ends."""
    await conn.execute("SELECT pg_advisory_xact_lock($1)", FOLD_LOCK_KEY)


async def try_rebuild_lock(conn: Any) -> bool:
    holds_session_state(conn)  # a session lock: the pool's reset drops it should the rebuild die holding it
    return bool(await conn.fetchval("SELECT pg_try_advisory_lock($1)", REBUILD_RUNNING_KEY))


async def release_rebuild_lock(conn: Any) -> None:
    await conn.execute("SELECT pg_advisory_unlock($1)", REBUILD_RUNNING_KEY)


async def current_schema(conn: Any) -> str:
    return str(await conn.fetchval("SELECT current_schema()"))


async def schema_exists(conn: Any, schema: str) -> bool:
    return bool(await conn.fetchval("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)", schema))


async def create_schema(conn: Any, schema: str) -> None:
    await conn.execute(f"CREATE SCHEMA {ident(schema)}")


async def drop_schema(conn: Any, schema: str) -> None:
    await conn.execute(f"DROP SCHEMA IF EXISTS {ident(schema)} CASCADE")


async def leftover_rebuild_schemas(conn: Any) -> list[str]:
    """Schemas of rebuilds that stopped before cleaning up (dropped by the next run)."""
    rows = await conn.fetch(
        "SELECT nspname FROM pg_namespace WHERE starts_with(nspname, $1) ORDER BY nspname", REBUILD_SCHEMA_PREFIX
    )
    return [r["nspname"] for r in rows]


async def read_model_tables(conn: Any, schema: str) -> list[str]:
    """Every table of ``schema`` that events build (all but the bus tables), sorted."""
    rows = await conn.fetch(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = $1 AND table_type = 'BASE TABLE' "
        "ORDER BY table_name",
        schema,
    )
    return [r["table_name"] for r in rows if r["table_name"] not in NOT_READ_MODELS]


async def table_shapes(conn: Any, schema: str, tables: Sequence[str]) -> dict[str, tuple[Any, ...]]:
    """Columns (name, type, nullability, default) and index definitions per table, with the
    schema name taken out: equal shapes mean the rebuilt tables can replace the live ones."""
    cols = await conn.fetch(
        "SELECT table_name, column_name, data_type, udt_name, is_nullable, column_default FROM information_schema.columns "
        "WHERE table_schema = $1 AND table_name = ANY($2::text[]) ORDER BY table_name, ordinal_position",
        schema, list(tables),
    )
    idx = await conn.fetch(
        "SELECT tablename, indexname, replace(indexdef, $1, '') AS def FROM pg_indexes "
        "WHERE schemaname = $2 AND tablename = ANY($3::text[]) ORDER BY tablename, indexname",
        f"{schema}.", schema, list(tables),
    )
    shapes: dict[str, list[Any]] = {t: [] for t in tables}
    for c in cols:
        default = (c["column_default"] or "").replace(f'"{schema}".', "").replace(f"{schema}.", "")
        shapes[c["table_name"]].append(
            ("column", c["column_name"], c["data_type"], c["udt_name"], c["is_nullable"], default))
    for i in idx:
        shapes[i["tablename"]].append(("index", i["indexname"], i["def"].replace(f'"{schema}".', "")))
    return {t: tuple(v) for t, v in shapes.items()}


async def compared_columns(conn: Any, schema: str, table: str) -> list[tuple[str, str]]:
    """(column, data type) of the columns a comparison looks at: all but wall-clock ones."""
    rows = await conn.fetch(
        "SELECT column_name, data_type, column_default FROM information_schema.columns "
        "WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position",
        schema, table,
    )
    return [(r["column_name"], r["data_type"]) for r in rows
            if not _WALL_CLOCK_DEFAULT.search(r["column_default"] or "") and r["column_name"] != "ingested_at"]


def _comparable(column: str, data_type: str) -> str:
    # sums of floating-point minutes depend on the order they were added in (in the last bits):
    # compared to a millionth of a minute, far below any figure the API shows
    if data_type in ("double precision", "real"):
        return f"round({ident(column)}::numeric, 6)"
    # a histogram whose bins all went back to zero is the same figure as none: whether a row ends
    # with zeros or NULL depends on which batches added and took back its bins
    if data_type == "ARRAY" and column.endswith("_hist"):
        return f"CASE WHEN 0 = ALL({ident(column)}) THEN NULL ELSE {ident(column)} END"
    return ident(column)


_NUMBERS = frozenset({"bigint", "integer", "smallint", "double precision", "real", "numeric"})


def figures_only(table: str, columns: Sequence[tuple[str, str]]) -> str:
    """A WHERE clause that leaves out rollup rows adding nothing to any figure (every count and
    sum zero, histograms empty): a re-fold that moves a ticket's contribution to another bucket or
    value leaves such a row behind, and which ones depends on the order events arrived in, so
    they are not part of what a replay must reproduce. Other tables compare every row."""
    if not table.endswith("_rollups"):
        return "true"
    zero = [f"{ident(c)} = 0" for c, t in columns if t in _NUMBERS]
    zero += [f"({ident(c)} IS NULL OR 0 = ALL({ident(c)}))" for c, t in columns if t == "ARRAY"]
    return f"NOT ({' AND '.join(zero)})" if zero else "true"


async def select_for_comparison(conn: Any, schema: str, table: str) -> str:
    """The statement a comparison reads ``table`` of ``schema`` with (columns and rows as above)."""
    columns = await compared_columns(conn, schema, table)
    select = ", ".join(_comparable(c, t) for c, t in columns)
    return f"SELECT {select} FROM {ident(schema)}.{ident(table)} WHERE {figures_only(table, columns)}"


async def count_differences(conn: Any, left: str, right: str, table: str) -> int:
    """Rows of ``table`` in one schema and not in the other (as multisets), in both directions."""
    mine, theirs = await select_for_comparison(conn, left, table), await select_for_comparison(conn, right, table)
    return int(await conn.fetchval(
        f"SELECT count(*) FROM (({mine} EXCEPT ALL {theirs}) UNION ALL ({theirs} EXCEPT ALL {mine})) AS d"))


async def count_rows(conn: Any, schema: str, table: str) -> int:
    return int(await conn.fetchval(f"SELECT count(*) FROM {ident(schema)}.{ident(table)}"))


async def tickets_known(conn: Any, schema: str) -> dict[str, int]:
    """How many tickets each ticket table of ``schema`` knows from their creation: the guard that
    a replay holding less history than the live model is never swapped in."""
    found: dict[str, int] = {}
    for table in ("ticket_metrics", "ticket_facts"):
        exists = await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", f"{schema}.{table}")
        if exists:
            found[table] = int(await conn.fetchval(
                f"SELECT count(*) FROM {ident(schema)}.{ident(table)} WHERE created_at IS NOT NULL"))
    return found


async def lock_tables(conn: Any, schema: str, tables: Iterable[str], *, timeout_ms: int) -> None:
    """ACCESS EXCLUSIVE on ``tables`` within ``timeout_ms`` (a long report query makes the swap
    wait at most that long, then the swap is retried, instead of queueing every reader behind it)."""
    await conn.execute(f"SET LOCAL lock_timeout = {int(timeout_ms)}")
    names = ", ".join(f"{ident(schema)}.{ident(t)}" for t in tables)
    await conn.execute(f"LOCK TABLE {names} IN ACCESS EXCLUSIVE MODE")
    await conn.execute("SET LOCAL lock_timeout = 0")


async def move_tables(conn: Any, tables: Iterable[str], *, source: str, target: str) -> None:
    """Move tables (with their indexes, constraints and owned sequences) to another schema."""
    for table in tables:
        await conn.execute(f"ALTER TABLE {ident(source)}.{ident(table)} SET SCHEMA {ident(target)}")


async def mark_folded(conn: Any, *, schema: str, consumer: str, folded: Sequence[tuple[uuid.UUID, str]]) -> int:
    """Record events the rebuild folded in the live consumer's inbox, so the live consumer skips
    them after the swap instead of folding them a second time into the rebuilt tables."""
    if not folded:
        return 0
    status = await conn.execute(
        f"INSERT INTO {ident(schema)}.inbox (consumer, event_id, event_type) "
        "SELECT $1, e.id, e.type FROM unnest($2::uuid[], $3::text[]) AS e(id, type) ON CONFLICT DO NOTHING",
        consumer, [f[0] for f in folded], [f[1] for f in folded],
    )
    return int(status.rsplit(" ", 1)[-1])
