"""GET /v1/export/tickets on the real database: exactly once across resumptions while other
transactions commit out of order, start_time, signed cursors and who may export."""

import asyncio
import random
import uuid
from datetime import UTC, datetime, timedelta, timezone

import asyncpg
import pytest

from helpdesk_common.identity import Principal
from helpdesk_common.testing import identity_headers

ADMIN = identity_headers(Principal(kind="user", id="root", role="admin"))
SUPERVISOR = identity_headers(Principal(kind="user", id="boss", role="supervisor"))
CHANNEL = identity_headers(Principal(kind="channel", id="key-1", channel="web"))
A1 = Principal(kind="user", id="a1", role="agent", name="Agent A1")
B1 = Principal(kind="user", id="b1", role="agent", name="Agent B1")

URL = "/v1/export/tickets"


def dsn(ticket_db: str) -> str:
    return ticket_db.replace("postgresql+asyncpg://", "postgresql://")


async def caught_up(ticket_db: str) -> None:
    """Wait until every transaction that began before now has ended, so that everything written
    so far is below the export's horizon: the app's own loops (timers, re-offers, sweeps) run
    short transactions, and a change becomes exportable once those older than it end."""
    conn = await asyncpg.connect(dsn(ticket_db))
    try:
        mark = int(await conn.fetchval("SELECT pg_current_xact_id()::text"))
        for _ in range(200):
            if int(await conn.fetchval("SELECT pg_snapshot_xmin(pg_current_snapshot())::text")) > mark:
                return
            await asyncio.sleep(0.05)
        raise AssertionError("a transaction older than the test's writes is still running after 10 s")
    finally:
        await conn.close()


async def create(client, subject: str, headers=CHANNEL) -> dict:
    r = await client.post("/v1/tickets", json={"subject": subject, "requester": {"email": "export@example.com"}},
                          headers=headers)
    assert r.status_code == 201, r.text
    return r.json()


async def page(client, headers=ADMIN, **params) -> dict:
    r = await client.get(URL, params=params, headers=headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"items", "next_cursor", "end_of_stream"}
    return body


async def drain(client, cursor: str, *, limit: int = 50, headers=ADMIN) -> tuple[list[dict], str]:
    """Every page until the end of the stream; (items, the cursor to continue later)."""
    items: list[dict] = []
    while True:
        body = await page(client, headers=headers, cursor=cursor, limit=limit)
        items += body["items"]
        cursor = body["next_cursor"]
        if body["end_of_stream"]:
            return items, cursor


async def slow_update(conn: asyncpg.Connection, ticket_ids: list[uuid.UUID], pause: float) -> None:
    """A writer that holds its transaction open: rows stamped early, committed late."""
    async with conn.transaction():
        for ticket_id in sorted(ticket_ids):  # id order: two writers never deadlock
            await conn.execute("UPDATE tickets SET version = version + 1, updated_at = clock_timestamp(), "
                               "subject = subject || '.' WHERE id = $1", ticket_id)
            await asyncio.sleep(pause / 2)
        await asyncio.sleep(pause / 2)


async def slow_insert(conn: asyncpg.Connection, pause: float) -> uuid.UUID:
    ticket_id = uuid.uuid4()
    async with conn.transaction():
        await conn.execute(
            "INSERT INTO tickets (id, subject, status, priority, requester, created_by, created_at, updated_at) "
            "VALUES ($1, $2, 'new', 'normal', '{\"email\": \"slow@example.com\"}', "
            "'channel:key-1', clock_timestamp(), clock_timestamp())", ticket_id, f"慢事务 {ticket_id}")
        await asyncio.sleep(pause)
    return ticket_id


async def test_a_late_commit_with_an_earlier_stamp_is_not_skipped(client, ticket_db):
    """The classic hole: X is stamped before Y but commits after Y was exported."""
    x, y = await create(client, "X"), await create(client, "Y")
    await caught_up(ticket_db)
    _, cursor = await drain(client, (await page(client, limit=1))["next_cursor"])
    slow, fast = await asyncpg.connect(dsn(ticket_db)), await asyncpg.connect(dsn(ticket_db))
    try:
        tx = slow.transaction()
        await tx.start()
        await slow.execute("UPDATE tickets SET version = version + 1, updated_at = clock_timestamp() WHERE id = $1",
                           uuid.UUID(x["id"]))
        await fast.execute("UPDATE tickets SET version = version + 1, updated_at = clock_timestamp() WHERE id = $1",
                           uuid.UUID(y["id"]))
        body = await page(client, cursor=cursor, limit=10)
        # Y committed, but below it a transaction is still running: nothing passes it yet
        assert body["items"] == [] and body["end_of_stream"] is True
        cursor = body["next_cursor"]
        await tx.commit()
    finally:
        await slow.close()
        await fast.close()
    await caught_up(ticket_db)
    items, _ = await drain(client, cursor, limit=10)
    assert sorted((i["id"], i["version"]) for i in items) == sorted([(x["id"], 2), (y["id"], 2)])


