"""Time-ordered postings of common search keys (migration 0023, tickets/search_index.py): the
triggers keep them exact through every kind of write, and a search that walks them returns
exactly what the date-index and GIN plans return, page by page, across trims of old postings."""

import random
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from helpdesk_common.identity import Principal
from helpdesk_common.testing import identity_headers
from ticket_svc.tickets import repository, search, search_index, service

T0 = datetime(2026, 1, 1, tzinfo=UTC)
PHRASES = ["申请退款", "打印机无法连接", "退款到账了吗", "printer offline", "refund request", "refunded twice",
           "invoice title wrong", "发票抬头错误", "login failed", "登录失败", "printing is slow", "物流信息不更新"]


def dsn(ticket_db: str) -> str:
    return ticket_db.replace("postgresql+asyncpg://", "postgresql://")


async def insert(conn, texts: list[str], start: datetime, *, step_s: float = 1.0) -> list[uuid.UUID]:
    """Tickets with these subjects, one ``step_s`` apart from ``start``, in ONE statement (the
    insert trigger sees them all in its transition table)."""
    ids = [uuid.uuid4() for _ in texts]
    times = [start + timedelta(seconds=i * step_s) for i in range(len(texts))]
    statuses = ["open" if i % 3 else "pending" for i in range(len(texts))]
    await conn.execute(
        "INSERT INTO tickets (id, subject, status, priority, requester, created_by, created_at, updated_at, search) "
        "SELECT i, s, st, 'normal', '{}'::jsonb, 'test', c, c, d::tsvector "
        "FROM unnest($1::uuid[], $2::text[], $3::text[], $4::timestamptz[], $5::text[]) AS x(i, s, st, c, d)",
        ids, texts, statuses, times, [search.document(subject=t) for t in texts])
    return ids


async def postings(conn) -> set[tuple]:
    """The postings within each key's cover."""
    rows = await conn.fetch(
        "SELECT p.key, p.created_at, p.ticket_id FROM ticket_search_postings p JOIN ticket_search_keys k USING (key) "
        "WHERE p.created_at >= coalesce(k.covered_since, '-infinity')")
    return {tuple(r) for r in rows}


async def expected(conn) -> set[tuple]:
    """What the postings must be, computed from the tickets themselves."""
    rows = await conn.fetch(
        "SELECT k.key, t.created_at, t.id FROM tickets t "
        "CROSS JOIN LATERAL unnest(ticket_search_keys_of(t.search)) AS own(key) "
        "JOIN ticket_search_keys k ON k.key = own.key WHERE t.created_at >= coalesce(k.covered_since, '-infinity')")
    return {tuple(r) for r in rows}


async def add_and_fill(conn, keys: list[str], *, per_key: int) -> None:
    for key in keys:
        assert await repository.request_search_key(conn, key, max_keys=100)
    for key in keys:
        assert await repository.fill_search_key(conn, key, search.key_query(key), per_key=per_key)


def test_keys_and_walks():
    assert search.posting_key("printer") == "prin" and search.posting_key("退款") == "退款"
    assert search.key_query("prin") == "'prin':*" and search.key_query("退款") == "'退款'"
    ready = frozenset({"prin", "退款", "申请", "请退", "refu"})
    freqs = {"申请": 0.09, "请退": 0.04, "退款": 0.09, "printer": 0.2, "refund": 0.05}
    assert search.walk_key("申请退款", ready, freqs) == "请退"  # the rarest term's key
    assert search.walk_key("printer", ready, freqs) == "prin"  # a prefix term of 4+ letters
    assert search.walk_key("refun", ready, freqs) == "refu"
    assert search.walk_key("pr", ready, freqs) is None  # a short prefix has no single key
    assert search.walk_key("printer pr", ready, freqs) == "prin"  # but another term may
    assert search.walk_key("打印机", ready, freqs) is None  # keys not built
    assert search.walk_key("打印机 refund", None, freqs) == "打印"  # None: the key to ask for (打印 unknown: rarest)


