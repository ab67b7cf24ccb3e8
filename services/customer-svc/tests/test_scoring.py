"""Insight scores on the real database: the incremental worker after an order, churn episodes
with hysteresis (one started, one ended), segment changes, tier rules through customer.updated,
filters and the distribution, the nightly run agreeing with the incremental path, and two
workers never emitting twice."""

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from helpdesk_common import events
from helpdesk_common.identity import Principal
from helpdesk_common.testing import identity_headers, running_app, service_env

ADMIN = identity_headers(Principal(kind="user", id="u1", role="admin"))
SUPERVISOR = identity_headers(Principal(kind="user", id="u3", role="supervisor"))
AGENT = identity_headers(Principal(kind="user", id="u2", role="agent"))
AS_OF = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


@pytest.fixture
async def quiet(infra, customer_db, monkeypatch):
    """The API without the insight worker: tests score by hand, at a fixed instant."""
    service_env(monkeypatch, infra, "CUSTOMER_", customer_db)
    for name in ("CUSTOMER_CONSUMERS_ENABLED", "CUSTOMER_RELAY_ENABLED", "CUSTOMER_INSIGHTS_ENABLED",
                 "CUSTOMER_IMPORTS_ENABLED", "CUSTOMER_SURVEYS_ENABLED"):
        monkeypatch.setenv(name, "false")
    from customer_svc.config import Settings
    from customer_svc.main import create_app

    async with running_app(create_app(Settings())) as client:
        yield client


@pytest.fixture
async def pool(customer_db):
    from helpdesk_common.db import create_raw_pool

    pool = await create_raw_pool(customer_db, size=3)
    yield pool
    await pool.close()


async def outbox(db, prefix: str) -> list:
    async with db.connect() as conn:
        rows = (await conn.execute(text("SELECT key, payload FROM outbox WHERE event_type LIKE :p ORDER BY seq"),
                                   {"p": prefix + "%"})).all()
    return [(r.key, events.decode(r.payload)) for r in rows]


async def customer(api, external_id: str, **profile) -> str:
    r = await api.post("/v1/customers", json={"name": f"客户 {external_id}", "identities": [
        {"kind": "external:api", "value": external_id}], **profile}, headers=SUPERVISOR)
    assert r.status_code == 201, r.text
    return r.json()["id"]


async def order(api, customer_id: str, external_id: str, at: datetime, amount: str = "100", **extra) -> None:
    r = await api.post(f"/v1/customers/{customer_id}/orders", json={
        "external_id": external_id, "ordered_at": at.isoformat(), "amount": amount, "currency": "CNY",
        "status": "paid", **extra}, headers=SUPERVISOR)
    assert r.status_code in (200, 201), r.text


async def ticket(pool, customer_id: str, *, created_at: datetime, status: str = "open",
                 breached_at: datetime | None = None, type_: str | None = None, tags: list[str] | None = None) -> uuid.UUID:
    """A row of the ticket projection (engineered here: the projection's consumer has its own tests)."""
    ticket_id = uuid.uuid4()
    async with pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO customer_tickets (ticket_id, customer_id, status, type, channel, tags, created_at, updated_at, "
            "breaches, first_breached_at, last_breached_at) VALUES ($1, $2, $3, $4, 'email', $5, $6, $6, $7, $8, $8)",
            ticket_id, uuid.UUID(customer_id), status, type_, tags or [], created_at, 1 if breached_at else 0,
            breached_at)
    return ticket_id


async def regular_buyer(api, customer_id: str, *, last_days_ago: int, count: int = 12, gap_days: int = 30,
                        amount: str = "100") -> None:
    for i in range(count):
        await order(api, customer_id, f"{customer_id[:8]}-{i}", AS_OF - timedelta(days=last_days_ago + i * gap_days),
                    amount)


