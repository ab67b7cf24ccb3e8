"""`make bench`, the knowledge base at scale: search and suggestions with 100,000 articles.

On a private embedded PostgreSQL with kb-svc alone (API only: no consumer, no relay), it
measures p50/p95 of ``GET /v1/kb/search`` (anonymous, the labelled set's queries in turn: half
Chinese, half English, with typos and synonyms) and of ``POST /v1/kb/suggestions`` (a web form's
subject and description) first on an EMPTY knowledge base, then after bulk-loading N published
articles (default 100,000, half Chinese; ``BENCH_KB_ARTICLES`` or ``--articles``; 0 skips).

It also scores relevance: the labelled set (services/kb-svc/tests/search/relevance_set.json) is
loaded first and its queries asked over HTTP, precision@5 / recall@5 / MRR on the set alone,
and again once the 100,000 generated articles (on the same topics, in the same words) compete.

The articles are generated from a help-center vocabulary (topics × products × actions ×
problems, Chinese and English sentences), written to the content tables with COPY and indexed
through the indexer's own SQL (``indexer.document_params`` + ``repository.UPSERT_DOCUMENT``,
executemany in batches, the vocabulary recounted at the end) — not one HTTP call each.

Merges ``kb_scale_*`` keys into bench/results/latest.json and prints a short table; exit status 3
when a request failed or the loaded search p95 exceeds the goal (200 ms).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import asyncpg  # noqa: E402
import httpx  # noqa: E402

from bench.run import RESULTS, free_block, free_port_outside, log, raw_dsn, remove_data_dir  # noqa: E402
from helpdesk_common.devstack import PORT_BLOCK, Stack, StackConfig  # noqa: E402
from helpdesk_common.migrate import ensure_database, upgrade  # noqa: E402
from kb_svc.search import relevance  # noqa: E402
from kb_svc.search.indexer import document_params  # noqa: E402

GOAL_P95_MS = 200.0
DEFAULT_ARTICLES = 100_000
BATCH = 2_000
SET_PATH = ROOT / "services" / "kb-svc" / "tests" / "search" / "relevance_set.json"

# ---- the generated articles ------------------------------------------------------------------

EN_TOPICS = [
    ("refund", ["refund", "refunds", "money back", "reimbursement"]),
    ("invoice", ["invoice", "receipt", "VAT invoice", "billing address"]),
    ("shipping", ["shipping", "delivery", "parcel", "tracking number", "courier"]),
    ("account", ["account", "login", "password", "sign in", "two-factor authentication", "email address"]),
    ("warranty", ["warranty", "repair", "battery replacement", "serial number"]),
    ("returns", ["return", "exchange", "return label", "replacement"]),
    ("membership", ["membership", "subscription", "reward points", "renewal"]),
    ("coupon", ["coupon", "voucher", "gift card", "discount code"]),
    ("payment", ["payment", "credit card", "PayPal", "installments", "declined charge"]),
    ("orders", ["order", "order number", "cancellation", "order history"]),
]
EN_PRODUCTS = ["iPhone 15", "Galaxy S24", "Pixel 8", "MacBook Air", "AirPods Pro", "Kindle", "Switch OLED",
               "smart watch", "robot vacuum", "coffee machine", "running shoes", "winter jacket", "desk lamp",
               "gaming mouse", "4K monitor", "air purifier", "electric toothbrush", "baby stroller"]
EN_ACTIONS = ["request", "check", "change", "cancel", "track", "download", "update", "confirm", "reset", "extend"]
EN_PROBLEMS = ["is delayed", "was rejected", "does not arrive", "shows an error", "is missing", "was charged twice",
               "cannot be found", "expired", "is pending", "was damaged"]
EN_FILLER = ["Open My Orders and choose the order.", "Our support team answers within one business day.",
             "Keep the original packaging until the process is complete.", "You receive an email at each step.",
             "Business customers can ask their account manager.", "The mobile app shows the same information.",
             "Have the order number ready before contacting us.", "Processing can take up to 7 business days.",
             "Read the terms shown at checkout for details.", "Screenshots help our agents answer faster."]

ZH_TOPICS = [
    ("退款", ["退款", "退钱", "退款进度", "原路退回"]),
    ("发票", ["发票", "电子发票", "增值税发票", "发票抬头"]),
    ("物流", ["快递", "物流", "运单号", "包裹", "配送"]),
    ("账户", ["账户", "登录", "密码", "验证码", "手机号"]),
    ("保修", ["保修", "维修", "售后", "更换电池"]),
    ("退换货", ["退货", "换货", "退货地址", "七天无理由"]),
    ("会员", ["会员", "自动续费", "积分", "会员权益"]),
    ("优惠券", ["优惠券", "优惠码", "代金券", "满减"]),
    ("支付", ["支付", "支付宝", "微信支付", "银行卡", "分期"]),
    ("订单", ["订单", "订单号", "取消订单", "订单详情"]),
]
ZH_PRODUCTS = ["iPhone 15", "华为 Mate 60", "小米 14", "MacBook Air", "AirPods Pro", "扫地机器人", "空气净化器",
               "咖啡机", "跑步鞋", "羽绒服", "台灯", "电动牙刷", "婴儿推车", "智能手表", "4K 显示器", "游戏鼠标"]
ZH_ACTIONS = ["申请", "查询", "修改", "取消", "追踪", "下载", "更新", "确认", "重置", "延长"]
ZH_PROBLEMS = ["一直没有到账", "被拒绝了", "迟迟没有更新", "显示错误", "找不到", "重复扣款", "已经过期", "处理中",
               "收到时有损坏", "无法使用"]
ZH_FILLER = ["请在我的订单中选择对应的订单。", "客服会在一个工作日内回复您。", "处理完成前请保留商品原包装。",
             "每一步处理结果都会通过短信通知您。", "企业客户可以联系专属客户经理。", "手机 App 中也可以查看相同信息。",
             "联系客服前请准备好订单号。", "处理时间一般不超过7个工作日。", "详细规则请以结算页面的说明为准。",
             "提供截图可以帮助客服更快处理。"]


def generate(n: int, seed: int = 14) -> list[dict]:
    """``n`` articles, alternately Chinese and English, each about one topic, product, action
    and problem, with a few sentences of body (deterministic for a seed)."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        if i % 2:
            topic, words = rng.choice(ZH_TOPICS)
            product, action, problem = rng.choice(ZH_PRODUCTS), rng.choice(ZH_ACTIONS), rng.choice(ZH_PROBLEMS)
            word = rng.choice(words)
            title = rng.choice([f"{product}{word}{problem}怎么办", f"如何{action}{product}的{word}",
                                f"{word}常见问题：{action}{word}", f"{product} {word}说明"])
            body = (f"如果您的{product}{word}{problem}，可以在帮助中心{action}{word}。"
                    + "".join(rng.sample(ZH_FILLER, 3)) + f"关于{rng.choice(words)}的更多说明请查看{topic}分类。")
            out.append({"locale": "zh-CN", "title": title, "body": body, "labels": [topic]})
        else:
            topic, words = rng.choice(EN_TOPICS)
            product, action, problem = rng.choice(EN_PRODUCTS), rng.choice(EN_ACTIONS), rng.choice(EN_PROBLEMS)
            word = rng.choice(words)
            title = rng.choice([f"My {product} {word} {problem}", f"How to {action} the {word} for your {product}",
                                f"{word.capitalize()} questions: {action} a {word}", f"{product}: {word} guide"])
            body = (f"If the {word} of your {product} {problem}, you can {action} it from the help center. "
                    + " ".join(rng.sample(EN_FILLER, 3)) + f" See the {topic} section about {rng.choice(words)}.")
            out.append({"locale": "en", "title": title, "body": body, "labels": [topic]})
    return out


