"""`make bench`, part 2: does ticketing slow down as data grows?

Measures, on one private ticket-svc (embedded PostgreSQL + tansu, the other services stopped
so only ticket-svc and PostgreSQL share the cores):

  * API intake (POST /v1/tickets, bench/post.lua),
  * e-mail intake (POST /v1/channels/email/inbound with raw MIME, bench/email.lua),
  * search (GET /v1/tickets?q=..., Chinese and English terms, bench/search.lua) p50/p95,

first on an empty database (after one unmeasured round of the same phases, ``--warm-round``:
fresh processes and tables), then again after bulk-loading N tickets (default 1,000,000, each
with its opening message and search lexemes) straight into PostgreSQL. Before each search
phase the tickets are ANALYZEd and ticket-svc's search index is brought in line with the fresh
statistics and the bench's search terms (``settle_search``), so both phases search in the
steady state. The ratios
loaded / empty are the point; absolute numbers move with the machine.

The empty database answers most of the bench's search terms with an empty page, so a second
search baseline runs after loading the first ``--full-pages`` tickets (default 10,000): its pages
are as full as the loaded phase's, and loaded / full-pages is what the stored data adds.

Merges its keys (``scale_*``) into bench/results/latest.json and prints a short table.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import sys
import re
import time
import urllib.parse
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import asyncpg  # noqa: E402
import httpx  # noqa: E402

from bench.run import (  # noqa: E402
    RESULTS, WRK_INSTALL_HINT, CpuSampler, Phase, free_block, free_port_outside, log, raw_dsn, remove_data_dir, wrk,
)
from helpdesk_common.devstack import PORT_BLOCK, Stack, StackConfig  # noqa: E402
from helpdesk_common.identity import IdentitySigner, Principal  # noqa: E402
from ticket_svc.pii import codec as pii_codec  # noqa: E402
from ticket_svc.tickets import repository as ticket_repository  # noqa: E402
from ticket_svc.tickets import search, search_index, service  # noqa: E402
from ticket_svc.tickets.search import lexemes  # noqa: E402

PRODUCTS = [("打印机", "printer"), ("笔记本电脑", "laptop"), ("路由器", "router"), ("会员账户", "membership account"),
            ("发票", "invoice"), ("快递包裹", "parcel"), ("手机", "phone"), ("耳机", "headphones"),
            ("退款申请", "refund request"), ("登录", "login"), ("物流", "shipping"), ("保修", "warranty"),
            ("优惠券", "coupon"), ("订阅", "subscription"), ("显示器", "monitor"), ("键盘", "keyboard"),
            ("空调", "air conditioner"), ("冰箱", "fridge"), ("洗衣机", "washing machine"), ("门锁", "door lock")]
PROBLEMS = [("无法连接", "cannot connect"), ("收到时已损坏", "arrived damaged"), ("扣款两次", "charged twice"),
            ("登录失败", "login failed"), ("发货延迟", "shipping delay"), ("密码重置", "password reset"),
            ("申请退款", "asks for a refund"), ("发票抬头错误", "wrong invoice title"), ("无法开机", "does not power on"),
            ("噪音很大", "very noisy"), ("屏幕闪烁", "screen flickers"), ("少发配件", "missing accessories"),
            ("地址错误", "wrong address"), ("自动续费", "auto renewal"), ("质量问题", "quality issue"),
            ("安装预约", "installation appointment"), ("保修期内维修", "repair under warranty"),
            ("价格变动", "price changed"), ("账号被锁", "account locked"), ("换货", "wants an exchange"),
            ("物流信息不更新", "tracking not updated"), ("客服回复慢", "slow support reply"),
            ("优惠未生效", "discount not applied"), ("重复下单", "duplicate order"), ("配送超时", "delivery late")]
TEMPLATES = len(PRODUCTS) * len(PROBLEMS)  # 500


def templates() -> list[tuple[int, str, str, list[str]]]:
    rows = []
    for i, ((p_zh, p_en), (q_zh, q_en)) in enumerate((p, q) for p in PRODUCTS for q in PROBLEMS):
        subject = f"{p_zh}{q_zh} / {p_en} {q_en}"
        description = (f"您好，我的{p_zh}{q_zh}，请尽快处理。Hello, my {p_en} {q_en}; please help as soon as "
                       f"possible. Order details are in my account.")
        rows.append((i, subject, description, lexemes(subject, description)))
    return rows


#: distinct requesters of the bulk-loaded tickets, each sealed as ticket-svc stores one
REQUESTERS = 10_000


def sealed_requesters(codec: Any, count: int = REQUESTERS) -> list[tuple[int, str, str, list[str], uuid.UUID]]:
    """(n, sealed requester JSON, identity index, all indexes, customer id) of ``count``
    requesters, as ticket-svc stores them since migration 0018 (``pii.codec.requester_columns``):
    the requester encrypted, no plaintext identity, and linked to its customer as customer-svc's
    answer links every ticket shortly after intake. A bulk ticket then costs a page what a real one
    does (the requester decrypted and masked) and sits in the indexes where a real one sits."""
    rows = []
    for n in range(count):
        columns = codec.requester_columns({"name": f"客户 {n}", "email": f"bulk-{n}@example.com"})
        rows.append((n, json.dumps(columns["requester"]), columns["requester_identity_bidx"], columns["requester_bidx"],
                     uuid.uuid5(uuid.NAMESPACE_URL, f"bench-customer-{n}")))
    return rows


async def bulk_load(dsn: str, total: int, *, codec: Any, start: int = 1, batch: int = 100_000) -> float:
    """Insert tickets ``start`` .. ``total`` with their opening messages, in batches; returns
    seconds. ``codec``: ticket-svc's PII codec under the stack's keys (``pii.codec.configure``)."""
    started = time.monotonic()
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("CREATE TEMP TABLE tpl (n int PRIMARY KEY, subject text, description text, tsv tsvector)")
        await conn.executemany(
            "INSERT INTO tpl VALUES ($1, $2, $3, array_to_tsvector($4::text[]))", templates())
        await conn.execute("CREATE TEMP TABLE req (n int PRIMARY KEY, sealed jsonb, bidx text, bidxs text[], customer uuid)")
        await conn.executemany("INSERT INTO req VALUES ($1, $2::jsonb, $3, $4, $5)", sealed_requesters(codec))
        for first in range(start, total + 1, batch):
            last = min(first + batch - 1, total)
            await conn.execute(
                """
                WITH new AS (
                  INSERT INTO tickets (id, subject, description, status, priority, type, channel, tags, custom_fields,
                    requester, requester_identity_kind, requester_identity_bidx, requester_bidx, customer_id,
                    created_by, created_at, updated_at, search, message_count, language)
                  SELECT gen_random_uuid(), t.subject || ' B-' || g, t.description,
                    (ARRAY['new','open','pending','on_hold','solved','closed'])[1 + abs(hashint4(g)) % 6],
                    (ARRAY['low','normal','normal','high','urgent'])[1 + abs(hashint4(g + 1)) % 5], 'complaint',
                    (ARRAY['email','api','chat','wechat','web'])[1 + g % 5], ARRAY['bulk'], '{}'::jsonb,
                    r.sealed, 'email', r.bidx, r.bidxs, r.customer, 'channel:bulk',
                    now() - make_interval(secs => $2 - g + 60), now() - make_interval(secs => $2 - g + 60),
                    t.tsv || array_to_tsvector(ARRAY['b', g::text]), 1, 'zh'
                  FROM generate_series($1::int, $2::int) g JOIN tpl t ON t.n = g % $3 JOIN req r ON r.n = g % $4
                  RETURNING id, description, channel, created_at
                )
                INSERT INTO messages (id, ticket_id, author_kind, public, body_text, channel, created_at)
                SELECT gen_random_uuid(), id, 'customer', true, description, channel, created_at FROM new
                """,
                first, last, TEMPLATES, REQUESTERS,
            )
            log(f"  loaded {last:,} / {total:,} tickets ({time.monotonic() - started:.0f} s)")
        # the whole database, not only tickets and messages: the search postings the load's
        # triggers filled are as new, and an autovacuum of any of them in a measured phase takes
        # one of the machine's two cores from intake (``autovacuum_at``)
        await conn.execute("VACUUM ANALYZE")
        # write the load's dirty pages out now: at 10,000,000 tickets that is gigabytes, and the
        # checkpointer flushing them during the loaded phases is the aftermath of a bulk load,
        # not what a desk that grew to that size runs under
        await conn.execute("CHECKPOINT")
    finally:
        await conn.close()
    return time.monotonic() - started


class Tokens:
    """The bench's identity tokens, signed afresh when read: they live five minutes
    (``identity.TOKEN_TTL_S``) and a run at 10,000,000 tickets lasts most of an hour (the signer
    re-signs a minute before expiry; a phase lasts seconds)."""

    def __init__(self, signer: IdentitySigner, principals: dict[str, Principal]) -> None:
        self.signer, self.principals = signer, principals

    def __getitem__(self, name: str) -> str:
        return self.signer.token_for(self.principals[name])


def search_terms() -> list[str]:
    """The terms bench/search.lua cycles through, decoded."""
    block = re.search(r"local terms = \{(.*?)\}", (ROOT / "bench" / "search.lua").read_text(), re.S)
    assert block, "bench/search.lua: no terms table"
    return [urllib.parse.unquote_plus(t) for t in re.findall(r'"([^"]+)"', block.group(1))]


async def settle_search(dsn: str, url: str, agent_token: str, *, timeout_s: float = 900) -> tuple[float, int]:
    """ANALYZE the tickets, search each bench term once as the agent (a common term with no
    postings asks for its key, tickets/search_index.py) and run the search index's passes until
    every key asked for is filled. (seconds, keys ready). Both phases then search in the steady
    state of a desk whose agents searched these terms before; the first search of a new common
    term in production takes the older plans until the next pass (a minute) fills its key."""
    started = time.monotonic()
    conn = await asyncpg.connect(dsn)
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=1)
    try:
        await conn.execute("ANALYZE tickets")
        refresh = service.LEXEME_STATS.REFRESH_S + 1  # ticket-svc's cache of statistics and ready keys
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            await asyncio.sleep(refresh)  # fresh statistics in ticket-svc
            for term in search_terms():
                r = await client.get("/v1/tickets", params={"q": term, "limit": 25},
                                     headers={"X-Internal-Identity": agent_token})
                r.raise_for_status()
        while time.monotonic() - started < timeout_s:
            await search_index.run_pass(pool, per_key=1000)  # skips while ticket-svc's own pass runs
            row = await conn.fetchrow("SELECT count(*) FILTER (WHERE state = 'ready') AS ready, "
                                      "count(*) FILTER (WHERE state = 'filling') AS filling FROM ticket_search_keys")
            if not row["filling"]:
                await asyncio.sleep(refresh)  # ticket-svc sees the keys ready
                return time.monotonic() - started, row["ready"]
            await asyncio.sleep(1)
        raise RuntimeError(f"the search index did not settle within {timeout_s:.0f} s")
    finally:
        await pool.close()
        await conn.close()


async def prime_search_keys(dsn: str) -> int:
    """Ask for and fill the posting keys of the bench's search terms before any intake, as if
    agents had searched them before: both intake phases then write the same postings (a ticket
    containing a searched key gets one), and only the stored data differs between them."""
    conn = await asyncpg.connect(dsn)
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=1)
    try:
        for term in search_terms():
            key = search.walk_key(term, None, {})
            if key is not None:
                await ticket_repository.request_search_key(conn, key, max_keys=200)
        while await conn.fetchval("SELECT count(*) FROM ticket_search_keys WHERE state = 'filling'"):
            await search_index.run_pass(pool, per_key=1000)
            await asyncio.sleep(0.2)
        return await conn.fetchval("SELECT count(*) FROM ticket_search_keys")
    finally:
        await pool.close()
        await conn.close()


async def autovacuum_at(dsn: str) -> list[str]:
    """What autovacuum is doing now (``autovacuum: VACUUM public.tickets`` ...): a phase measured
    while it works shares the cores with it."""
    conn = await asyncpg.connect(dsn)
    try:
        return [r["query"] for r in await conn.fetch(
            "SELECT query FROM pg_stat_activity WHERE backend_type = 'autovacuum worker' ORDER BY query")]
    finally:
        await conn.close()


#: autovacuum seen at the start or the end of each measured phase: (phase, what it was doing)
AUTOVACUUM: list[tuple[str, str]] = []


def noting_autovacuum(name: str, dsn: str, run: Any) -> Phase:
    """Run a phase, noting what autovacuum did at its start and its end."""
    found = [(f"{name} start", q) for q in asyncio.run(autovacuum_at(dsn))]
    phase = run()
    found += [(f"{name} end", q) for q in asyncio.run(autovacuum_at(dsn))]
    for when, query in found:
        log(f"  autovacuum at {when}: {query}")
    AUTOVACUUM.extend(found)
    return phase


def measure(label: str, url: str, dsn: str, tokens: Tokens, wrk_args: dict, run_id: str) -> dict[str, Phase]:
    phases = {}
    log(f"[{label}] API intake ...")
    phases["api"] = noting_autovacuum(f"api-{label}", dsn, lambda: wrk(
        f"api-{label}", f"{url}/v1/tickets", script="post.lua",
        env={"BENCH_AUTH_HEADER": "X-Internal-Identity", "BENCH_AUTH_VALUE": tokens["api"],
             "BENCH_TAG": f"api-{label}-{run_id}"}, **wrk_args))
    log(f"[{label}] e-mail intake ...")
    phases["email"] = noting_autovacuum(f"email-{label}", dsn, lambda: wrk(
        f"email-{label}", f"{url}/v1/channels/email/inbound", script="email.lua",
        env={"BENCH_AUTH_HEADER": "X-Internal-Identity", "BENCH_AUTH_VALUE": tokens["email"],
             "BENCH_TAG": f"mail-{label}-{run_id}"}, **wrk_args))
    phases["search"] = search_phase(label, url, dsn, tokens, wrk_args)
    return phases


def search_phase(label: str, url: str, dsn: str, tokens: Tokens, wrk_args: dict) -> Phase:
    settled_s, keys = asyncio.run(settle_search(dsn, url, tokens["agent"]))
    log(f"[{label}] search ({keys} common keys ready; ANALYZE and index {settled_s:.0f} s) ...")
    return noting_autovacuum(f"search-{label}", dsn, lambda: wrk(
        f"search-{label}", url, script="search.lua",
        env={"BENCH_AUTH_HEADER": "X-Internal-Identity", "BENCH_AUTH_VALUE": tokens["agent"]}, **wrk_args))


#: the processes whose CPU per search request the report shows: ticket-svc's Python (the request,
#: rendering the page) and PostgreSQL's planning and execution. PostgreSQL's group is every child
#: of the postmaster, autovacuum's workers included: the report names any autovacuum seen at a
#: phase's start or end
CPU_GROUPS = ("ticket-svc", "postgres")


def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a and b else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/scale.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tickets", type=int, default=1_000_000, help="tickets to bulk-load (default 1,000,000)")
    parser.add_argument("--duration", type=int, default=10, help="seconds per measured wrk phase (default 10)")
    parser.add_argument("--warmup", type=int, default=2, help="unmeasured wrk seconds before each phase")
    parser.add_argument("--warm-round", type=int, default=5,
                        help="seconds per phase of one unmeasured round before the empty one (0: none)")
    parser.add_argument("--full-pages", type=int, default=10_000,
                        help="tickets loaded first for a second search baseline whose pages are as full as "
                             "the loaded phase's (0: none; default 10,000)")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections (default 16)")
    parser.add_argument("--keep-data", action="store_true")
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        print(WRK_INSTALL_HINT, file=sys.stderr)
        return 2

    def on_signal(signum, _frame):  # unwind through the finally below
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    run_id = f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{os.getpid()}"
    data_dir = ROOT / ".data" / "bench" / f"scale-{run_id}"
    data_dir.mkdir(parents=True, mode=0o755)
    os.chmod(data_dir, 0o755)
    base = free_block(PORT_BLOCK)
    pg_port = free_port_outside(range(base, base + PORT_BLOCK))
    kafka_port = free_port_outside(range(base, base + PORT_BLOCK), {pg_port})
    stack = Stack(StackConfig(data_dir=data_dir, gateway_port=base, service_base_port=base, pg_port=pg_port,
                              kafka_port=kafka_port, extra_env={"LOG_LEVEL": "WARNING"}))
    sampler = CpuSampler()
    sampler.start()
    wrk_args = dict(duration=args.duration, connections=args.connections, threads=1, warmup=args.warmup,
                    sampler=sampler)
    failed = False
    results: dict = {}
    started = time.monotonic()
    try:
        log(f"starting PostgreSQL, the broker and ticket-svc (data {data_dir.relative_to(ROOT)}) ...")
        stack.start_infra()
        stack.migrate()
        stack.start_service("ticket-svc", {"TICKET_CONSUMERS_ENABLED": "false"})
        stack.wait_service("ticket-svc")
        url = stack.url_of("ticket-svc")
        sampler.watch("ticket-svc", stack.procs["ticket-svc"].pid)
        sampler.watch("postgres", stack.pg.proc.pid)
        signer = IdentitySigner(stack.secrets["internal_auth_private_key"])
        codec = pii_codec.configure(stack.secrets["ticket_pii_keys"], stack.secrets["ticket_pii_index_key"])
        tokens = Tokens(signer, {
            "api": Principal(kind="channel", id=str(uuid.uuid4()), channel="api", name="bench"),
            "email": Principal(kind="channel", id=str(uuid.uuid4()), channel="email", name="bench"),
            "agent": Principal(kind="user", id="bench-agent", role="agent", name="bench"),
        })
        log(f"  {asyncio.run(prime_search_keys(raw_dsn(stack.database_url('ticket-svc'))))} search keys "
            "of the bench's terms ready before any intake")
        if args.warm_round > 0:
            # a fresh process and database: the first requests pay for caches, prepared statements,
            # first index pages and statistics of tables that were empty. Without this round the
            # empty phases ran slower than the loaded ones (ratios above 1.3 at 1M and 10M)
            measure("warm-up", url, raw_dsn(stack.database_url("ticket-svc")), tokens,
                    {**wrk_args, "duration": args.warm_round}, run_id)
        empty = measure("empty", url, raw_dsn(stack.database_url("ticket-svc")), tokens, wrk_args, run_id)
        full_pages = min(max(args.full_pages, 0), args.tickets - 1)
        full = None
        load_s = 0.0
        if full_pages:
            # the empty database's search answers most of the bench's terms with no ticket at all,
            # so its latency is the framework's alone. A few thousand matching tickets fill every
            # page the loaded phase fills: against this baseline the ratio shows what a million
            # tickets add, not what 25 rows read, decrypted and encoded cost
            log(f"bulk-loading {full_pages:,} tickets for the full-page search baseline ...")
            load_s += asyncio.run(bulk_load(raw_dsn(stack.database_url("ticket-svc")), full_pages, codec=codec))
            full = search_phase(f"{full_pages // 1000}k", url, raw_dsn(stack.database_url("ticket-svc")), tokens,
                                wrk_args)
        log(f"bulk-loading {args.tickets - full_pages:,} tickets with their messages ...")
        load_s += asyncio.run(bulk_load(raw_dsn(stack.database_url("ticket-svc")), args.tickets, codec=codec,
                                        start=full_pages + 1))
        log("settling the search index on the loaded tickets ...")
        index_s, keys = asyncio.run(settle_search(raw_dsn(stack.database_url("ticket-svc")), url, tokens["agent"]))
        log(f"  {keys} keys ready after {index_s:.0f} s")
        loaded = measure("loaded", url, raw_dsn(stack.database_url("ticket-svc")), tokens, wrk_args, run_id)
        results = {
            "scale_tickets_stored": args.tickets,
            "scale_load_s": round(load_s, 1),
            "scale_search_index_s": round(index_s, 1),
            "scale_search_index_keys": keys,
            "scale_connections": args.connections,
        }
        for key in ("api", "email"):
            results[f"scale_intake_{key}_rps_empty"] = round(empty[key].rps, 1)
            results[f"scale_intake_{key}_rps_loaded"] = round(loaded[key].rps, 1)
            results[f"scale_intake_{key}_ratio"] = ratio(loaded[key].rps, empty[key].rps)
            results[f"scale_intake_{key}_p99_ms_empty"] = round(empty[key].p99_ms, 1)
            results[f"scale_intake_{key}_p99_ms_loaded"] = round(loaded[key].p99_ms, 1)
        for label, phases in (("empty", empty), ("loaded", loaded)):
            results[f"scale_search_rps_{label}"] = round(phases["search"].rps, 1)
            results[f"scale_search_p50_ms_{label}"] = round(phases["search"].p50_ms, 2)
            results[f"scale_search_p95_ms_{label}"] = round(phases["search"].p95_ms or 0, 2)
            for group in CPU_GROUPS:
                results[f"scale_search_{group}_cpu_ms_per_req_{label}"] = phases["search"].cpu_ms_per_req(group)
        results["scale_search_p95_ratio"] = ratio(results["scale_search_p95_ms_loaded"],
                                                  results["scale_search_p95_ms_empty"])
        if full is not None:
            results["scale_full_pages_tickets"] = full_pages
            results["scale_search_rps_full_pages"] = round(full.rps, 1)
            results["scale_search_p95_ms_full_pages"] = round(full.p95_ms or 0, 2)
            results["scale_search_p95_ratio_full_pages"] = ratio(results["scale_search_p95_ms_loaded"],
                                                                 results["scale_search_p95_ms_full_pages"])
            for group in CPU_GROUPS:
                results[f"scale_search_{group}_cpu_ms_per_req_full_pages"] = full.cpu_ms_per_req(group)
        errors = {f"{label}-{k}": p.errors for label, ph in (("empty", empty), ("loaded", loaded)) for k, p in ph.items()}
        if full is not None:
            errors["full-pages-search"] = full.errors
        results["scale_errors"] = sum(errors.values())
        results["scale_autovacuum_in_phases"] = "; ".join(f"{when}: {query}" for when, query in AUTOVACUUM) or "none"
        results["scale_errors_by_phase"] = ",".join(f"{k}={v}" for k, v in errors.items() if v) or "none"
    except BaseException as exc:  # noqa: BLE001 - report, clean up, exit non-zero
        failed = True
        print(f"scale bench failed: {exc!r}", file=sys.stderr)
    finally:
        sampler.stop()
        stack.stop_all()
        if failed:
            remove_data_dir(data_dir, keep_logs=True)
        elif not args.keep_data:
            remove_data_dir(data_dir)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if failed:
        return 1
    RESULTS.mkdir(parents=True, exist_ok=True)
    latest = RESULTS / "latest.json"
    merged = json.loads(latest.read_text()) if latest.exists() else {}
    merged.update(results)
    latest.write_text(json.dumps(merged, indent=2, ensure_ascii=False) + "\n")
    n = f"{args.tickets / 1e6:g}M" if args.tickets >= 1_000_000 else f"{args.tickets:,}"
    print(f"\nticketing at scale ({n} tickets stored vs empty; {args.connections} connections, "
          f"{args.duration} s phases; bulk load {load_s:.0f} s, search index {index_s:.0f} s for {keys} keys)")
    print(f"{'case':<22}{'empty':>12}{'loaded':>12}{'ratio':>8}")
    for key, label in (("api", "API intake req/s"), ("email", "e-mail intake req/s")):
        print(f"{label:<22}{results[f'scale_intake_{key}_rps_empty']:>12,.1f}"
              f"{results[f'scale_intake_{key}_rps_loaded']:>12,.1f}{results[f'scale_intake_{key}_ratio'] or 0:>8.2f}")
    print(f"{'search p95 ms':<22}{results['scale_search_p95_ms_empty']:>12,.1f}"
          f"{results['scale_search_p95_ms_loaded']:>12,.1f}{results['scale_search_p95_ratio'] or 0:>8.2f}")
    print(f"{'search req/s':<22}{results['scale_search_rps_empty']:>12,.1f}{results['scale_search_rps_loaded']:>12,.1f}")
    if "scale_search_p95_ms_full_pages" in results:
        print(f"{'search p95 ms':<22}{results['scale_search_p95_ms_full_pages']:>12,.1f}"
              f"{results['scale_search_p95_ms_loaded']:>12,.1f}{results['scale_search_p95_ratio_full_pages'] or 0:>8.2f}"
              f"   (baseline: {results['scale_full_pages_tickets']:,} tickets, pages as full as loaded; "
              f"{results['scale_search_rps_full_pages']:,.1f} req/s)")
    labels = ("empty", "full_pages", "loaded") if "scale_search_p95_ms_full_pages" in results else ("empty", "loaded")
    for group in CPU_GROUPS:
        print(f"{group + ' CPU ms per search':<30}" + "  ".join(
            f"{label} {results[f'scale_search_{group}_cpu_ms_per_req_{label}']:.3f}" for label in labels))
    print(f"autovacuum during measured phases: {results['scale_autovacuum_in_phases']}")
    print(f"errors: {results['scale_errors_by_phase']}   (run took {time.monotonic() - started:.0f} s)")
    return 3 if results["scale_errors"] else 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
