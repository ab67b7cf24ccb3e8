"""Keeps the time-ordered postings of common search keys (migration 0023) in step with the data.

A search for a common term walks the tickets newest first; the postings let it skip the newer
tickets that do not contain the term. Triggers keep them exact as tickets change, and every
posting costs intake a write, so keys are kept only for what agents search: a common search
with no ready key asks for its key (``service.list_visible``, ``repository.request_search_key``;
at most ``search_index_max_keys``), and that search and the next ones until the key is ready
take the older plans. Each pass runs on one replica at a time (a session advisory lock; the
others skip it):

1. each key asked for gets a transaction-id horizon (``repository.mark_search_key_horizons``:
   no table lock, no writer waits);
2. each key whose horizon every older transaction has passed gets the postings of the newest
   tickets that contain it, then is ready (one that a long transaction holds back waits for a
   later pass);
3. each ready key keeps about ``search_postings_per_key`` postings; older ones are trimmed and
   the key's cover moves up, so searches read the rest of a long result with the date index.

Keys are never dropped: a key no longer searched keeps a bounded list, and its searches stay
correct whatever the plan; deleting its row and its postings stops them.
"""

from __future__ import annotations

import logging
from typing import Any

import asyncpg

from helpdesk_common.db import holds_session_state
from helpdesk_common.periodic import periodic

from . import repository, search

log = logging.getLogger(__name__)

#: pg_try_advisory_xact_lock id of a pass (any 64-bit constant unique in this database)
PASS_LOCK = 0x5EA7C4_0023


async def run_pass(pool: Any, *, per_key: int) -> dict[str, int]:
    """One pass; counts of keys filled and postings trimmed. Nothing when another replica's
    pass holds the lock; a trim that meets a busy writer gives way (200 ms) and is left to the
    next pass."""
    done = {"filled": 0, "trimmed": 0}
    async with pool.acquire() as conn:
        holds_session_state(conn)  # the lock is the session's: the pool drops it if this is cancelled
        if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", PASS_LOCK):
            return done
        try:
            await repository.mark_search_key_horizons(conn)
            for key in await repository.fillable_search_keys(conn):
                async with conn.transaction():
                    if await repository.fill_search_key(conn, key, search.key_query(key), per_key=per_key):
                        done["filled"] += 1
            try:
                async with conn.transaction():
                    # a trim waits for no writer: it would otherwise be the one a deadlock check picks
                    await conn.execute("SET LOCAL lock_timeout = '200ms'")
                    done["trimmed"] = await repository.trim_search_postings(conn, per_key=per_key)
            except asyncpg.LockNotAvailableError:
                log.info("search postings not trimmed this pass: a writer held them for 200 ms")
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", PASS_LOCK)
    return done


def search_index_loop(settings: Any):  # type: ignore[no-untyped-def]
    """Lifespan hook: a pass every ``search_index_interval_s`` (the first after one interval)."""

    async def step(app: Any) -> None:
        done = await run_pass(app.state.runtime.raw_pool, per_key=settings.search_postings_per_key)
        if done["filled"]:
            log.info("search index pass: %(filled)d keys filled, %(trimmed)d postings trimmed", done)

    return periodic("search index pass", settings.search_index_interval_s, step)
