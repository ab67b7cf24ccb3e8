"""Keeps the time-ordered postings of common search keys (migration 0023) in step with the data.

A search for a common term walks the tickets newest first; the postings let it skip the newer
tickets that do not contain the term. Triggers keep the postings exact as tickets change; this
module decides *which* keys have postings and bounds their number. Each pass runs on one
replica at a time (a session advisory lock; the others skip it):

1. the lexemes PostgreSQL's statistics count as common (``pg_stats``, refreshed by ANALYZE)
   give the keys wanted; missing ones are added, then given a transaction-id horizon
   (``repository.mark_search_key_horizons``: no table lock, no writer waits);
2. each key still filling whose horizon every older transaction has passed gets the postings
   of the newest tickets that contain it, then is ready (a key whose horizon a long
   transaction holds back waits for a later pass);
3. each ready key keeps about ``search_postings_per_key`` postings; older ones are trimmed and
   the key's cover moves up, so searches read the rest of a long result with the date index.

Keys are never dropped: a lexeme that stops being common keeps a bounded list, and searches
for it stay correct whatever the plan.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import asyncpg

from . import repository, search

log = logging.getLogger(__name__)

#: pg_try_advisory_xact_lock id of a pass (any 64-bit constant unique in this database)
PASS_LOCK = 0x5EA7C4_0023


async def run_pass(pool: Any, *, per_key: int, max_keys: int, min_share: float = repository.COMMON_SHARE) -> dict[str, int]:
    """One pass; counts of keys added and filled and postings trimmed. Nothing when another
    replica's pass holds the lock; a trim that meets a busy writer gives way (200 ms) and is
    left to the next pass."""
    done = {"added": 0, "filled": 0, "trimmed": 0}
    async with pool.acquire() as conn:
        if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", PASS_LOCK):
            return done
        try:
            wanted = search.wanted_keys(await repository.lexeme_frequencies(conn), min_share=min_share, limit=max_keys)
            async with conn.transaction():
                done["added"] = len(await repository.add_search_keys(conn, wanted))
            await repository.mark_search_key_horizons(conn)  # its own statement: after the keys commit
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

    @contextlib.asynccontextmanager
    async def hook(app: Any) -> AsyncIterator[None]:
        interval = settings.search_index_interval_s
        if interval <= 0:
            yield
            return
        pool = app.state.runtime.raw_pool

        async def run() -> None:
            while True:
                await asyncio.sleep(interval)
                try:
                    done = await run_pass(pool, per_key=settings.search_postings_per_key,
                                          max_keys=settings.search_index_max_keys)
                    if done["added"] or done["filled"]:
                        log.info("search index pass: %(added)d keys added, %(filled)d filled, "
                                 "%(trimmed)d postings trimmed", done)
                except asyncio.CancelledError:
                    raise
                except Exception:  # keep the loop alive across database hiccups
                    log.exception("search index pass failed")

        task = asyncio.create_task(run(), name="search-index")
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    return hook