async def test_every_change_exactly_once_across_resumptions_with_concurrent_writers(client, ticket_db):
    initial = [await create(client, f"工单 {n}") for n in range(30)]
    ids = [uuid.UUID(t["id"]) for t in initial]
    seen: list[tuple[str, int]] = []
    rng = random.Random(13)
    writing = True

    async def writer(seed: int) -> None:
        local = random.Random(seed)
        conn = await asyncpg.connect(dsn(ticket_db))
        try:
            for _ in range(12):
                if local.random() < 0.3:
                    ids.append(await slow_insert(conn, local.uniform(0.0, 0.15)))
                else:
                    await slow_update(conn, local.sample(ids, local.choice((1, 2))), local.uniform(0.0, 0.2))
        finally:
            await conn.close()

    async def api_writer() -> None:
        for n in range(10):
            ticket = await create(client, f"接口 {n}")
            ids.append(uuid.UUID(ticket["id"]))
            r = await client.patch(f"/v1/tickets/{rng.choice(ids[:30])}", json={"priority": "high"},
                                   headers=SUPERVISOR)
            assert r.status_code == 200, r.text
            await asyncio.sleep(0.02)

    async def exporter() -> tuple[int, str]:
        resumptions = 0
        body = await page(client, start_time="0", limit=4)
        while True:
            seen.extend((i["id"], i["version"]) for i in body["items"])
            if body["end_of_stream"] and not writing:
                return resumptions, body["next_cursor"]
            await asyncio.sleep(0.01 if not body["end_of_stream"] else 0.05)
            body = await page(client, cursor=body["next_cursor"], limit=rng.choice((3, 4, 5)))
            resumptions += 1

    export = asyncio.create_task(exporter())
    try:
        await asyncio.gather(*(writer(seed) for seed in range(4)), api_writer())
    finally:
        writing = False
    resumptions, cursor = await export
    await caught_up(ticket_db)  # the app's own loops may still hold a transaction older than the last write
    rest, _ = await drain(client, cursor, limit=5)
    seen.extend((i["id"], i["version"]) for i in rest)
    assert resumptions >= 20

    assert len(seen) == len(set(seen)), "a (ticket, version) was exported twice"
    conn = await asyncpg.connect(dsn(ticket_db))
    try:
        final = {str(r["id"]): r["version"] for r in await conn.fetch("SELECT id, version FROM tickets")}
    finally:
        await conn.close()
    assert final.keys() == {str(i) for i in ids}
    newest: dict[str, int] = {}
    for ticket_id, version in seen:
        assert version > newest.get(ticket_id, 0), "a ticket went back to an older version"
        newest[ticket_id] = version
    assert newest == final, "a ticket's last change was never exported"


async def test_a_ticket_changed_after_export_appears_again(client, ticket_db):
    ticket = await create(client, "再次导出")
    await caught_up(ticket_db)
    first = await page(client, start_time="0", limit=1000)
    assert [i["version"] for i in first["items"] if i["id"] == ticket["id"]] == [1]
    r = await client.patch(f"/v1/tickets/{ticket['id']}", json={"priority": "urgent"}, headers=SUPERVISOR)
    assert r.status_code == 200
    await caught_up(ticket_db)
    again = await page(client, cursor=first["next_cursor"])
    assert [(i["id"], i["version"], i["priority"]) for i in again["items"]] == [(ticket["id"], 2, "urgent")]
    assert again["end_of_stream"] is True
    assert (await page(client, cursor=again["next_cursor"]))["items"] == []


