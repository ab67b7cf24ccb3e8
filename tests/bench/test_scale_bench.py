"""bench/scale.py's bulk load stores tickets as ticket-svc's intake does (a real PostgreSQL):
the requester sealed under ticket-svc's keys, no plaintext identity, its blind indexes and a
customer, so a loaded page costs what a real one does and the indexes hold what real rows put
there. Both search baselines' loads (the first tickets, then the rest) add up."""

from __future__ import annotations

import asyncpg

from bench.run import raw_dsn
from bench.scale import REQUESTERS, bulk_load
from helpdesk_common.pii_crypto import generate_key
from helpdesk_common.pii_store import is_sealed
from ticket_svc.pii.codec import Codec


async def test_bulk_tickets_are_stored_as_intake_stores_them(infra):
    dsn = raw_dsn(infra.new_database("ticket_svc"))
    codec = Codec.from_settings(f"k1:{generate_key()}", generate_key())
    await bulk_load(dsn, 300, codec=codec, batch=200)
    await bulk_load(dsn, 1200, codec=codec, start=301, batch=500)
    conn = await asyncpg.connect(dsn)
    try:
        assert await conn.fetchval("SELECT count(*) FROM tickets") == 1200
        assert await conn.fetchval("SELECT count(*) FROM messages") == 1200
        assert await conn.fetchval("SELECT count(DISTINCT subject) FROM tickets") == 1200  # 'B-<n>' once each
        plain = await conn.fetchval("SELECT count(*) FROM tickets WHERE requester_identity_value IS NOT NULL "
                                    "OR customer_id IS NULL OR requester_identity_bidx IS NULL")
        assert plain == 0
        rows = await conn.fetch("SELECT subject, requester::text, requester_identity_bidx, requester_bidx FROM tickets")
    finally:
        await conn.close()
    import json

    for row in rows:
        n = int(row["subject"].rsplit("B-", 1)[1]) % REQUESTERS
        stored = json.loads(row["requester"])
        assert is_sealed(stored)
        requester = codec.requester(stored)
        assert requester["email"] == f"bulk-{n}@example.com" and requester["name"] == f"客户 {n}"
        assert row["requester_identity_bidx"] == codec.identity_index(f"bulk-{n}@example.com")
        assert row["requester_bidx"] == [row["requester_identity_bidx"]]