async def score_now(pool, customer_ids, as_of=AS_OF):
    from customer_svc.insights import ChurnSettings, RfmSettings
    from customer_svc.scoring import service

    async with pool.acquire() as conn, conn.transaction():
        ctx = await service.load_context(conn, as_of=as_of, rfm=RfmSettings(), churn=ChurnSettings(), rates={})
        return await service.score_customers(conn, [uuid.UUID(c) for c in customer_ids], ctx)


async def stored(pool, customer_id: str):
    async with pool.acquire() as conn:
        return await conn.fetchrow("SELECT * FROM customer_insights WHERE customer_id = $1", uuid.UUID(customer_id))


# --------------------------------------------------------------------------- incremental


async def test_an_order_rescores_its_customer_through_the_worker(api, pool):
    cid = await customer(api, "W1")
    await order(api, cid, "SO-W1", datetime.now(UTC) - timedelta(days=3), "12.5")
    body = None
    for _ in range(100):  # the worker polls every 0.5 s: bounded wait of 10 s
        r = await api.get(f"/v1/customers/{cid}/insights", headers=AGENT)
        assert r.status_code == 200, r.text
        body = r.json()
        if body["churn_risk"]["score"] is not None:
            break
        await asyncio.sleep(0.1)
    assert body["rfm"]["frequency"] == 1 and body["rfm"]["monetary"] == "12.50" and body["rfm"]["recency_days"] == 3
    assert body["churn_risk"] == {**body["churn_risk"], "score": 0, "band": "low", "reasons": [], "episode_active": False}
    # one customer with orders cannot be ranked: no scores, no segment (not the worst ones)
    assert (body["rfm"]["r"], body["rfm"]["segment"]) == (None, None)
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM insight_dirty") == 0
    missing = await api.get(f"/v1/customers/{uuid.uuid4()}/insights", headers=AGENT)
    assert missing.status_code == 404 and missing.headers["content-type"].startswith("application/problem+json")


async def test_a_customer_marked_again_while_scored_stays_dirty(quiet, pool):
    from customer_svc.scoring import repository

    cid = uuid.UUID(await customer(quiet, "D1"))
    async with pool.acquire() as conn:
        await repository.mark_dirty(conn, cid)
        leased = await repository.lease_dirty(conn, limit=10, lease_s=60)
        assert [r["customer_id"] for r in leased] == [cid]
        assert await repository.lease_dirty(conn, limit=10, lease_s=60) == []  # leased: nobody else takes it
        await repository.mark_dirty(conn, cid)  # a new fact meanwhile
        await repository.release_dirty(conn, [(r["customer_id"], r["since"]) for r in leased])
        assert await conn.fetchval("SELECT count(*) FROM insight_dirty") == 1
        again = await repository.lease_dirty(conn, limit=10, lease_s=60)
        await repository.release_dirty(conn, [(r["customer_id"], r["since"]) for r in again])
        assert await conn.fetchval("SELECT count(*) FROM insight_dirty") == 0


async def test_a_customer_whose_scoring_fails_does_not_hold_back_the_batch(quiet, pool, monkeypatch):
    from customer_svc.insights import ChurnSettings, RfmSettings
    from customer_svc.scoring import repository, service

    bad, good = uuid.UUID(await customer(quiet, "P1")), uuid.UUID(await customer(quiet, "P2"))
    merged = uuid.UUID(await customer(quiet, "P3"))
    real = service.score

    def failing(facts, stored, ctx):
        if facts.customer_id == bad:
            raise ValueError("broken facts")
        return real(facts, stored, ctx)

    monkeypatch.setattr(service, "score", failing)
    async with pool.acquire() as conn:
        await conn.execute("UPDATE customers SET merged_into = $1 WHERE id = $2", good, merged)
        await repository.mark_many_dirty(conn, [bad, good, merged])
    leased = await service.score_dirty(pool, limit=10, lease_s=60, rfm=RfmSettings(), churn=ChurnSettings(), rates={},
                                       as_of=AS_OF)
    assert leased == 3
    async with pool.acquire() as conn:
        # the failing customer stays leased for a later try; the merged one is forgotten unscored
        assert [r["customer_id"] for r in await conn.fetch("SELECT customer_id FROM insight_dirty")] == [bad]
        assert await conn.fetchval("SELECT array_agg(customer_id) FROM customer_insights") == [good]


