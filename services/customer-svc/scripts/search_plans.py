"""Query plans of customer search at N customers (default 1,000,000), for docs/customers.md "Search".

Not a benchmark (no load, one client): it starts a throwaway embedded PostgreSQL, migrates
customer-svc's schema, loads N synthetic customers (80 % Chinese names, 1.5 identities each, tags,
attributes, 30 % in one of 1,000 organisations), then prints EXPLAIN ANALYZE and the median of five
runs of each search the API makes. ``.venv/bin/python services/customer-svc/scripts/search_plans.py``
(about 3 minutes and 2 GB of disk at 1,000,000).
"""

import asyncio
import random
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg

from helpdesk_common.devstack import EmbeddedPostgres, free_port
from helpdesk_common.migrate import ensure_database, upgrade

from customer_svc.customers import repository, search
from customer_svc.customers.service import identity_candidates

N = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华玉萍红娥玲芬燕彩春菊兰凤洁梅琳素云莲真环雪荣爱妹霞香月莺媛艳瑞凡佳嘉琼勤珍贞莉桂娣叶璧璐娅琦晶妍茜秋珊莎锦黛青倩婷姣婉娴瑾颖露瑶怡婵雁蓓纨仪荷丹蓉眉君琴蕊薇菁梦岚苑婕馨瑗琰韵融园艺咏卿聪澜纯毓悦昭冰爽琬茗羽希宁欣飘育滢馥筠柔竹霭凝晓欢霄枫芸菲寒伊亚宜可姬舒影荔枝思丽"
FIRST = ["James", "Mary", "John", "Patricia", "Robert", "Jennifer", "Michael", "Linda", "William", "Elizabeth",
         "David", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah", "Charles", "Karen"]
LAST = ["Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez",
        "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson", "Martin"]


def name_of(rng: random.Random) -> str:
    if rng.random() < 0.8:
        return rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2))))
    return f"{rng.choice(FIRST)} {rng.choice(LAST)}"


async def load(conn: asyncpg.Connection) -> None:
    rng = random.Random(11)
    orgs = [uuid.UUID(int=i + 1) for i in range(1000)]
    await conn.executemany("INSERT INTO organizations (id, name, name_key) VALUES ($1, $2, $2)",
                           [(o, f"org {i}") for i, o in enumerate(orgs)])
    await conn.execute("CREATE UNLOGGED TABLE stage (id uuid, name text, search text, tier text, organization_id uuid,"
                       " tags text[], attributes text, created_at timestamptz)")
    start = datetime(2024, 1, 1, tzinfo=UTC)
    batch, idents = [], []
    t0 = time.monotonic()
    for i in range(N):
        cid = uuid.uuid4()
        name = name_of(rng)
        tier = rng.choice(("vip", "gold", None, None, None, None))
        org = rng.choice(orgs) if rng.random() < 0.3 else None
        tags = rng.sample(["renewal", "重要", "churn", "trial", "enterprise", "smb", "渠道", "代理"], rng.randint(0, 2))
        attrs = ('{"plan": "%s", "seats": %d}' % (rng.choice(("basic", "pro", "enterprise")), rng.randint(1, 500))
                 if rng.random() < 0.5 else "{}")
        batch.append((cid, name, search.document(name), tier, org, tags, attrs,
                      start + timedelta(seconds=i * 60)))
        idents.append(("email", f"user{i}@example{i % 5000}.com", cid))
        if i % 2 == 0:
            idents.append(("phone", f"+86139{i:08d}", cid))
        if i % 3 == 0:
            idents.append(("wechat_openid", f"o{uuid.uuid4().hex[:27]}", cid))
        if len(batch) >= 50_000:
            await conn.copy_records_to_table("stage", records=batch)
            await conn.copy_records_to_table("customer_identities", records=idents, columns=["kind", "value", "customer_id"])
            batch, idents = [], []
            print(f"  {i + 1} rows, {time.monotonic() - t0:.0f} s", flush=True)
    if batch:
        await conn.copy_records_to_table("stage", records=batch)
        await conn.copy_records_to_table("customer_identities", records=idents, columns=["kind", "value", "customer_id"])
    await conn.execute(
        "INSERT INTO customers (id, name, search, tier, organization_id, tags, attributes, created_at, updated_at) "
        "SELECT id, name, search::tsvector, tier, organization_id, tags, attributes::jsonb, created_at, created_at "
        "FROM stage")
    await conn.execute("DROP TABLE stage")
    await conn.execute("VACUUM ANALYZE customers")
    await conn.execute("VACUUM ANALYZE customer_identities")
    print(f"loaded {N} customers in {time.monotonic() - t0:.0f} s", flush=True)


