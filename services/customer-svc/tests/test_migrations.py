"""Migrations 0004 and 0005 over data written before them: names become searchable, phones and
requester external ids get their new keys, and each re-keyed identity is announced."""

import asyncio
import uuid
from concurrent.futures import ThreadPoolExecutor

from alembic import command
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from helpdesk_common import events
from helpdesk_common.migrate import alembic_config, ensure_database

A, B, C, D = (uuid.UUID(int=i) for i in (1, 2, 3, 4))
LEGACY = [  # (kind, value, customer) as the service stored them before 0005
    ("phone", "13800138000", A),
    ("phone", "+8613800138000", B),  # the same number, another customer: both keep their keys
    ("phone", "13900000000", C),
    ("phone", "+8613900000000", C),  # the same number twice for one customer: one row stays
    ("phone", "+1 555 0100", D),
    ("external_id", "dingtalk:staff-1", A),
    ("external_id", "wecom:wm1", B),
    ("external_id", "chat:v-9", C),
    ("external_id", "CRM-42", D),
    ("email", "a@example.com", A),
]


def migrate(url: str, revision: str) -> None:
    def run() -> None:
        asyncio.run(ensure_database(url))
        command.upgrade(alembic_config("customer_svc", url), revision)

    with ThreadPoolExecutor(1) as pool:
        pool.submit(run).result()


async def test_upgrade_over_existing_customers(infra, monkeypatch):
    monkeypatch.setenv("PHONE_DEFAULT_REGION", "CN")
    url = f"{infra.db_base}/t_customer_migrations_{uuid.uuid4().hex[:8]}"
    migrate(url, "0003")
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            for cid, name in ((A, "张三丰"), (B, "John Smith"), (C, None), (D, "李四")):
                await conn.execute(text("INSERT INTO customers (id, name) VALUES (:i, :n)"), {"i": cid, "n": name})
            for kind, value, cid in LEGACY:
                await conn.execute(text("INSERT INTO customer_identities (kind, value, customer_id) VALUES (:k, :v, :c)"),
                                   {"k": kind, "v": value, "c": cid})
        migrate(url, "head")
        async with engine.connect() as conn:
            rows = set((await conn.execute(text("SELECT kind, value, customer_id FROM customer_identities"))).all())
            announced = [events.decode(r.payload) for r in (await conn.execute(text(
                "SELECT payload FROM outbox WHERE event_type = 'customer.identity_added' ORDER BY seq"))).all()]
            named = (await conn.execute(text(
                "SELECT id FROM customers WHERE search @@ CAST(:q AS tsquery) ORDER BY id"), {"q": "'三丰'"})).all()
            english = (await conn.execute(text(
                "SELECT id FROM customers WHERE search @@ CAST(:q AS tsquery)"), {"q": "'smi':*"})).all()
    finally:
        await engine.dispose()
    assert rows == {
        ("phone", "+8613800138000", B),  # B had the E.164 key already
        ("phone", "13800138000", A),  # A keeps its old key: a duplicate pair for a supervisor
        ("phone", "+8613900000000", C),
        ("phone", "+15550100", D),
        ("dingtalk_userid", "staff-1", A),
        ("wecom_external_userid", "wm1", B),
        ("external:chat", "v-9", C),
        ("external:api", "CRM-42", D),
        ("email", "a@example.com", A),
    }
    assert {(e.data.customer_id, e.data.identity.kind, e.data.identity.value) for e in announced} == {
        (A, "dingtalk_userid", "staff-1"), (B, "wecom_external_userid", "wm1"), (C, "external:chat", "v-9"),
        (D, "external:api", "CRM-42"), (D, "phone", "+15550100")}
    assert all(e.subject == str(e.data.customer_id) for e in announced)
    assert [r.id for r in named] == [A] and [r.id for r in english] == [B]