async def test_triggers_keep_postings_exact_through_every_write(ticket_db):
    conn = await asyncpg.connect(dsn(ticket_db))
    try:
        ids = await insert(conn, PHRASES * 3, T0)
        await add_and_fill(conn, ["退款", "打印", "prin", "refu", "invo"], per_key=1000)
        assert (await conn.fetchval("SELECT count(*) FROM ticket_search_keys WHERE state = 'ready' "
                                    "AND covered_since IS NULL")) == 5
        assert await postings(conn) == await expected(conn) != set()
        # a bulk insert after the keys exist
        ids += await insert(conn, PHRASES, T0 + timedelta(hours=1))
        assert await postings(conn) == await expected(conn)
        # a message appends lexemes; a subject change drops some (the PATCH path's SQL)
        await conn.execute("UPDATE tickets SET search = search || $2::tsvector WHERE id = $1",
                           ids[10], search.document(public=["我想退款 refund please"]))
        await conn.execute("UPDATE tickets SET search = ts_filter(search, '{b,c,d}') || $2::tsvector WHERE id = $1",
                           ids[3], search.document(subject="nothing common here"))
        assert await postings(conn) == await expected(conn)
        assert not await conn.fetchval("SELECT count(*) FROM ticket_search_postings WHERE ticket_id = $1", ids[3])
        # other updates do not touch them; a moved creation time moves every posting
        await conn.execute("UPDATE tickets SET status = 'solved' WHERE id = ANY($1::uuid[])", ids[:5])
        await conn.execute("UPDATE tickets SET created_at = created_at - interval '1 day' WHERE id = $1", ids[0])
        assert await postings(conn) == await expected(conn)
        # an erasure empties the vector; a hard delete removes the ticket
        await conn.execute("UPDATE tickets SET search = ''::tsvector WHERE id = $1", ids[1])
        await conn.execute("DELETE FROM tickets WHERE id = ANY($1::uuid[])", ids[20:24])
        assert await postings(conn) == await expected(conn)
        assert not await conn.fetchval("SELECT count(*) FROM ticket_search_postings WHERE ticket_id = ANY($1::uuid[])",
                                       [ids[1], *ids[20:24]])
    finally:
        await conn.close()


QUERIES = ["退款", "申请退款", "打印机", "printer", "prin", "refund", "refu", "printer offline", "打印机 refund",
           "invoice", "发票"]


async def all_pages(conn, query: str, filters: dict, *, walk_key: str | None, share: float, limit: int = 4) -> list:
    """Every page of a search, following the cursor; the ids in order."""
    tsq = search.tsquery(query)
    found, after = [], None
    for _ in range(200):
        rows = await repository.list_tickets_raw(conn, filters={**filters, "tsquery": tsq}, limit=limit + 1,
                                                 after=after, search_share=share, walk_key=walk_key)
        found += [r["id"] for r in rows[:limit]]
        if len(rows) <= limit:
            return found
        after = (rows[limit - 1]["created_at"], rows[limit - 1]["id"])
    raise AssertionError("no end of pages")


async def test_walking_postings_returns_what_the_other_plans_return(ticket_db):
    """Small ``per_key`` so that every search crosses the cover into the trimmed past, and pages
    that straddle it; filters that reject most of the walk; ties in creation time."""
    rnd = random.Random(19)
    conn = await asyncpg.connect(dsn(ticket_db))
    try:
        texts = [" ".join(rnd.sample(PHRASES, rnd.randint(1, 3))) + f" B-{i}" for i in range(150)]
        await insert(conn, texts[:100], T0)
        # forty at one instant, newest at the fill: its sixth-newest of a key ties with others
        await insert(conn, texts[100:140], T0 + timedelta(seconds=300), step_s=0)
        keys = ["退款", "申请", "请退", "打印", "prin", "refu", "invo", "发票"]
        await add_and_fill(conn, keys, per_key=6)
        await insert(conn, texts[140:], T0 + timedelta(hours=1))  # after the fill: written by the trigger
        assert await repository.trim_search_postings(conn, per_key=6) > 0
        await conn.execute("UPDATE tickets SET deleted_at = now() WHERE subject LIKE '%B-13%'")
        assert await postings(conn) == await expected(conn)
        ready = await repository.ready_search_keys(conn)
        filter_sets = [{}, {"status": "pending"}, {"created_before": T0 + timedelta(seconds=50)},
                       {"created_after": T0 + timedelta(seconds=20)}, {"deleted": "only"}]
        checked = 0
        for query in QUERIES:
            key = search.walk_key(query, ready, {})
            assert key is not None, query
            for filters in filter_sets:
                walked = await all_pages(conn, query, filters, walk_key=key, share=1.0)
                dated = await all_pages(conn, query, filters, walk_key=None, share=1.0)
                gin = await all_pages(conn, query, filters, walk_key=None, share=0.0)
                assert walked == dated == gin, (query, filters)
                checked += len(walked)
        assert checked > 300
    finally:
        await conn.close()


