"""customer-svc's ``customer.requester_resolved``: the ticket's link, its event and the tier it
learns, in one statement (``tickets.repository.link_customer``)."""

import uuid

from helpdesk_common import events
from helpdesk_common.db import create_raw_pool
from helpdesk_common.identity import Principal
from helpdesk_common.outbox import watching_writes
from helpdesk_common.testing import identity_headers
from ticket_svc.tickets import service

CHANNEL = Principal(kind="channel", id="key-1", channel="web")


async def test_a_link_is_one_statement_with_its_event_written_once(client, ticket_db):
    opened = await client.post("/v1/tickets", headers=identity_headers(CHANNEL), json={
        "subject": "发票 / invoice", "description": "d", "requester": {"email": "new.requester@example.com"}})
    assert opened.status_code == 201, opened.text
    ticket_id, customer_id = uuid.UUID(opened.json()["id"]), uuid.uuid4()
    pool = await create_raw_pool(ticket_db, size=1)
    try:
        async with pool.acquire() as conn:
            sent: list[str] = []
            conn.add_query_logger(lambda entry: sent.append(entry.query))

            async def resolve() -> bool:
                sent.clear()
                with watching_writes() as writes:
                    async with conn.transaction():
                        await service.on_requester_resolved(conn, ticket_id=ticket_id, customer_id=customer_id)
                return writes.wrote

            assert await resolve()  # the relay is woken for the event
            statements = [q for q in sent if "typeinfo_tree" not in q and not q[:1].isspace() and q != "COMMIT;"]
            assert len(statements) == 2 and statements[0] == "BEGIN;", statements
            assert not await resolve()  # already linked: nothing written, no event
            rows = await conn.fetch("SELECT event_type, payload FROM outbox WHERE key = $1 ORDER BY seq",
                                    str(ticket_id))
            linked = [events.decode(r["payload"]) for r in rows if r["event_type"] == "ticket.customer_linked"]
            assert [(e.data.ticket_id, e.data.customer_id) for e in linked] == [(ticket_id, customer_id)]
            assert await conn.fetchval("SELECT customer_id FROM tickets WHERE id = $1", ticket_id) == customer_id
    finally:
        await pool.close()


async def test_a_link_takes_the_tier_the_projection_knows(client, ticket_db):
    opened = await client.post("/v1/tickets", headers=identity_headers(CHANNEL), json={
        "subject": "s", "description": "d", "requester": {"email": "tiered@example.com"}})
    ticket_id, customer_id = uuid.UUID(opened.json()["id"]), uuid.uuid4()
    pool = await create_raw_pool(ticket_db, size=1)
    try:
        async with pool.acquire() as conn:
            await conn.execute("INSERT INTO customer_tier_projection (customer_id, tier, version) VALUES ($1, 'vip', 1)",
                               customer_id)
            async with conn.transaction():
                await service.on_requester_resolved(conn, ticket_id=ticket_id, customer_id=customer_id)
            assert await conn.fetchval("SELECT customer_tier FROM tickets WHERE id = $1", ticket_id) == "vip"
            types = await conn.fetch("SELECT event_type FROM outbox WHERE key = $1 ORDER BY seq", str(ticket_id))
            assert [t["event_type"] for t in types] == ["ticket.created", "ticket.customer_linked", "ticket.updated"]
    finally:
        await pool.close()