# --------------------------------------------------------------------------- churn episodes


async def test_churn_crossing_emits_one_started_then_one_ended(quiet, pool, db):
    cid = await customer(quiet, "C1", language="zh-CN", account_owner_id=str(uuid.uuid4()))
    await regular_buyer(quiet, cid, last_days_ago=100)  # a monthly habit that stopped 100 days ago
    first = await ticket(pool, cid, created_at=AS_OF - timedelta(days=20), breached_at=AS_OF - timedelta(days=19))
    second = await ticket(pool, cid, created_at=AS_OF - timedelta(days=10), breached_at=AS_OF - timedelta(days=9))

    outcome = await score_now(pool, [cid])
    assert outcome.episodes_started == 1
    row = await stored(pool, cid)
    # 30 (frequency drop) + 20 (overdue: 100 days, 3.3 usual gaps) + 20 (two breaches) + 7 (two of three open tickets)
    assert (row["churn_score"], row["churn_band"], row["churn_episode_active"]) == (77, "high", True)
    reasons = row["churn_reasons"]
    assert [r["factor"] for r in reasons] == ["order_frequency_drop", "order_overdue", "sla_breaches",
                                              "unresolved_tickets"]
    assert sum(r["points"] for r in reasons) == 77 and set(reasons[0]["message"]) == {"en", "zh-CN"}

    await score_now(pool, [cid])  # the same facts again: still in the episode, nothing emitted
    # one breach ages out and one ticket is solved: 65 is inside the band, the episode goes on
    async with pool.acquire() as conn:
        await conn.execute("UPDATE customer_tickets SET last_breached_at = $2, status = 'solved' WHERE ticket_id = $1",
                           first, AS_OF - timedelta(days=200))
    await score_now(pool, [cid])
    row = await stored(pool, cid)
    assert (row["churn_score"], row["churn_episode_active"]) == (63, True)
    async with pool.acquire() as conn:
        await conn.execute("UPDATE customer_tickets SET last_breached_at = $2, status = 'solved' WHERE ticket_id = $1",
                           second, AS_OF - timedelta(days=200))
    await score_now(pool, [cid])
    row = await stored(pool, cid)
    assert (row["churn_score"], row["churn_episode_active"]) == (50, False)

    log = await outbox(db, "insight.")
    assert [(e.data.episode, e.data.score) for _, e in log] == [("started", 77), ("ended", 50)]
    started = log[0][1]
    assert log[0][0] == cid and started.data.language == "zh-CN" and started.data.band == "high"
    assert started.data.account_owner_id is not None and started.data.previous_score is None
    assert [(r.factor, r.points) for r in started.data.reasons][:2] == [("order_frequency_drop", 30),
                                                                        ("order_overdue", 20)]
    assert started.data.reasons[0].zh_cn.startswith("近90天下单0次")
    async with pool.acquire() as conn:
        kinds = await conn.fetch("SELECT kind, summary FROM customer_timeline WHERE customer_id = $1 "
                                 "AND kind = 'churn_risk.changed' ORDER BY at", uuid.UUID(cid))
    assert [k["summary"]["episode"] for k in kinds] == ["started", "ended"]