async def test_a_search_keeps_one_generic_plan_per_connection(ticket_db):
    """The walk's page size is in its text (``repository.page_limit``), and so is a rare search's
    when nothing but the search narrows it, its query opaque to the planner (``opaque_tsquery``):
    after PostgreSQL's five custom plans each statement keeps its generic one, where both were
    planned again at every execution (docs/performance.md, round 23: 0.18 and 0.07 ms of
    planning per search at a million tickets). A rare search under another filter is left to
    PostgreSQL's choice at each execution: the filter's value may make its own index the better one."""
    conn = await asyncpg.connect(dsn(ticket_db))
    try:
        # 48,000 tickets, 8,000 with 退款: enough for the LIMIT parameter's generic plan to cost more
        # than a page's custom ones (at 4,800 tickets PostgreSQL kept the generic plan either way)
        await insert(conn, PHRASES * 4000, T0, step_s=0.01)
        await insert(conn, [f"rare order B-{i}" for i in range(12)], T0 + timedelta(days=1))
        await add_and_fill(conn, ["退款", "prin"], per_key=1000)
        await conn.execute("ANALYZE")
        agent = {"deleted": None, "visible_to_agent": "a1", "statuses": None, "tags": []}
        for query, key in (("退款", "退款"), ("申请退款", "退款"), ("printer", "prin")) * 4:
            rows = await repository.list_tickets_raw(conn, filters={**agent, "tsquery": search.tsquery(query)},
                                                     limit=26, after=None, search_share=1.0, walk_key=key)
            assert len(rows) == 26
        for i in range(12):  # rare searches: the GIN plan; then the same under a status filter
            for extra in ({}, {"statuses": ["open", "pending"]}):
                rows = await repository.list_tickets_raw(
                    conn, filters={**agent, **extra, "tsquery": search.tsquery(f"B-{i}")}, limit=26, after=None,
                    search_share=0.0)
                assert [r["subject"] for r in rows] == [f"rare order B-{i}"]
        # the three search statements (the postings' fill also reads ``search @@``: left out by its CTE)
        plans = await conn.fetch(
            "SELECT statement LIKE 'WITH c AS MATERIALIZED%' AS walk, statement LIKE '%status = ANY%' AS filtered, "
            "statement, generic_plans, custom_plans FROM pg_prepared_statements "
            "WHERE statement LIKE '%search @@%' AND statement NOT LIKE '%WITH found AS%' ORDER BY 1, 2")
        assert [(r["walk"], r["filtered"]) for r in plans] == [(False, False), (False, True), (True, False)]
        fixed_rare, filtered_rare, walk = (dict(r) for r in plans)
        for kept in (fixed_rare, walk):
            assert kept["custom_plans"] <= 5 and kept["generic_plans"] >= 7, plans
        # the filtered one is left to PostgreSQL's choice per execution: its LIMIT a parameter, its query in sight
        assert "LIMIT $" in filtered_rare["statement"] and "@@ (SELECT" not in filtered_rare["statement"]
        assert "LIMIT 26" in fixed_rare["statement"] and "@@ (SELECT" in fixed_rare["statement"]
    finally:
        await conn.close()


