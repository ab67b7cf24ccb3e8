"""Raw pools reset a connection's session only when it was marked (db.holds_session_state)."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import asyncpg

from helpdesk_common.db import create_raw_pool, holds_session_state
from helpdesk_common.migrate import ensure_database

ROOT = Path(__file__).resolve().parents[3]
LOCK = 0x7E57_0001


async def _pool(infra):  # type: ignore[no-untyped-def]
    url = f"{infra.db_base}/t_reset_{uuid.uuid4().hex[:8]}"
    await ensure_database(url)
    return url, await create_raw_pool(url, size=1)


async def _lock_holders(url: str) -> int:
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
    try:
        return await conn.fetchval("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = $1",
                                   LOCK & 0xFFFFFFFF)
    finally:
        await conn.close()


async def test_a_marked_connection_goes_back_without_its_session_lock(infra) -> None:
    url, pool = await _pool(infra)
    try:
        async with pool.acquire() as conn:
            holds_session_state(conn)
            assert await conn.fetchval("SELECT pg_try_advisory_lock($1)", LOCK)
        assert await _lock_holders(url) == 0
        async with pool.acquire() as conn:  # the same (only) connection, clean
            assert await conn.fetchval("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                                       "AND pid = pg_backend_pid()") == 0
    finally:
        await pool.close()


async def test_an_unmarked_connection_is_not_reset_but_its_transaction_is_rolled_back(infra) -> None:
    url, pool = await _pool(infra)
    try:
        async with pool.acquire() as conn:
            await conn.execute("SET application_name = 'left-by-a-session'")  # what no request does
            await conn.execute("BEGIN")  # left open, as by a cancelled request
            await conn.execute("CREATE TABLE half_done (id int)")
        async with pool.acquire() as conn:
            assert not conn.is_in_transaction()
            assert await conn.fetchval("SELECT to_regclass('half_done')") is None
            # no reset query ran: this is what the mark is for
            assert await conn.fetchval("SHOW application_name") == "left-by-a-session"
    finally:
        await pool.close()


#: statements that leave state on the session, past the transaction
_SESSION_STATEMENTS = re.compile(
    r"pg_(try_)?advisory_lock(_shared)?\s*\(|set_config\([^)]*,\s*false\s*\)"
    r"|(execute|fetch|fetchval|fetchrow|executemany|text)\(\s*f?[\"'](LISTEN\s|SET\s+(SESSION\s+)?(?!LOCAL\b)"
    r"[a-z_.]+\s*(=|TO\b))", re.I)


def test_every_module_with_session_state_marks_its_connection() -> None:
    """A module that takes a session-level lock, LISTENs or SETs without LOCAL on a pooled
    connection must call ``holds_session_state`` (or use a connection of its own)."""
    offenders = []
    for path in [*ROOT.glob("services/*/src/**/*.py"), *ROOT.glob("libs/*/src/**/*.py")]:
        if "/migrations/" in str(path) or path.name == "db.py":
            continue
        text = path.read_text()
        if _SESSION_STATEMENTS.search(text) and "holds_session_state(" not in text and "asyncpg.connect(" not in text:
            offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


def test_the_rule_sees_the_statements_it_is_about() -> None:
    for sql in ('fetchval("SELECT pg_try_advisory_lock($1)"', '"SELECT pg_advisory_lock(1)"',
                "execute('LISTEN ticket_events')", 'execute("SET statement_timeout = 0")',
                'execute(f"SET search_path TO {schema}")', 'text("SET statement_timeout = 0")',
                'fetchval("SET work_mem = \'64MB\'")', "func.pg_advisory_lock(1)", "\"SELECT set_config('x.y', '1', false)\""):
        assert _SESSION_STATEMENTS.search(sql), sql
    for sql in ('"SELECT pg_advisory_xact_lock($1)"', 'execute("SET LOCAL lock_timeout = 0")',
                '"ON CONFLICT DO UPDATE "\n "SET a = 1"', "# while the LISTEN connection is down",
                "\"SELECT set_config('x', '1', true)\""):
        assert not _SESSION_STATEMENTS.search(sql), sql