async def test_concurrent_workers_do_not_emit_twice(quiet, pool, db, customer_db):
    from customer_svc.insights import ChurnSettings, RfmSettings
    from customer_svc.scoring import repository, service
    from helpdesk_common.db import create_raw_pool

    cid = await customer(quiet, "X1")
    await regular_buyer(quiet, cid, last_days_ago=100)
    for days in (20, 10):
        await ticket(pool, cid, created_at=AS_OF - timedelta(days=days), breached_at=AS_OF - timedelta(days=days - 1))
    other = await create_raw_pool(customer_db, size=2)
    try:
        # two replicas' passes over the dirty set: the lease gives the customer to one of them
        async with pool.acquire() as conn:
            await repository.mark_dirty(conn, uuid.UUID(cid))
        args = dict(limit=100, lease_s=60, rfm=RfmSettings(), churn=ChurnSettings(), rates={}, as_of=AS_OF)
        leased = await asyncio.gather(service.score_dirty(pool, **args), service.score_dirty(other, **args))
        assert sorted(leased) == [0, 1]
        # and the same customer scored by two transactions at once (re-marked, leased again
        # elsewhere): the stored scores' row lock makes the second see the first's episode
        async with pool.acquire() as conn:
            await conn.execute("UPDATE customer_insights SET churn_episode_active = false WHERE customer_id = $1",
                               uuid.UUID(cid))
        results = await asyncio.gather(score_now(pool, [cid]), score_now(other, [cid]))
        assert sorted(r.episodes_started for r in results) == [0, 1]
    finally:
        await other.close()
    assert [e.data.episode for _, e in await outbox(db, "insight.")] == ["started", "started"]


# --------------------------------------------------------------------------- segments, filters, distribution


async def base_of_five(api) -> dict[str, str]:
    """Five buyers whose R, F and M are each in a different quintile (scores 1..5)."""
    ids = {}
    for rank in range(1, 6):  # rank 5: the most recent, most frequent, biggest spender
        cid = await customer(api, f"S{rank}")
        ids[rank] = cid
        for i in range(rank):
            await order(api, cid, f"S{rank}-{i}", AS_OF - timedelta(days=(6 - rank) * 10 + i), f"{rank * 100}")
    return ids


async def test_full_run_segments_events_filters_and_distribution(quiet, pool, db):
    from customer_svc.scoring import service

    ids = await base_of_five(quiet)
    nobody = await customer(quiet, "S0")  # no orders: scored for churn, never ranked
    outcome = await service.recompute_all(pool, AS_OF)
    assert outcome.scored == 6 and outcome.segment_changes == 5
    rows = {rank: await stored(pool, cid) for rank, cid in ids.items()}
    assert [(rows[k]["r"], rows[k]["f"], rows[k]["m"]) for k in range(1, 6)] == [(k, k, k) for k in range(1, 6)]
    assert [rows[k]["segment"] for k in range(1, 6)] == ["general_win_back"] * 3 + ["important_value"] * 2
    assert (await stored(pool, nobody))["segment"] is None

    log = await outbox(db, "customer.segment_changed")
    assert sorted((e.data.previous, e.data.segment) for _, e in log) == sorted(
        [(None, "general_win_back")] * 3 + [(None, "important_value")] * 2)
    assert {key for key, _ in log} == set(ids.values())
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM customer_timeline WHERE kind = 'segment.changed'") == 5

    r = await quiet.get("/v1/insights/segments", headers=AGENT)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["total"] == 5 and body["computed_at"] is not None
    shares = {i["segment"]: (i["count"], i["share"], i["name_zh"]) for i in body["items"]}
    assert len(shares) == 8 and shares["important_value"] == (2, 0.4, "重要价值客户")
    assert shares["general_win_back"][:2] == (3, 0.6) and shares["general_value"][:2] == (0, 0.0)

    found = await quiet.get("/v1/customers", params={"segment": "important_value"}, headers=AGENT)
    assert found.status_code == 200, found.text
    assert {c["id"] for c in found.json()["items"]} == {ids[4], ids[5]}
    low = await quiet.get("/v1/customers", params={"risk_band": "low", "limit": 2}, headers=AGENT)
    assert low.status_code == 200 and len(low.json()["items"]) == 2 and low.json()["next_cursor"]
    for bad in ({"segment": "vip"}, {"risk_band": "severe"}):
        r = await quiet.get("/v1/customers", params=bad, headers=AGENT)
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == f"query.{next(iter(bad))}"

    # a year later nobody has ordered within the window: F and M tie at their lowest for everyone,
    # R still ranks them, so the two recent buyers move from important_value to general_development
    await service.recompute_all(pool, AS_OF + timedelta(days=400))
    moved = [e.data for _, e in await outbox(db, "customer.segment_changed")][5:]
    assert sorted((str(d.customer_id), d.previous, d.segment, d.m) for d in moved) == sorted(
        (ids[k], "important_value", "general_development", 1) for k in (4, 5))
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT last_full_run_at FROM insight_settings") is not None