async def test_a_pass_fills_the_keys_asked_for_and_trims_them(ticket_db):
    conn = await asyncpg.connect(dsn(ticket_db))
    pool = await asyncpg.create_pool(dsn(ticket_db), min_size=1, max_size=2)
    try:
        await insert(conn, PHRASES * 30, T0)
        for key in ("退款", "refu", "打印"):
            assert await repository.request_search_key(conn, key, max_keys=3)
        assert not await repository.request_search_key(conn, "发票", max_keys=3)  # the cap
        assert not await repository.request_search_key(conn, "退款", max_keys=30)  # already there
        done = await search_index.run_pass(pool, per_key=10)
        assert done["filled"] == 3
        assert await repository.ready_search_keys(conn) == {"退款", "refu", "打印"}
        assert await postings(conn) == await expected(conn)
        await insert(conn, PHRASES * 2, T0 + timedelta(days=1))
        again = await search_index.run_pass(pool, per_key=10)
        assert again["filled"] == 0 and again["trimmed"] > 0
        assert await conn.fetchval("SELECT max(n) FROM (SELECT count(*) AS n FROM ticket_search_postings "
                                   "GROUP BY key) c") <= 10
        assert await postings(conn) == await expected(conn)
    finally:
        await pool.close()
        await conn.close()


async def test_search_through_the_api_asks_for_a_key_then_walks_it(client, ticket_db, monkeypatch):
    """A common search with no ready key asks for one and takes the older plan; after a pass it
    walks the key's postings, and answers what it answered before, page by page."""
    conn = await asyncpg.connect(dsn(ticket_db))
    pool = await asyncpg.create_pool(dsn(ticket_db), min_size=1, max_size=1)
    try:
        await insert(conn, PHRASES * 20, T0)
        await conn.execute("ANALYZE tickets")
        agent = identity_headers(Principal(kind="user", id="s1", role="supervisor"))
        walked: list[str] = []
        real = repository._list_by_postings

        async def spy(conn, **kw):
            walked.append(kw["key"])
            return await real(conn, **kw)

        async def all_pages() -> list[str]:
            ids, cursor = [], None
            while True:
                r = await client.get("/v1/tickets", params={"q": "申请退款", "limit": 7,
                                                            **({"cursor": cursor} if cursor else {})}, headers=agent)
                assert r.status_code == 200, r.text
                ids += [t["id"] for t in r.json()["items"]]
                cursor = r.json().get("next_cursor")
                if not cursor:
                    return ids

        service.LEXEME_STATS.forget()
        monkeypatch.setattr(repository, "_list_by_postings", spy)
        before = await all_pages()
        assert not walked
        asked = await conn.fetch("SELECT key, state FROM ticket_search_keys")
        assert len(asked) == 1 and asked[0]["state"] == "filling"  # asked once, for a rarest bigram
        assert asked[0]["key"] in {"申请", "请退"}  # (both only in 申请退款 here; 退款 is in more)
        assert (await search_index.run_pass(pool, per_key=5))["filled"] == 1
        service.LEXEME_STATS.forget()
        after = await all_pages()
        assert walked and set(walked) == {asked[0]["key"]}
        assert after == before and len(after) == len(set(after)) == 20  # every ticket with 申请退款, once
    finally:
        service.LEXEME_STATS.forget()
        await pool.close()
        await conn.close()


async def test_a_fill_waits_for_writers_that_could_not_see_the_key(ticket_db):
    """A transaction that wrote a ticket before the key existed, and commits after, is in no
    trigger's view and in no earlier fill's snapshot: the key stays filling until it ends, and
    the fill then finds its ticket. No table lock: the writer is never held up."""
    conn = await asyncpg.connect(dsn(ticket_db))
    writer = await asyncpg.connect(dsn(ticket_db))
    pool = await asyncpg.create_pool(dsn(ticket_db), min_size=1, max_size=2)
    try:
        await insert(conn, PHRASES * 30, T0)
        slow = writer.transaction()
        await slow.start()
        late = await insert(writer, ["申请退款 late writer"], T0 + timedelta(days=2))
        assert await repository.request_search_key(conn, "退款", max_keys=10)
        done = await search_index.run_pass(pool, per_key=1000)
        assert done["filled"] == 0  # the key waits for the writer
        assert await repository.ready_search_keys(conn) == frozenset()
        await insert(conn, ["退款 while filling"], T0 + timedelta(days=3))  # its trigger sees the key
        await slow.commit()
        again = await search_index.run_pass(pool, per_key=1000)
        assert again["filled"] == 1
        assert await conn.fetchval("SELECT count(*) FROM ticket_search_postings WHERE ticket_id = $1 "
                                   "AND key = '退款'", late[0]) == 1
        assert await postings(conn) == await expected(conn)
    finally:
        await pool.close()
        await writer.close()
        await conn.close()


