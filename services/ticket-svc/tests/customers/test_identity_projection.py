"""The customer-identity projection's upsert (``tickets.repository.upsert_identities``): one
statement per event, a legacy plaintext row replaced, an identity listed twice written once; and
the intake's lookup of the requester's customer in it."""

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


async def test_the_intake_finds_the_requesters_customer_by_index_probes_whatever_the_statistics(client, ticket_db):
    """The plan of the intake's insert may have been made before the projection had statistics:
    the lookup must still probe the unique indexes, not read every identity of the kind."""
    from datetime import UTC, datetime

    from ticket_svc.pii.codec import codec

    pool = await create_raw_pool(ticket_db, size=1)
    try:
        async with pool.acquire() as conn, conn.transaction():
            # a projection not analyzed yet (a young deployment's, before autovacuum's first pass):
            # the planner takes a default selectivity for each condition, and the plan made now,
            # with few rows, is the one the connection keeps (inserts do not invalidate it)
            await conn.execute("DELETE FROM pg_statistic WHERE starelid = 'customer_identity_projection'::regclass")
            await conn.execute("SET LOCAL plan_cache_mode = force_generic_plan")  # the plan a pool keeps
            opening = await conn.prepare(repository._INSERT_TICKET)
            now = datetime.now(UTC)

            async def open_one() -> None:
                email = f"probe.{uuid.uuid4().hex[:8]}@example.cn"
                values = {"id": uuid.uuid4(), "subject": "s", "description": "d", "status": "new",
                          "priority": "normal", "type": "question", "channel": "api", "tags": [], "custom_fields": {},
                          "created_by": "api:test", "created_at": now, "updated_at": now,
                          **codec().requester_columns({"email": email})}
                await opening.fetchrow(*repository._ticket_args(values))

            async def fetched() -> int:  # this transaction's reads of the projection (not flushed yet)
                return await conn.fetchval(
                    "SELECT coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0) FROM pg_stat_xact_user_tables "
                    "WHERE relname = 'customer_identity_projection'")

            await open_one()
            await conn.execute("INSERT INTO customer_identity_projection (kind, value_enc, value_bidx, customer_id) "
                               "SELECT 'email', 'x', 'scan-test-' || g, gen_random_uuid() FROM generate_series(1, 3000) g")
            before = await fetched()
            await open_one()
            # no row matches: probes of the unique indexes fetch none, a read of the kind 3,000
            assert await fetched() - before == 0
            # the intake's statement (with its message, audit entry and event) looks up the same way
            assert repository._opening_sql(False, True, True).startswith(f"WITH {repository._REQUESTER_CUSTOMER}, ")
            raise _RollBack
    except _RollBack:
        pass
    finally:
        await pool.close()


class _RollBack(Exception):
    pass
