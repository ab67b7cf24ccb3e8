import uuid

import pytest

from helpdesk_common.db import create_raw_pool

FIRES_TABLE = ("CREATE TABLE IF NOT EXISTS timer_fires (timer_id bigint NOT NULL, ticket_id uuid NOT NULL, "
               "ref text NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp())")


@pytest.fixture
async def pool(ticket_db):
    """A raw asyncpg pool on a migrated database, with ``timer_fires``: the handlers' real write."""
    p = await create_raw_pool(ticket_db, size=4)
    async with p.acquire() as conn:
        await conn.execute(FIRES_TABLE)
    yield p
    await p.close()


@pytest.fixture
def make_tickets(pool):
    """``await make_tickets(n)``: ``n`` bare tickets (the scheduler locks each timer's ticket)."""

    async def make(n: int) -> list[uuid.UUID]:
        async with pool.acquire() as conn:
            rows = await conn.fetch(
                "INSERT INTO tickets (id, subject, status, priority, requester, created_by, created_at, updated_at) "
                "SELECT gen_random_uuid(), 'timer test', 'open', 'normal', '{}'::jsonb, 'test', now(), now() "
                "FROM generate_series(1, $1) RETURNING id", n)
        return [r["id"] for r in rows]

    return make
