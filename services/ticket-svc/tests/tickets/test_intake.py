"""Intake through ticket-svc's API on a real database."""

import asyncio
import uuid

import pytest
from sqlalchemy import text

from helpdesk_common import events
from helpdesk_common.identity import Principal
from helpdesk_common.testing import identity_headers
from ticket_svc.pii.codec import codec

CHANNEL = Principal(kind="channel", id="key-1", channel="web")
OTHER_CHANNEL = Principal(kind="channel", id="key-2", channel="web")
AGENT = Principal(kind="user", id="u-agent", role="agent")

BODY = {
    "subject": "打印机无法连接 / printer offline",
    "description": "Since this morning.",
    "requester": {"name": "王小明", "email": "Xiaoming.Wang@Example.com"},
    "priority": "high",
    "tags": ["printer"],
    "custom_fields": {"floor": 3},
}


async def count(db, table: str) -> int:
    async with db.connect() as conn:
        return await conn.scalar(text(f"SELECT count(*) FROM {table}"))


async def test_create_then_read(client, db):
    created = await client.post("/v1/tickets", json=BODY, headers=identity_headers(CHANNEL))
    assert created.status_code == 201, created.text
    ticket = created.json()
    assert ticket["status"] == "new" and ticket["priority"] == "high"
    assert created.headers["location"] == f"/v1/tickets/{ticket['id']}"
    read = await client.get(f"/v1/tickets/{ticket['id']}", headers=identity_headers(CHANNEL))
    assert read.status_code == 200
    body = read.json()
    assert body["customer_id"] is None
    assert body["sla"] == {"first_response_due_at": None, "first_response_at": None, "state": None,
                           "next_due_at": None}
    assert body["subject"] == BODY["subject"]
    async with db.connect() as conn:
        row = (await conn.execute(text("SELECT requester_identity_kind, requester_identity_value, "
                                       "requester_identity_bidx FROM tickets"))).one()
        assert tuple(row) == ("email", None, codec().identity_index("xiaoming.wang@example.com"))
        assert await conn.scalar(text("SELECT event_type FROM outbox")) == "ticket.created"


async def test_ticket_created_is_written_with_the_rows_number_and_what_was_asked(client, db):
    """The opening statement writes ``ticket.created`` itself: the number (and the customer and
    tier, None here, a known customer's in test_customer_tier.py) from the row it inserts."""
    opened = []
    for _ in range(2):
        created = await client.post("/v1/tickets", json=BODY, headers=identity_headers(CHANNEL))
        assert created.status_code == 201, created.text
        opened.append(created.json())
    async with db.connect() as conn:
        payloads = (await conn.execute(text(
            "SELECT payload FROM outbox WHERE event_type = 'ticket.created' ORDER BY seq"))).scalars().all()
    found = [events.decode(p) for p in payloads]
    assert [str(e.data.ticket_id) for e in found] == [t["id"] for t in opened]
    for event, ticket in zip(found, opened):
        d = event.data
        assert d.number == ticket["number"] and isinstance(d.number, int)
        assert (d.subject, d.status, d.priority, d.tags) == (BODY["subject"], "new", "high", ticket["tags"])
        assert d.custom_fields == {"floor": 3} and d.requester.name == "王小明"
        assert d.requester.email == BODY["requester"]["email"]
        assert (d.customer_id, d.customer_tier, d.team_id, d.assignee_id) == (None, None, None, None)
        assert event.subject == ticket["id"] and d.created_by == CHANNEL.ref
    assert found[0].data.number != found[1].data.number


async def test_ticket_created_keeps_the_size_its_check_saw(client, db):
    """The fields the statement writes into ``ticket.created`` are spliced into orjson's bytes:
    a custom field's tiny floats stay ``5e-324`` (a jsonb round trip writes 326 digits each, a
    payload many times the size it was checked at)."""
    tiny = [5e-324] * 2000
    created = await client.post("/v1/tickets", headers=identity_headers(CHANNEL), json={
        **BODY, "custom_fields": {"readings": tiny}})
    assert created.status_code == 201, created.text
    async with db.connect() as conn:
        payload = await conn.scalar(text("SELECT payload FROM outbox WHERE event_type = 'ticket.created'"))
    assert len(payload) < 20_000, len(payload)
    event = events.decode(payload)
    assert event.data.custom_fields == {"readings": tiny} and event.data.number == created.json()["number"]


async def test_channel_sees_only_its_own_tickets(client):
    mine = (await client.post("/v1/tickets", json=BODY, headers=identity_headers(CHANNEL))).json()
    other = await client.get(f"/v1/tickets/{mine['id']}", headers=identity_headers(OTHER_CHANNEL))
    assert other.status_code == 404
    assert other.headers["content-type"] == "application/problem+json"
    assert (await client.get(f"/v1/tickets/{mine['id']}", headers=identity_headers(AGENT))).status_code == 200
    listed = (await client.get("/v1/tickets", headers=identity_headers(OTHER_CHANNEL))).json()
    assert listed["items"] == []


