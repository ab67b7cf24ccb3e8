"""Keeps the time-ordered postings of common search keys (migration 0023) in step with the data.

A search for a common term walks the tickets newest first; the postings let it skip the newer
tickets that do not contain the term. Triggers keep the postings exact as tickets change; this
module decides *which* keys have postings and bounds their number. Each pass, on any replica
(the passes are idempotent; an advisory lock keeps two from doing the same work at once):

1. the lexemes PostgreSQL's statistics count as common (``pg_stats``, refreshed by ANALYZE)
   give the keys wanted; missing ones are added (``repository.add_search_keys``);
2. each key still filling gets the postings of the newest tickets that contain it, then is ready;
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
    """One pass; counts of keys added and filled and postings trimmed. A step that finds another
    replica's pass running, or tickets too busy to hold, is left to the next pass."""
    done = {"added": 0, "filled": 0, "trimmed": 0}
    async with pool.acquire() as conn:
        async with conn.transaction():
            if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", PASS_LOCK):
                return done
            wanted = search.wanted_keys(await repository.lexeme_frequencies(conn), min_share=min_share, limit=max_keys)
            try:
                async with conn.transaction():  # a savepoint: a lock timeout leaves the pass going
                    done["added"] = len(await repository.add_search_keys(conn, wanted))
            except asyncpg.LockNotAvailableError:
                log.info("search keys not added this pass: tickets were busy for 500 ms")
        for key in await repository.filling_search_keys(conn):
            async with conn.transaction():
                if await repository.fill_search_key(conn, key, search.key_query(key), per_key=per_key):
                    done["filled"] += 1
        async with conn.transaction():
            if await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", PASS_LOCK):
                done["trimmed"] = await repository.trim_search_postings(conn, per_key=per_key)
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
