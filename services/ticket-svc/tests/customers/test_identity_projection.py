"""The customer-identity projection's upsert (``tickets.repository.upsert_identities``): one
statement per event, a legacy plaintext row replaced, an identity listed twice written once."""

import asyncio
import uuid

from helpdesk_common.db import create_raw_pool
from ticket_svc.pii.codec import sealed_identities
from ticket_svc.tickets import repository


async def test_an_events_identities_are_one_statement_and_replace_a_plaintext_row(client, ticket_db):
    email, phone = f"proj.{uuid.uuid4().hex[:8]}@example.cn", "+8613800138000"
    first, second = uuid.uuid4(), uuid.uuid4()
    pool = await create_raw_pool(ticket_db, size=1)
    try:
        async with pool.acquire() as conn:
            # a row as written before migration 0018: plaintext, no blind index
            await conn.execute("INSERT INTO customer_identity_projection (kind, value, customer_id) "
                               "VALUES ('email', $1, $2)", email, first)
            sent: list[str] = []
            conn.add_query_logger(lambda entry: sent.append(entry.query))
            both = sealed_identities([("email", email), ("phone", phone)])
            await repository.upsert_identities(conn, customer_id=first, identities=both + both[:1])
            await asyncio.sleep(0.05)  # the logger is called soon after the statement, not in it
            assert len([q for q in sent if "typeinfo_tree" not in q]) == 1, sent
            rows = await conn.fetch("SELECT kind, value, value_bidx, customer_id FROM customer_identity_projection "
                                    "WHERE customer_id IN ($1, $2) ORDER BY kind", first, second)
            assert [(r["kind"], r["value"], r["value_bidx"], r["customer_id"]) for r in rows] == [
                ("email", None, both[0][3], first), ("phone", None, both[1][3], first)]
            # the identity moves to another customer (a merge's survivor): updated in place
            await repository.upsert_identities(conn, customer_id=second, identities=both[:1])
            owners = await conn.fetch("SELECT kind, customer_id FROM customer_identity_projection "
                                      "WHERE customer_id IN ($1, $2) ORDER BY kind", first, second)
            assert [(r["kind"], r["customer_id"]) for r in owners] == [("email", second), ("phone", first)]
    finally:
        await pool.close()