async def test_cursor_pagination_is_stable_and_complete(client):
    ids = set()
    for i in range(7):
        r = await client.post("/v1/tickets", json={**BODY, "subject": f"t{i}"}, headers=identity_headers(CHANNEL))
        ids.add(r.json()["id"])
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 3} | ({"cursor": cursor} if cursor else {})
        page = (await client.get("/v1/tickets", params=params, headers=identity_headers(CHANNEL))).json()
        seen += [t["id"] for t in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert pages == 3 and len(seen) == 7 and set(seen) == ids
    too_big = await client.get("/v1/tickets", params={"limit": 1000}, headers=identity_headers(CHANNEL))
    assert too_big.status_code == 422
    bad_cursor = await client.get("/v1/tickets", params={"cursor": "!!"}, headers=identity_headers(CHANNEL))
    assert bad_cursor.status_code == 400


async def test_same_idempotency_key_20_concurrent_creates_one(client, db):
    headers = identity_headers(CHANNEL) | {"Idempotency-Key": "order-42"}
    responses = await asyncio.gather(*[client.post("/v1/tickets", json=BODY, headers=headers) for _ in range(20)])
    assert {r.status_code for r in responses} == {201}
    assert len({r.json()["id"] for r in responses}) == 1
    assert sum(r.headers.get("idempotent-replayed") == "true" for r in responses) == 19
    assert await count(db, "tickets") == 1
    assert await count(db, "outbox") == 1


async def test_idempotency_key_is_scoped_and_bound_to_the_body(client, db):
    headers = identity_headers(CHANNEL) | {"Idempotency-Key": "k1"}
    first = await client.post("/v1/tickets", json=BODY, headers=headers)
    changed = await client.post("/v1/tickets", json={**BODY, "subject": "other"}, headers=headers)
    assert changed.status_code == 422
    assert changed.json()["type"].endswith("/idempotency-key-reused")
    other_key_owner = await client.post(
        "/v1/tickets", json=BODY, headers=identity_headers(OTHER_CHANNEL) | {"Idempotency-Key": "k1"}
    )
    assert other_key_owner.status_code == 201 and other_key_owner.json()["id"] != first.json()["id"]
    assert await count(db, "tickets") == 2


@pytest.mark.parametrize(
    ("raw", "content_type", "status"),
    [
        (b'{"subject": "x", ', "application/json", 400),
        (b'{"subject": 5, "requester": {"email": "a@b.co"}}', "application/json", 422),
        (b'{"subject": "x", "requester": {"email": "a@b.co"}, "bogus": 1}', "application/json", 422),
        (b'{"subject": "x", "requester": {"email": "a@b.co"}, "priority": "asap"}', "application/json", 422),
        (b'{"subject": "x", "requester": {"name": "only a name"}}', "application/json", 422),
        (b'{"subject": "x\\u0000y", "requester": {"email": "a@b.co"}}', "application/json", 422),
        (b'{"subject": "x", "requester": {"email": "a@b.co"}, "custom_fields": {"k": "\\u0000"}}', "application/json", 422),
        (b'{"subject": "x", "requester": {"email": "a@b.co"}, "tags": "notalist"}', "application/json", 422),
        (b"[1, 2]", "application/json", 422),
        (b'{"subject": "' + b"x" * (2 * 1024 * 1024) + b'"}', "application/json", 413),
    ],
    ids=["malformed", "wrong-type", "unknown-field", "bad-enum", "no-identity", "nul", "nul-nested", "tags-type", "array", "2mb"],
)
async def test_bad_input_is_a_problem_and_stores_nothing(client, db, raw, content_type, status):
    r = await client.post("/v1/tickets", content=raw, headers=identity_headers(CHANNEL) | {"content-type": content_type})
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    problem = r.json()
    assert problem["status"] == status and problem["type"].startswith("https://")
    assert await count(db, "tickets") == 0
    assert await count(db, "outbox") == 0


async def test_missing_or_forged_identity_is_401(client):
    assert (await client.post("/v1/tickets", json=BODY)).status_code == 401
    forged = await client.post("/v1/tickets", json=BODY, headers={"x-internal-identity": "eyJhbGciOiJub25lIn0.e30."})
    assert forged.status_code == 401
    assert forged.headers["content-type"] == "application/problem+json"


async def test_unknown_ticket_and_bad_id(client):
    assert (await client.get(f"/v1/tickets/{uuid.uuid4()}", headers=identity_headers(AGENT))).status_code == 404
    assert (await client.get("/v1/tickets/9223372036854775808", headers=identity_headers(AGENT))).status_code == 422