# ---- loading through the indexer's SQL -----------------------------------------------------------

async def load(url: str, articles: list[dict], *, keys: dict | None = None) -> float:
    """Write ``articles`` as published translations (COPY into the content tables) and their
    search documents (the indexer's upsert, executemany); returns the seconds it took."""
    from sqlalchemy.ext.asyncio import create_async_engine

    from kb_svc.search import repository

    started = time.perf_counter()
    conn = await asyncpg.connect(raw_dsn(url))
    category_id, section_id = uuid.uuid4(), uuid.uuid4()
    now = datetime.now(UTC)
    try:
        await conn.execute("INSERT INTO kb_categories (id, name, locale, position) VALUES ($1, 'Help', 'en', 0)",
                           category_id)
        await conn.execute("INSERT INTO kb_sections (id, category_id, name, locale, position) "
                           "VALUES ($1, $2, 'General', 'en', 0)", section_id, category_id)
        ids = [uuid.uuid4() for _ in articles]
        for start in range(0, len(articles), 20_000):
            chunk = list(zip(ids[start:start + 20_000], articles[start:start + 20_000]))
            await conn.copy_records_to_table("kb_articles", columns=[
                "id", "section_id", "owner_id", "visibility", "labels", "state", "version", "created_by",
                "created_at", "updated_at"], records=[
                (i, section_id, "bench", "public", a["labels"], "active", 1, "bench", now, now) for i, a in chunk])
            await conn.copy_records_to_table("kb_article_translations", columns=[
                "article_id", "locale", "draft_title", "draft_body_html", "draft_updated_by", "draft_updated_at",
                "published_title", "published_body_html", "published_body_text", "published_version",
                "published_at", "published_by", "status"], records=[
                (i, a["locale"], a["title"], f"<p>{a['body']}</p>", "bench", now, a["title"], f"<p>{a['body']}</p>",
                 a["body"], 1, now, "bench", "published") for i, a in chunk])
        if keys is not None:
            keys.update({i: a["slug"] for i, a in zip(ids, articles) if "slug" in a})
    finally:
        await conn.close()
    engine = create_async_engine(url)
    try:
        for start in range(0, len(articles), BATCH):
            params = [document_params(article_id=i, locale=a["locale"], title=a["title"], body_text=a["body"],
                                      labels=a["labels"], visibility="public", section_id=section_id,
                                      category_id=category_id, published_at=now)
                      for i, a in zip(ids[start:start + BATCH], articles[start:start + BATCH])]
            async with engine.begin() as c:
                await c.execute(repository.UPSERT_DOCUMENT, params)
            if start and start % 20_000 == 0:
                log(f"  {start:,} articles indexed ({time.perf_counter() - started:.0f} s)")
        async with engine.begin() as c:
            await repository.rebuild_vocabulary(c)
    finally:
        await engine.dispose()
    conn = await asyncpg.connect(raw_dsn(url))
    try:
        await conn.execute("ANALYZE")
    finally:
        await conn.close()
    return time.perf_counter() - started