async def test_start_time_selects_tickets_updated_since(client, ticket_db):
    old, recent = await create(client, "old"), await create(client, "recent")
    conn = await asyncpg.connect(dsn(ticket_db))
    try:  # the old one was last updated two days ago (as if; the position stays its transaction's)
        await conn.execute("UPDATE tickets SET updated_at = now() - interval '2 days' WHERE id = $1",
                           uuid.UUID(old["id"]))
        since = await conn.fetchval("SELECT (now() - interval '1 hour')::timestamptz")
    finally:
        await conn.close()
    await caught_up(ticket_db)
    for start in (str(int(since.timestamp())), since.isoformat(),
                  since.astimezone(timezone(timedelta(hours=8))).isoformat()):
        body = await page(client, start_time=start, limit=1)
        items, _ = await drain(client, body["next_cursor"], limit=1)
        assert {i["id"] for i in body["items"] + items} == {recent["id"]}, start
    everything = await page(client, start_time="0")
    assert {i["id"] for i in everything["items"]} == {old["id"], recent["id"]}
    # a start in the future: nothing yet, and the changes made from then on later
    future = await page(client, start_time=(datetime.now(UTC) + timedelta(seconds=2)).isoformat())
    assert future["items"] == [] and future["end_of_stream"] is True
    await asyncio.sleep(2.5)
    r = await client.patch(f"/v1/tickets/{old['id']}", json={"priority": "low"}, headers=SUPERVISOR)
    assert r.status_code == 200, r.text
    await caught_up(ticket_db)
    later = await page(client, cursor=future["next_cursor"])
    assert [(i["id"], i["priority"]) for i in later["items"]] == [(old["id"], "low")]
    # no start_time and no cursor: from the beginning
    assert {i["id"] for i in (await page(client))["items"]} == {old["id"], recent["id"]}


@pytest.mark.parametrize(("params", "field"), [
    ({"start_time": "2026-12-01T08:00:00"}, "query.start_time"),
    ({"start_time": "tomorrow"}, "query.start_time"),
    ({"start_time": "-1"}, "query.start_time"),
    ({"start_time": "99999999999999"}, "query.start_time"),
    ({"start_time": "0", "cursor": "x.y"}, "query.start_time"),
    ({"limit": "0"}, "query.limit"),
    ({"limit": "1001"}, "query.limit"),
    ({"since": "0"}, "query.since"),
])
async def test_bad_parameters_are_422_problems(client, params, field):
    r = await client.get(URL, params=params, headers=ADMIN)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    # a union parameter's errors name the alternative too (query.start_time.constrained-int, ...)
    assert any(e["field"].startswith(field) for e in r.json()["errors"]), r.json()


async def test_a_tampered_cursor_is_422(client):
    await create(client, "cursor")
    cursor = (await page(client, start_time="0", limit=1))["next_cursor"]
    payload, _, signature = cursor.partition(".")
    tampered = payload[:-1] + ("A" if payload[-1] != "A" else "B") + "." + signature
    for bad in (tampered, cursor[:-1], "not-a-cursor", cursor.replace(".", "")):
        r = await client.get(URL, params={"cursor": bad}, headers=ADMIN)
        assert r.status_code == 422, r.text
        problem = r.json()
        assert problem["type"].endswith("invalid-cursor") and problem["errors"][0]["field"] == "query.cursor"
    assert (await client.get(URL, params={"cursor": cursor}, headers=ADMIN)).status_code == 200


async def test_agents_export_what_they_may_read_channels_and_strangers_nothing(client, known_users, ticket_db):
    await known_users(A1.id, B1.id)
    for agent in (A1, B1):
        r = await client.put(f"/v1/agents/{agent.id}", json={"display_name": agent.name, "status": "online"},
                             headers=ADMIN)
        assert r.status_code == 200, r.text
    teams = {}
    for name, member in (("Team A", A1.id), ("Team B", B1.id)):
        r = await client.post("/v1/teams", json={"name": name, "strategy": "manual", "members": [member]},
                              headers=ADMIN)
        assert r.status_code == 201, r.text
        teams[name] = r.json()["id"]
    of_a, of_b, triage = await create(client, "A 组"), await create(client, "B 组"), await create(client, "分拣")
    for ticket, team in ((of_a, teams["Team A"]), (of_b, teams["Team B"])):
        r = await client.patch(f"/v1/tickets/{ticket['id']}", json={"team_id": team}, headers=SUPERVISOR)
        assert r.status_code == 200, r.text
    await caught_up(ticket_db)

    async def exported(headers) -> set[str]:
        items, _ = await drain(client, (await page(client, headers=headers, start_time="0", limit=1))["next_cursor"],
                               limit=1, headers=headers)
        first = await page(client, headers=headers, start_time="0", limit=1000)
        assert {i["id"] for i in first["items"]} >= {i["id"] for i in items}
        return {i["id"] for i in first["items"]}

    assert await exported(identity_headers(A1)) == {of_a["id"], triage["id"]}
    assert await exported(identity_headers(B1)) == {of_b["id"], triage["id"]}
    assert await exported(SUPERVISOR) == await exported(ADMIN) == {of_a["id"], of_b["id"], triage["id"]}

    r = await client.get(URL, headers=CHANNEL)
    assert r.status_code == 403 and r.headers["content-type"] == "application/problem+json"
    r = await client.get(URL)
    assert r.status_code == 401 and r.headers["content-type"] == "application/problem+json"