async def test_at_risk_list_and_a_customers_insights(quiet, pool):
    from customer_svc.scoring import service

    risky = await customer(quiet, "R1")
    await regular_buyer(quiet, risky, last_days_ago=100)
    for days in (20, 10):
        await ticket(pool, risky, created_at=AS_OF - timedelta(days=days), breached_at=AS_OF - timedelta(days=days - 1))
    calm = await customer(quiet, "R2")
    await order(quiet, calm, "R2-1", AS_OF - timedelta(days=1))
    await service.recompute_all(pool, AS_OF)

    r = await quiet.get("/v1/insights/churn", params={"band": "high"}, headers=AGENT)
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert [i["customer_id"] for i in items] == [risky] and items[0]["score"] == 77 and len(items[0]["reasons"]) == 3
    page = await quiet.get("/v1/insights/churn", params={"limit": 1}, headers=AGENT)
    rest = await quiet.get("/v1/insights/churn", params={"limit": 1, "cursor": page.json()["next_cursor"]},
                           headers=AGENT)
    assert [i["customer_id"] for i in page.json()["items"] + rest.json()["items"]] == [risky, calm]
    assert (await quiet.get("/v1/insights/churn", params={"cursor": "bm9wZQ"}, headers=AGENT)).status_code == 400
    assert (await quiet.get("/v1/insights/churn", params={"band": "x"}, headers=AGENT)).status_code == 422

    one = (await quiet.get(f"/v1/customers/{risky}/insights", headers=AGENT)).json()
    assert one["churn_risk"]["score"] == 77 and one["churn_risk"]["episode_active"] is True
    assert one["churn_risk"]["reasons"][0] == {
        "factor": "order_frequency_drop", "points": 30, "message": one["churn_risk"]["reasons"][0]["message"]}
    # nine of the twelve monthly orders are inside the 365-day window
    assert one["rfm"]["frequency"] == 9 and one["rfm"]["monetary"] == "900.00"


# --------------------------------------------------------------------------- tier rules