# ---- measuring ---------------------------------------------------------------------------------

def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * q / 100
    lo = int(k)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


SUGGESTION_FORMS = [
    {"subject": "退款一直没有到账", "description": "我上周申请了退款，现在还没有收到钱，订单号 A1234。", "language": "zh-CN"},
    {"subject": "Where is my refund?", "description": "I returned the shoes two weeks ago and have no money back yet.",
     "language": "en"},
    {"subject": "快递三天没有更新", "description": "物流信息一直停在转运中心。", "language": "zh-CN"},
    {"subject": "Cannot log in", "description": "The app says my password is wrong after the reset.", "language": "en"},
    {"subject": "发票抬头开错了", "description": "需要把个人发票改成公司抬头。", "language": "zh-CN"},
    {"subject": "Coupon not accepted", "description": "The discount code from the newsletter does not work.",
     "language": "en"},
]


def measure(base_url: str, *, queries: list[str], requests: int, warmup: int, suggestions: bool) -> dict:
    """Sequential requests from one client, search and suggestions interleaved."""
    out = {name: {"ms": [], "statuses": {}, "hits": 0} for name in (["search", "suggestions"] if suggestions
                                                                   else ["search"])}
    with httpx.Client(base_url=base_url, timeout=30) as client:
        for n in range(warmup + requests):
            calls = {"search": lambda: client.get("/v1/kb/search", params={"q": queries[n % len(queries)]})}
            if suggestions:
                calls["suggestions"] = lambda: client.post("/v1/kb/suggestions",
                                                           json=SUGGESTION_FORMS[n % len(SUGGESTION_FORMS)])
            for name, call in calls.items():
                t0 = time.perf_counter()
                r = call()
                ms = (time.perf_counter() - t0) * 1000
                if n < warmup:
                    if n == 0 and r.status_code != 200:
                        out[name]["first_error"] = f"{r.status_code} {r.text[:300]}"
                    continue
                out[name]["ms"].append(ms)
                code = str(r.status_code)
                out[name]["statuses"][code] = out[name]["statuses"].get(code, 0) + 1
                if r.status_code == 200:
                    out[name]["hits"] += len(r.json().get("items", []))
    for m in out.values():
        m["p50_ms"] = round(statistics.median(m["ms"]), 2)
        m["p95_ms"] = round(percentile(m["ms"], 95), 2)
        m["errors"] = sum(n for code, n in m["statuses"].items() if code not in ("200", "201"))
        m["hits_per_request"] = round(m["hits"] / len(m["ms"]), 2)
    return out


def score_relevance(base_url: str, labelled: dict, keys: dict) -> relevance.Scores:
    results = {}
    by_id = {str(k): v for k, v in keys.items()}
    with httpx.Client(base_url=base_url, timeout=30) as client:
        for query in labelled["queries"]:
            r = client.get("/v1/kb/search", params={"q": query["q"], "limit": relevance.K})
            r.raise_for_status()
            results[query["q"]] = [by_id.get(item["id"], "generated") for item in r.json()["items"]]
    return relevance.evaluate(results, {q["q"]: q["relevant"] for q in labelled["queries"]})


