"""Query plans of duplicate suggestions at N customers (default 1,000,000), for docs/customers.md
"Duplicates".

Not a benchmark (no load, one client): it starts a throwaway embedded PostgreSQL, migrates
customer-svc's schema, loads N synthetic customers (80 % Chinese names from a small pool, so
namesakes abound; 30 % in one of 1,000 organisations; e-mail local parts drawn from N/5, so
most are shared; phones E.164 with 1 % of them also held by another customer under a legacy key
without the country code; 1 in 1,000 with a unionid another holds as ``external:wechat``), then
prints EXPLAIN ANALYZE and the median of five runs of one customer's candidates and of the first
page of each reason across the base. ``.venv/bin/python services/customer-svc/scripts/duplicate_plans.py``
"""

import asyncio
import random
import sys
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg

from helpdesk_common.devstack import EmbeddedPostgres, free_port
from helpdesk_common.migrate import ensure_database, upgrade

from customer_svc.duplicates import repository
from customer_svc.duplicates.service import GROUP_MEMBERS

N = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁"
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚桂华玉萍红娥玲芬燕彩春菊凤洁梅琳素云莲真环雪荣爱"
FIRST = ["James", "Mary", "John", "Patricia", "Robert", "Jennifer", "Michael", "Linda", "William", "Elizabeth"]
LAST = ["Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Wilson", "Moore"]


def name_of(rng: random.Random) -> str:
    if rng.random() < 0.8:
        return rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2))))
    return f"{rng.choice(FIRST)} {rng.choice(LAST)}"


async def load(conn: asyncpg.Connection) -> list[uuid.UUID]:
    rng = random.Random(7)
    orgs = [uuid.UUID(int=i + 1) for i in range(1000)]
    await conn.executemany("INSERT INTO organizations (id, name, name_key) VALUES ($1, $2, $2)",
                           [(o, f"org {i}") for i, o in enumerate(orgs)])
    ids, customers, idents = [], [], []
    t0 = time.monotonic()
    for i in range(N):
        cid = uuid.uuid4()
        ids.append(cid)
        customers.append((cid, name_of(rng), rng.choice(orgs) if rng.random() < 0.3 else None))
        idents.append(("email", f"user{rng.randrange(N // 5)}@example{i}.com", cid))
        if i % 2 == 0:
            idents.append(("phone", f"+86139{i:08d}", cid))
            if i % 200 == 0 and i:  # 1 % of phones: another customer holds the legacy key
                idents.append(("phone", f"139{i:08d}", ids[i - 1]))
        if i % 1000 == 0 and i:
            idents.append(("wechat_unionid", f"oU{i}", cid))
            idents.append(("external:wechat", f"oU{i}", ids[i - 1]))
        if len(customers) >= 50_000:
            await flush(conn, customers, idents)
            customers, idents = [], []
            print(f"  {i + 1} rows, {time.monotonic() - t0:.0f} s", flush=True)
    await flush(conn, customers, idents)
    await conn.execute("VACUUM ANALYZE customers")
    await conn.execute("VACUUM ANALYZE customer_identities")
    print(f"loaded {N} customers in {time.monotonic() - t0:.0f} s", flush=True)
    return ids


async def flush(conn, customers, idents) -> None:
    if customers:
        await conn.copy_records_to_table("customers", records=customers, columns=["id", "name", "organization_id"])
        await conn.copy_records_to_table("customer_identities", records=idents, columns=["kind", "value", "customer_id"])


async def show(conn, title: str, sql: str, *args) -> None:
    rows = await conn.fetch("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + sql, *args)
    timings = []
    for _ in range(5):
        t = time.perf_counter()
        found = await conn.fetch(sql, *args)
        timings.append((time.perf_counter() - t) * 1000)
    plan = "\n".join(r[0] for r in rows)
    print(f"\n### {title}: median {sorted(timings)[2]:.1f} ms (5 runs), {len(found)} rows\n{plan}", flush=True)


async def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="duplicate-plans-"))
    pg = EmbeddedPostgres(root / "data", free_port(), root / "pg.log", ephemeral=True)
    pg.start()
    try:
        url = pg.url + "/plans"
        await ensure_database(url)
        await asyncio.to_thread(upgrade, "customer_svc", url)
        conn = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
        ids = await load(conn)
        for title, cid in (("candidates of a customer with a phone held twice", ids[N // 2 - (N // 2) % 200 - 1]),
                           ("candidates of a customer with a unionid", ids[(N // 2) - (N // 2) % 1000]),
                           ("candidates of an ordinary customer", ids[N // 3 + 1])):
            await show(conn, title, repository._OF_CUSTOMER, cid, 50)
        for reason in repository._GROUPS:
            key = "00000000-0000-0000-0000-000000000000" if reason == "same_name_and_organization" else ""
            args = (key, GROUP_MEMBERS, 25) if reason in repository._ONE_KEY else (key, "", GROUP_MEMBERS, 25)
            await show(conn, f"first 25 groups: {reason}", repository._GROUPS[reason], *args)
        await conn.close()
    finally:
        pg.stop()


asyncio.run(main())