async def test_tier_rules_change_the_tier_through_customer_updated(quiet, pool, db):
    cid = await customer(quiet, "T1", tier="silver")
    manual = await customer(quiet, "T2", tier="vip")  # set by hand: no rule claims them
    await order(quiet, cid, "T1-1", AS_OF - timedelta(days=2), "12000")
    await order(quiet, manual, "T2-1", AS_OF - timedelta(days=2), "50")

    rules = {"rules": [{"when": {"monetary_at_least": 10000, "current_tier_in": ["Silver"]}, "tier": "Gold"}]}
    assert (await quiet.put("/v1/insights/tier-rules", json=rules, headers=SUPERVISOR)).status_code == 403
    bad = await quiet.put("/v1/insights/tier-rules", json={"rules": [{"when": {"segment_in": ["vip"]}, "tier": "x"}]},
                          headers=ADMIN)
    assert bad.status_code == 422 and "segment_in" in bad.json()["errors"][0]["field"]
    empty = await quiet.put("/v1/insights/tier-rules", json={"rules": [{"when": {}, "tier": "x"}]}, headers=ADMIN)
    assert empty.status_code == 422 and [e["code"] for e in empty.json()["errors"]] == ["cross_field"]
    never = await quiet.put("/v1/insights/tier-rules", headers=ADMIN, json={
        "rules": [{"when": {"monetary_at_least": 5, "monetary_below": 5}, "tier": "x"}]})
    assert never.status_code == 422 and [e["code"] for e in never.json()["errors"]] == ["range"]
    r = await quiet.put("/v1/insights/tier-rules", json=rules, headers={**ADMIN, "If-Match": 'W/"1"'})
    assert r.status_code == 200, r.text
    assert r.json()["rules"][0]["tier"] == "gold" and r.headers["etag"] == 'W/"2"'
    stale = await quiet.put("/v1/insights/tier-rules", json=rules, headers={**ADMIN, "If-Match": 'W/"1"'})
    assert stale.status_code == 412
    assert (await quiet.get("/v1/insights/tier-rules", headers=AGENT)).json()["rules"] == r.json()["rules"]

    outcome = await score_now(pool, [cid, manual])
    assert outcome.tier_changes == 1
    changed = (await quiet.get(f"/v1/customers/{cid}", headers=AGENT)).json()
    assert changed["tier"] == "gold" and changed["version"] == 2
    assert (await quiet.get(f"/v1/customers/{manual}", headers=AGENT)).json()["tier"] == "vip"
    updates = [e for key, e in await outbox(db, "customer.updated") if key == cid]
    assert updates[-1].data.changes == {"tier": {"before": "silver", "after": "gold"}}
    assert updates[-1].data.actor == "system:insights" and updates[-1].data.tier == "gold"
    assert (await score_now(pool, [cid])).tier_changes == 0  # gold now: the rule no longer matches
    async with pool.acquire() as conn:
        entry = await conn.fetchrow("SELECT summary FROM customer_timeline WHERE customer_id = $1 AND kind = 'tier.changed' "
                                    "AND summary->>'actor' = 'system:insights'",
                                    uuid.UUID(cid))
    assert entry["summary"] == {"before": "silver", "after": "gold", "actor": "system:insights", "rule": 0}


# --------------------------------------------------------------------------- nightly = incremental


async def test_the_full_run_and_the_incremental_path_agree(quiet, pool, db):
    from customer_svc.insights import ChurnSettings, RfmSettings
    from customer_svc.scoring import repository, service

    ids = list((await base_of_five(quiet)).values())
    extra = await customer(quiet, "N1")
    await regular_buyer(quiet, extra, last_days_ago=100, count=6, amount="33.33")
    await ticket(pool, extra, created_at=AS_OF - timedelta(days=5), type_="refund", tags=["退款"])
    await ticket(pool, extra, created_at=AS_OF - timedelta(days=3), type_="refund")
    ids.append(extra)
    await service.recompute_all(pool, AS_OF)
    columns = "customer_id, recency_days, frequency, monetary, r, f, m, segment, churn_score, churn_band, churn_reasons"
    async with pool.acquire() as conn:
        full = [dict(r) for r in await conn.fetch(f"SELECT {columns} FROM customer_insights ORDER BY customer_id")]
        await conn.execute("DELETE FROM customer_insights")
        await repository.mark_many_dirty(conn, [uuid.UUID(c) for c in ids])
    events_before = len(await outbox(db, "customer.segment_changed"))
    while await service.score_dirty(pool, limit=2, lease_s=60, rfm=RfmSettings(), churn=ChurnSettings(), rates={},
                                    as_of=AS_OF):
        pass
    async with pool.acquire() as conn:
        incremental = [dict(r) for r in await conn.fetch(f"SELECT {columns} FROM customer_insights ORDER BY customer_id")]
    assert incremental == full and any(r["segment"] for r in full)
    repeat = next(r for r in full if str(r["customer_id"]) == extra)
    assert "repeat_contacts" in [reason["factor"] for reason in repeat["churn_reasons"]]
    # rows deleted, so every segment "moved" from nothing again: one event per ranked customer
    ranked = sum(1 for r in full if r["segment"])
    assert ranked == 6 and len(await outbox(db, "customer.segment_changed")) - events_before == ranked