async def test_narrow_filters_and_bad_sizes_keep_the_other_plans(ticket_db):
    conn = await asyncpg.connect(dsn(ticket_db))
    try:
        ids = await insert(conn, PHRASES * 3, T0)
        await add_and_fill(conn, ["退款"], per_key=10)
        tsq = search.tsquery("退款")
        for narrow in ({"created_by": "test"}, {"customer_id": uuid.uuid4()}, {"numbers": [1, 2]},
                       {"assignee_id": "a1"}):
            assert await repository._list_by_postings(conn, key="退款", filters={"tsquery": tsq, **narrow},
                                                      limit=5, after=None) is None
        assert len(await repository._list_by_postings(conn, key="退款", filters={"tsquery": tsq},
                                                      limit=5, after=None)) == 5
        assert await repository._list_by_postings(conn, key="不在", filters={"tsquery": tsq},
                                                  limit=5, after=None) is None  # not a key
        with pytest.raises(ValueError):
            await repository.fill_search_key(conn, "退款", search.key_query("退款"), per_key=0)
        assert ids
    finally:
        await conn.close()


async def test_a_writer_with_a_newer_id_than_the_key_is_waited_for_too(ticket_db):
    """The key's transaction takes its id first, a writer the next one, its trigger runs before
    the key commits, and it commits last. The horizon must be above the writer's id (the mark's
    own id), not one past the newest completed (which would be the writer's, still running)."""
    conn = await asyncpg.connect(dsn(ticket_db))
    asker = await asyncpg.connect(dsn(ticket_db))
    writer = await asyncpg.connect(dsn(ticket_db))
    pool = await asyncpg.create_pool(dsn(ticket_db), min_size=1, max_size=2)
    try:
        await insert(conn, PHRASES * 3, T0)
        ask = asker.transaction()
        await ask.start()
        assert await repository.request_search_key(asker, "退款", max_keys=10)
        await asker.fetchval("SELECT pg_current_xact_id()")
        slow = writer.transaction()
        await slow.start()
        late = await insert(writer, ["退款 from a writer younger than the key"], T0 + timedelta(days=2))
        await ask.commit()  # the key is visible now; the writer's trigger ran before
        assert (await search_index.run_pass(pool, per_key=1000))["filled"] == 0
        await slow.commit()
        assert (await search_index.run_pass(pool, per_key=1000))["filled"] == 1
        assert await conn.fetchval("SELECT count(*) FROM ticket_search_postings WHERE ticket_id = $1", late[0]) == 1
        assert await postings(conn) == await expected(conn)
    finally:
        await pool.close()
        await writer.close()
        await asker.close()
        await conn.close()


async def test_only_agents_common_walkable_searches_ask_for_keys(client, ticket_db, monkeypatch):
    conn = await asyncpg.connect(dsn(ticket_db))
    try:
        await insert(conn, PHRASES * 20, T0)
        await conn.execute("ANALYZE tickets")
        service.LEXEME_STATS.forget()
        channel = identity_headers(Principal(kind="channel", id="key-1", channel="web"))
        agent = identity_headers(Principal(kind="user", id="s1", role="supervisor"))
        for params, headers in (({"q": "退款"}, channel), ({"q": "退款", "sort": "updated"}, agent),
                                ({"q": "退款", "assignee_id": "a1"}, agent), ({"q": "zzz"}, agent)):
            r = await client.get("/v1/tickets", params=params, headers=headers)
            assert r.status_code == 200, r.text
        assert await conn.fetchval("SELECT count(*) FROM ticket_search_keys") == 0
        from ticket_svc.config import get_settings
        monkeypatch.setattr(get_settings(), "search_index_interval_s", 0.0)
        assert (await client.get("/v1/tickets", params={"q": "退款"}, headers=agent)).status_code == 200
        assert await conn.fetchval("SELECT count(*) FROM ticket_search_keys") == 0  # passes off: no ask
        monkeypatch.setattr(get_settings(), "search_index_interval_s", 60.0)
        assert (await client.get("/v1/tickets", params={"q": "退款"}, headers=agent)).status_code == 200
        assert await conn.fetchval("SELECT key FROM ticket_search_keys") == "退款"
    finally:
        service.LEXEME_STATS.forget()
        await conn.close()