# ---- main -------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/kb_scale.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--articles", type=int, default=int(os.environ.get("BENCH_KB_ARTICLES", DEFAULT_ARTICLES)),
                        help="articles to bulk-load (default BENCH_KB_ARTICLES or 100,000; 0 skips)")
    parser.add_argument("--requests", type=int, default=200, help="measured requests per endpoint (default 200)")
    parser.add_argument("--warmup", type=int, default=10, help="unmeasured requests per endpoint first (default 10)")
    parser.add_argument("--keep-data", action="store_true")
    args = parser.parse_args(argv)
    if args.articles <= 0:
        log("kb scale: skipped (0 articles)")
        return 0

    def on_signal(signum, _frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    run_id = f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{os.getpid()}"
    data_dir = ROOT / ".data" / "bench" / f"kb-{run_id}"
    data_dir.mkdir(parents=True, mode=0o755)
    os.chmod(data_dir, 0o755)
    base = free_block(PORT_BLOCK)
    pg_port = free_port_outside(range(base, base + PORT_BLOCK))
    kafka_port = free_port_outside(range(base, base + PORT_BLOCK), {pg_port})
    stack = Stack(StackConfig(data_dir=data_dir, gateway_port=base, service_base_port=base, pg_port=pg_port,
                              kafka_port=kafka_port, extra_env={"LOG_LEVEL": "WARNING"}))
    failed = False
    results: dict = {}
    started = time.monotonic()
    load_before = os.getloadavg()[0]
    labelled = relevance.load_set(SET_PATH)
    queries = [q["q"] for q in labelled["queries"]]
    try:
        log(f"starting PostgreSQL and kb-svc alone (data {data_dir.relative_to(ROOT)}) ...")
        assert stack.pg is not None
        stack.pg.start()
        url = stack.database_url("kb-svc")
        asyncio.run(ensure_database(url))
        upgrade("kb_svc", url)
        # the bench is one client address asking hundreds of suggestions: the per-address limit
        # (1/s by default) is raised so the route's own cost is measured, not the limiter
        stack.start_service("kb-svc", {"KB_CONSUMERS_ENABLED": "false", "KB_RELAY_ENABLED": "false",
                                       "KB_SUGGESTIONS_RATE_PER_SECOND": "100000",
                                       "KB_SUGGESTIONS_BURST": "100000"})
        stack.wait_service("kb-svc")
        service_url = stack.url_of("kb-svc")
        log(f"empty knowledge base: {args.requests} requests per endpoint ...")
        empty = measure(service_url, queries=queries, requests=args.requests, warmup=args.warmup,
                        suggestions=True)
        keys: dict = {}
        asyncio.run(load(url, labelled["articles"], keys=keys))
        small = score_relevance(service_url, labelled, keys)
        log(f"relevance on the labelled set alone: {small.line()}")
        log(f"generating {args.articles:,} articles ...")
        generated = generate(args.articles)
        log(f"loading {args.articles:,} articles through the indexer's SQL ...")
        load_s = asyncio.run(load(url, generated))
        log(f"loaded in {load_s:.0f} s")
        big = score_relevance(service_url, labelled, keys)
        log(f"relevance among {args.articles:,} generated articles: {big.line()}")
        log(f"loaded knowledge base: {args.requests} requests per endpoint ...")
        loaded = measure(service_url, queries=queries, requests=args.requests, warmup=args.warmup,
                         suggestions=True)
        sizes = asyncio.run(table_sizes(raw_dsn(url)))
        results = {
            "kb_scale_articles": args.articles,
            "kb_scale_load_s": round(load_s, 1),
            "kb_scale_requests": args.requests,
            "kb_scale_goal_p95_ms": GOAL_P95_MS,
            "kb_scale_loadavg": f"{load_before:.1f} -> {os.getloadavg()[0]:.1f}",
            "kb_scale_relevance_queries": small.queries,
            "kb_scale_relevance_p_at_5": round(small.precision_at_k, 3),
            "kb_scale_relevance_p_at_5_achievable": round(small.achievable_precision_at_k, 3),
            "kb_scale_relevance_p_at_5_ratio": round(small.precision_ratio, 3),
            "kb_scale_relevance_recall_at_5": round(small.recall_at_k, 3),
            "kb_scale_relevance_mrr": round(small.mrr, 3),
            "kb_scale_relevance_loaded_p_at_5_ratio": round(big.precision_ratio, 3),
            "kb_scale_relevance_loaded_recall_at_5": round(big.recall_at_k, 3),
            "kb_scale_relevance_loaded_mrr": round(big.mrr, 3),
            "kb_scale_relevance_loaded_misses": ", ".join(big.misses),
        }
        results.update({f"kb_scale_{t}_{k}": v for t, s in sizes.items() for k, v in s.items()})
        for name in empty:
            e, lo = empty[name], loaded[name]
            for label, m in (("empty", e), ("loaded", lo)):
                results[f"kb_scale_{name}_p50_ms_{label}"] = m["p50_ms"]
                results[f"kb_scale_{name}_p95_ms_{label}"] = m["p95_ms"]
                results[f"kb_scale_{name}_hits_per_request_{label}"] = m["hits_per_request"]
            results[f"kb_scale_{name}_errors"] = e["errors"] + lo["errors"]
            if lo.get("first_error") or e.get("first_error"):
                results[f"kb_scale_{name}_first_error"] = lo.get("first_error") or e.get("first_error")
    except BaseException as exc:  # noqa: BLE001 - report, clean up, exit non-zero
        failed = True
        print(f"kb scale bench failed: {exc!r}", file=sys.stderr)
    finally:
        stack.stop_all()
        if failed:
            remove_data_dir(data_dir, keep_logs=True)
        elif not args.keep_data:
            remove_data_dir(data_dir)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if failed:
        return 1
    results["kb_scale_run_s"] = round(time.monotonic() - started)
    RESULTS.mkdir(parents=True, exist_ok=True)
    latest = RESULTS / "latest.json"
    merged = json.loads(latest.read_text()) if latest.exists() else {}
    merged.update(results)
    latest.write_text(json.dumps(merged, indent=2, ensure_ascii=False) + "\n")
    names = [n for n in ("search", "suggestions") if f"kb_scale_{n}_errors" in results]
    print_table(results, names)
    errors = sum(results[f"kb_scale_{n}_errors"] for n in names)
    return 0 if not errors and results["kb_scale_search_p95_ms_loaded"] <= GOAL_P95_MS else 3


async def table_sizes(dsn: str) -> dict[str, dict]:
    conn = await asyncpg.connect(dsn)
    try:
        out = {}
        for table in ("kb_search_documents", "kb_search_vocabulary"):
            rows = await conn.fetchval(f"SELECT count(*) FROM {table}")
            mb = await conn.fetchval(f"SELECT round(pg_total_relation_size('{table}') / 1048576.0, 1)")
            out[table] = {"rows": rows, "mb": float(mb)}
        return out
    finally:
        await conn.close()


def print_table(r: dict, names: list[str]) -> None:
    print(f"\nknowledge base at scale ({r['kb_scale_articles']:,} articles, half Chinese, vs empty; "
          f"{r['kb_scale_requests']} sequential requests each, anonymous; load {r['kb_scale_load_s']:.0f} s)")
    print(f"{'request':<14}{'p50 empty':>10}{'p95 empty':>10}{'p50 loaded':>11}{'p95 loaded':>11}{'hits/req':>9}")
    for name in names:
        k = f"kb_scale_{name}"
        flag = f"  !! {r[f'{k}_errors']} errors" if r[f"{k}_errors"] else ""
        print(f"{name:<14}{r[f'{k}_p50_ms_empty']:>10.1f}{r[f'{k}_p95_ms_empty']:>10.1f}"
              f"{r[f'{k}_p50_ms_loaded']:>11.1f}{r[f'{k}_p95_ms_loaded']:>11.1f}"
              f"{r[f'{k}_hits_per_request_loaded']:>9.2f}{flag}")
    print(f"relevance ({r['kb_scale_relevance_queries']} labelled queries): P@5 {r['kb_scale_relevance_p_at_5']:.3f} "
          f"of {r['kb_scale_relevance_p_at_5_achievable']:.3f} achievable (ratio "
          f"{r['kb_scale_relevance_p_at_5_ratio']:.3f}), R@5 {r['kb_scale_relevance_recall_at_5']:.3f}, "
          f"MRR {r['kb_scale_relevance_mrr']:.3f}; among the generated articles: ratio "
          f"{r['kb_scale_relevance_loaded_p_at_5_ratio']:.3f}, MRR {r['kb_scale_relevance_loaded_mrr']:.3f}")
    print(f"index: {r['kb_scale_kb_search_documents_rows']:,} documents / {r['kb_scale_kb_search_documents_mb']} MB, "
          f"vocabulary {r['kb_scale_kb_search_vocabulary_rows']:,} words")
    print(f"machine load average (before -> after): {r['kb_scale_loadavg']}")


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