async def test_the_full_runs_read_ahead_never_overwrites_a_newer_score(quiet, pool):
    """The full run reads a batch's facts before its transaction; a customer the incremental
    worker scored in between (from newer facts) is read again under the lock."""
    from customer_svc.insights import ChurnSettings, RfmSettings
    from customer_svc.scoring import service

    cid = await customer(quiet, "A1")
    await regular_buyer(quiet, cid, last_days_ago=100)
    async with pool.acquire() as conn:
        ctx = await service.load_context(conn, as_of=AS_OF, rfm=RfmSettings(), churn=ChurnSettings(), rates={})
        ahead = await service.prefetch(conn, [uuid.UUID(cid)], ctx)
    assert ahead.facts[0].breached_recent == 0
    for days in (20, 10):  # new facts, scored by the incremental path meanwhile
        await ticket(pool, cid, created_at=AS_OF - timedelta(days=days), breached_at=AS_OF - timedelta(days=days - 1))
    await score_now(pool, [cid], as_of=AS_OF - timedelta(seconds=1))
    assert (await stored(pool, cid))["churn_score"] == 77
    async with pool.acquire() as conn, conn.transaction():
        outcome = await service.score_customers(conn, [uuid.UUID(cid)], ctx, ahead)
    assert outcome.episodes_ended == 0 and (await stored(pool, cid))["churn_score"] == 77


# --------------------------------------------------------------------------- full runs through the API


async def test_recompute_is_a_job_admins_start(api):
    cid = await customer(api, "J1")
    await order(api, cid, "J1-1", datetime.now(UTC) - timedelta(days=1))
    assert (await api.post("/v1/insights/recompute", headers=SUPERVISOR)).status_code == 403
    r = await api.post("/v1/insights/recompute", headers=ADMIN)
    assert r.status_code == 202, r.text
    run_id = r.json()["id"]
    status = None
    for _ in range(100):  # bounded: 10 s
        got = await api.get(f"/v1/insights/recompute/{run_id}", headers=SUPERVISOR)
        assert got.status_code == 200, got.text
        status = got.json()
        if status["status"] in ("completed", "failed"):
            break
        await asyncio.sleep(0.1)
    assert status["status"] == "completed" and status["customers_scored"] >= 1 and status["trigger"] == "manual"
    assert (await api.get(f"/v1/insights/recompute/{run_id}", headers=AGENT)).status_code == 403
    assert (await api.get(f"/v1/insights/recompute/{uuid.uuid4()}", headers=ADMIN)).status_code == 404


def test_the_nightly_schedule():
    from zoneinfo import ZoneInfo

    from customer_svc.scoring.worker import due_instant, nightly_is_due

    shanghai = ZoneInfo("Asia/Shanghai")
    at = datetime(2026, 11, 30, 17, 30, tzinfo=UTC)  # 01:30 on Dec 1 in Shanghai: 02:00 not yet
    assert due_instant(at, datetime.strptime("02:00", "%H:%M").time(), shanghai) == datetime(
        2026, 11, 29, 18, 0, tzinfo=UTC)
    later = datetime(2026, 11, 30, 18, 0, 1, tzinfo=UTC)
    due = due_instant(later, datetime.strptime("02:00", "%H:%M").time(), shanghai)
    assert due == datetime(2026, 11, 30, 18, 0, tzinfo=UTC)
    started = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)
    assert nightly_is_due(due, started_at=started, last_full_run_at=None)
    assert not nightly_is_due(due - timedelta(days=1), started_at=started, last_full_run_at=None)  # first start
    assert nightly_is_due(due - timedelta(days=1), started_at=started, last_full_run_at=due - timedelta(days=2))
    assert not nightly_is_due(due - timedelta(days=1), started_at=started, last_full_run_at=due)
