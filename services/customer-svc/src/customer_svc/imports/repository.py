"""The only place with SQL for import jobs (bare asyncpg)."""

from __future__ import annotations

import uuid
from typing import Any

_STATUS = ("id, kind, status, source, time_zone, filename, format, mapping, rows_total, rows_done, rows_ok, "
           "rows_failed, failure, created_by, created_by_role, created_at, started_at, finished_at")


async def insert(conn: Any, values: dict[str, Any]) -> None:
    await conn.execute(
        "INSERT INTO imports (id, kind, source, time_zone, filename, format, mapping, content, created_by, "
        "created_by_role) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        values["id"], values["kind"], values["source"], values["time_zone"], values["filename"], values["format"],
        values["mapping"], values["content"], values["created_by"], values["created_by_role"])


async def get(conn: Any, import_id: uuid.UUID) -> Any:
    return await conn.fetchrow(f"SELECT {_STATUS} FROM imports WHERE id = $1", import_id)


async def claim_next(conn: Any, *, lease_s: float) -> Any:
    """The oldest queued job, or a running one whose replica stopped renewing its lease (a
    restart): taken with a fresh lease, its file with it. ``SKIP LOCKED``: replicas never wait
    on each other."""
    return await conn.fetchrow(
        "UPDATE imports SET status = 'running', started_at = coalesce(started_at, clock_timestamp()), "
        "lease_until = clock_timestamp() + make_interval(secs => $1) "
        "WHERE id = (SELECT id FROM imports WHERE status = 'queued' "
        "            OR (status = 'running' AND lease_until < clock_timestamp()) "
        "            ORDER BY created_at LIMIT 1 FOR UPDATE SKIP LOCKED) "
        f"RETURNING {_STATUS}, content", lease_s)


async def progress(conn: Any, import_id: uuid.UUID, *, done: int, ok: int, failed: int, total: int | None,
                   lease_s: float) -> None:
    await conn.execute(
        "UPDATE imports SET rows_done = $2, rows_ok = $3, rows_failed = $4, rows_total = coalesce($5, rows_total), "
        "lease_until = clock_timestamp() + make_interval(secs => $6) WHERE id = $1",
        import_id, done, ok, failed, total, lease_s)


async def finish(conn: Any, import_id: uuid.UUID, *, status: str, failure: str | None = None) -> None:
    """The end: the file is dropped (the report stays)."""
    await conn.execute(
        "UPDATE imports SET status = $2, failure = $3, finished_at = clock_timestamp(), lease_until = NULL, "
        "content = NULL WHERE id = $1", import_id, status, failure)


async def add_errors(conn: Any, import_id: uuid.UUID, errors: list[tuple[int, str, str]]) -> None:
    if errors:
        await conn.execute(
            'INSERT INTO import_errors (import_id, "row", "column", message) '
            "SELECT $1, r, c, m FROM unnest($2::int[], $3::text[], $4::text[]) AS e(r, c, m) "
            "ON CONFLICT DO NOTHING",
            import_id, [e[0] for e in errors], [e[1] for e in errors], [e[2] for e in errors])


async def errors(conn: Any, import_id: uuid.UUID, *, limit: int | None = None) -> list[Any]:
    sql = 'SELECT "row", "column", message FROM import_errors WHERE import_id = $1 ORDER BY "row", "column"'
    if limit is None:
        return await conn.fetch(sql, import_id)
    return await conn.fetch(sql + " LIMIT $2", import_id, limit)


async def error_batches(conn: Any, import_id: uuid.UUID, *, batch: int = 5000):  # type: ignore[no-untyped-def]
    """All errors in row order, a batch at a time (the CSV report streams them)."""
    after = (0, "")
    while True:
        rows = await conn.fetch(
            'SELECT "row", "column", message FROM import_errors WHERE import_id = $1 AND ("row", "column") > ($2, $3) '
            'ORDER BY "row", "column" LIMIT $4', import_id, after[0], after[1], batch)
        if not rows:
            return
        yield rows
        after = (rows[-1]["row"], rows[-1]["column"])