class Recorder:
    def __init__(self) -> None:
        self.sql = ""
        self.args: tuple = ()

    async def fetch(self, sql: str, *args):
        self.sql, self.args = sql, args
        return []


CASES = [
    ("list, newest first", {}),
    ("q = two-character Chinese name 张伟", {"name_query": search.tsquery("张伟"), "identity_values": identity_candidates("张伟")}),
    ("q = one common surname 王", {"name_query": search.tsquery("王"), "identity_values": identity_candidates("王")}),
    ("q = English prefix 'john sm'", {"name_query": search.tsquery("john sm"), "identity_values": identity_candidates("john sm")}),
    ("q = an e-mail address", {"name_query": search.tsquery("user4242@example4242.com"),
                               "identity_values": identity_candidates("user4242@example4242.com")}),
    ("q = a phone number", {"name_query": search.tsquery("139 0000 4242"), "identity_values": identity_candidates("139 0000 4242")}),
    ("email filter", {"identities": [("email", "user77@example77.com")]}),
    ("organization_id", {"organization_id": uuid.UUID(int=5)}),
    ("tier = vip", {"tier": "vip"}),
    ("tag = 重要", {"tags": ["重要"]}),
    ("attr.plan = enterprise", {"attributes": [{"plan": "enterprise"}]}),
    ("attr.seats = 77", {"attributes": [{"seats": 77}]}),
    ("tag = a tag nobody has", {"tags": ["nobody"]}),
    ("attr.seats = a value nobody has", {"attributes": [{"seats": 100000}]}),
    ("q = a name nobody has 龘龘", {"name_query": search.tsquery("龘龘"), "identity_values": identity_candidates("龘龘")}),
    ("q = 张伟 and tier = vip", {"name_query": search.tsquery("张伟"), "identity_values": identity_candidates("张伟"), "tier": "vip"}),
]


async def plans(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec("jsonb", schema="pg_catalog", encoder=lambda v: __import__("orjson").dumps(v).decode(),
                              decoder=lambda v: v, format="text")
    for title, params in CASES:
        rec = Recorder()
        await repository.search(rec, limit=26, after=None, identities=params.pop("identities", []), **params)
        rows = await conn.fetch("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + rec.sql, *rec.args)
        text = "\n".join(r[0] for r in rows)
        timings = [await timed(conn, rec) for _ in range(5)]
        print(f"\n### {title}: median {sorted(timings)[2]:.1f} ms (5 runs)\n{text}", flush=True)


async def timed(conn, rec) -> float:
    t = time.perf_counter()
    await conn.fetch(rec.sql, *rec.args)
    return (time.perf_counter() - t) * 1000


async def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="customer-plans-"))
    pg = EmbeddedPostgres(root / "data", free_port(), root / "pg.log", ephemeral=True)
    pg.start()
    try:
        url = pg.url + "/plans"
        await ensure_database(url)
        await asyncio.to_thread(upgrade, "customer_svc", url)
        conn = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
        await load(conn)
        await plans(conn)
        await conn.close()
    finally:
        pg.stop()


asyncio.run(main())
