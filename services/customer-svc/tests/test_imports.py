"""Imports on the real database: a GBK CSV with Chinese headers and an xlsx of orders, each with
bad rows the report names exactly (row and column, also as errors.csv); a second import of the
same file writes nothing and emits nothing; mappings; whole-file failures; progress; and a
10,000-row workbook with 50 bad rows."""

import asyncio
import csv
import io
import time
from datetime import datetime

import openpyxl
from sqlalchemy import text

from helpdesk_common.identity import Principal
from helpdesk_common.testing import identity_headers

SUPERVISOR = identity_headers(Principal(kind="user", id="u3", role="supervisor"))
AGENT = identity_headers(Principal(kind="user", id="u2", role="agent"))


def xlsx(rows: list[list]) -> bytes:
    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet()
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def csv_bytes(rows: list[list], encoding: str) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    return out.getvalue().encode(encoding)


async def upload(api, content: bytes, name: str, kind: str, **form) -> str:
    r = await api.post("/v1/imports", files={"file": (name, content)}, data={"kind": kind, **form}, headers=SUPERVISOR)
    assert r.status_code == 202, r.text
    return r.json()["id"]


async def finished(api, import_id: str, timeout: float = 120.0, seen: list | None = None) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = (await api.get(f"/v1/imports/{import_id}", headers=SUPERVISOR)).json()
        if seen is not None:
            seen.append((job["status"], job["rows_processed"], job["rows_total"]))
        if job["status"] in ("completed", "failed"):
            return job
        await asyncio.sleep(0.05)
    raise AssertionError(f"import {import_id} did not finish: {job}")


async def count(db, sql: str) -> int:
    async with db.connect() as conn:
        return (await conn.execute(text(sql))).scalar()


CUSTOMERS_GBK = [
    ["编号", "姓名", "邮箱", "手机", "等级", "备注"],
    ["C1", "张三", "zhang@acme.cn", "13800138000", "VIP", "ignored"],
    ["C2", "李四", "not-an-email", "", "gold", ""],
    ["", "王五", "w@x.cn", "", "", ""],
    ["C4", "赵六", "", "12", "", ""],
    ["C5", "钱七", "q@x.cn", "", "", ""],
    ["", "", "", "", "", ""],
    ["C6", "孙八", "zhang@acme.cn", "", "", ""],
]


async def test_gbk_csv_with_chinese_headers_then_the_same_file_again(api, db):
    content = csv_bytes(CUSTOMERS_GBK, "gbk")
    job = await finished(api, await upload(api, content, "客户.csv", "customers"))
    assert job["status"] == "completed", job
    assert (job["rows_total"], job["rows_ok"], job["rows_failed"], job["rows_processed"]) == (6, 2, 4, 6)
    assert [(e["row"], e["column"]) for e in job["errors"]] == [(3, "邮箱"), (4, "编号"), (5, "手机"), (8, "邮箱")]
    assert "belongs to another customer" in job["errors"][3]["message"]
    found = (await api.get("/v1/customers", params={"q": "张三"}, headers=SUPERVISOR)).json()["items"]
    assert len(found) == 1 and found[0]["tier"] == "vip"
    assert {(i["kind"], i["value"]) for i in found[0]["identities"]} == {
        ("external:api", "C1"), ("email", "zhang@acme.cn"), ("phone", "+8613800138000")}

    report = await api.get(f"/v1/imports/{job['id']}/errors.csv", headers=SUPERVISOR)
    assert report.status_code == 200 and report.headers["content-type"].startswith("text/csv")
    lines = list(csv.reader(io.StringIO(report.content.decode("utf-8-sig"))))
    assert lines[0] == ["row", "column", "message"] and [(r[0], r[1]) for r in lines[1:]] == [
        ("3", "邮箱"), ("4", "编号"), ("5", "手机"), ("8", "邮箱")]

    customers, events, versions = (await count(db, "SELECT count(*) FROM customers"),
                                   await count(db, "SELECT count(*) FROM outbox"),
                                   await count(db, "SELECT sum(version) FROM customers"))
    again = await finished(api, await upload(api, content, "客户.csv", "customers"))
    assert (again["status"], again["rows_ok"], again["rows_failed"]) == ("completed", 2, 4)
    assert [(e["row"], e["column"]) for e in again["errors"]] == [(3, "邮箱"), (4, "编号"), (5, "手机"), (8, "邮箱")]
    assert await count(db, "SELECT count(*) FROM customers") == customers
    assert await count(db, "SELECT count(*) FROM outbox") == events
    assert await count(db, "SELECT sum(version) FROM customers") == versions

    # UTF-8 with a BOM; a changed tier and a new phone update the customer (one customer.updated)
    changed = csv_bytes([CUSTOMERS_GBK[0], ["C1", "张三", "", "13900139000", "Gold", ""]], "utf-8-sig")
    job = await finished(api, await upload(api, changed, "c.csv", "customers"))
    assert (job["rows_ok"], job["rows_failed"]) == (1, 0), job
    assert await count(db, "SELECT count(*) FROM customers") == customers
    assert await count(db, "SELECT count(*) FROM outbox WHERE event_type = 'customer.updated'") >= 1
    found = (await api.get("/v1/customers", params={"q": "张三"}, headers=SUPERVISOR)).json()["items"][0]
    assert found["tier"] == "gold" and ("phone", "+8613900139000") in {(i["kind"], i["value"])
                                                                      for i in found["identities"]}


async def test_xlsx_orders_with_bad_rows(api, db):
    for external_id in ("C1", "C2"):
        r = await api.post("/v1/customers", json={"identities": [{"kind": "external:shop", "value": external_id}]},
                           headers=SUPERVISOR)
        assert r.status_code == 201
    rows = [
        ["订单号", "客户编号", "下单时间", "金额", "币种", "状态"],
        ["SO-1", "C1", datetime(2026, 11, 1, 10, 0), 12.5, "CNY", "paid"],
        ["SO-2", "C2", "2026-11-02T09:00:00+00:00", "1200", "jpy", "completed"],
        ["SO-3", "C9", "2026-11-02", "1", "CNY", "paid"],
        ["SO-4", "C1", "2026-11-03", "1.005", "CNY", "paid"],
        ["SO-5", "C1", "2026-11-03", "1", "RMB", "paid"],
        ["SO-6", "C1", "soon", "1", "CNY", "paid"],
        ["SO-7", "C1", "2026-11-04 08:30", "99", "USD", None],
        ["SO-8", "C1", "2026-11-04", "9", "CNY", "lost"],
    ]
    content = xlsx(rows)
    job = await finished(api, await upload(api, content, "orders.xlsx", "orders", source="shop",
                                           time_zone="Asia/Shanghai"))
    assert job["status"] == "completed", job
    assert (job["rows_total"], job["rows_ok"], job["rows_failed"]) == (8, 3, 5)
    assert [(e["row"], e["column"]) for e in job["errors"]] == [
        (4, "客户编号"), (5, "金额"), (6, "币种"), (7, "下单时间"), (9, "状态")]
    async with db.connect() as conn:
        stored = (await conn.execute(text(
            "SELECT external_id, amount::text, currency, status, ordered_at FROM orders ORDER BY external_id"))).all()
    assert [(r[0], r[1], r[2], r[3]) for r in stored] == [
        ("SO-1", "12.500", "CNY", "paid"), ("SO-2", "1200.000", "JPY", "completed"), ("SO-7", "99.000", "USD", "pending")]
    assert stored[0][4].isoformat() == "2026-11-01T02:00:00+00:00"  # 10:00 in Shanghai

    events = await count(db, "SELECT count(*) FROM outbox")
    again = await finished(api, await upload(api, content, "orders.xlsx", "orders", source="shop",
                                             time_zone="Asia/Shanghai"))
    assert (again["rows_ok"], again["rows_failed"]) == (3, 5)
    assert await count(db, "SELECT count(*) FROM orders") == 3
    assert await count(db, "SELECT count(*) FROM outbox") == events

    rows[1][5] = "refunded"
    job = await finished(api, await upload(api, xlsx(rows[:2]), "o.xlsx", "orders", source="shop",
                                           time_zone="Asia/Shanghai"))
    assert job["rows_ok"] == 1
    assert await count(db, "SELECT count(*) FROM outbox WHERE event_type = 'order.updated'") == 1


async def test_mappings_organizations_and_whole_file_failures(api, db):
    content = csv_bytes([["Company", "Mail domains", "Level"], ["Acme", "acme.cn, acme.com", "Gold"],
                         ["Webmail Inc", "qq.com", ""]], "utf-8")
    mapping = '{"Company": "name", "Mail domains": "domains", "Level": "tier"}'
    job = await finished(api, await upload(api, content, "orgs.csv", "organizations", mapping=mapping))
    assert (job["status"], job["rows_ok"], job["rows_failed"]) == ("completed", 1, 1), job
    assert [(e["row"], e["column"]) for e in job["errors"]] == [(3, "Mail domains")]
    org = (await api.get("/v1/organizations", params={"name": "acme"}, headers=AGENT)).json()["items"][0]
    assert (org["domains"], org["tier"]) == (["acme.cn", "acme.com"], "gold")

    # customers of that organisation by name
    customers = csv_bytes([["external_id", "name", "organization"], ["K1", "Ann", "ACME"], ["K2", "Bo", "Nope"]],
                          "utf-8")
    job = await finished(api, await upload(api, customers, "c.csv", "customers"))
    assert (job["rows_ok"], [(e["row"], e["column"]) for e in job["errors"]]) == (1, [(3, "organization")])

    bad_mapping = await api.post("/v1/imports", files={"file": ("x.csv", content)},
                                 data={"kind": "organizations", "mapping": '{"Company": "password"}'},
                                 headers=SUPERVISOR)
    assert bad_mapping.status_code == 422 and bad_mapping.json()["errors"][0]["field"] == "body.mapping"
    nul_key = await api.post("/v1/imports", files={"file": ("x.csv", content)},
                             data={"kind": "organizations", "mapping": '{"Com\\u0000pany": "name"}'}, headers=SUPERVISOR)
    assert nul_key.status_code == 422, nul_key.text
    for zone in ("Mars/Olympus", "../../etc/passwd"):
        r = await api.post("/v1/imports", files={"file": ("x.csv", content)},
                           data={"kind": "organizations", "time_zone": zone}, headers=SUPERVISOR)
        assert r.status_code == 422, (zone, r.text)
    assert (await api.post("/v1/imports", files={"file": ("x.csv", content)}, data={"kind": "tickets"},
                           headers=SUPERVISOR)).status_code == 422
    assert (await api.post("/v1/imports", files={"file": ("x.csv", b"")}, data={"kind": "orders"},
                           headers=SUPERVISOR)).status_code == 422
    assert (await api.post("/v1/imports", files={"file": ("x.csv", content)}, data={"kind": "orders"},
                           headers=AGENT)).status_code == 403
    no_column = await finished(api, await upload(api, csv_bytes([["na\x00me"], ["x"]], "utf-8"), "c\x01.csv",
                                                 "customers"))
    assert no_column["status"] == "failed" and "external_id" in no_column["failure"]
    not_xlsx = await finished(api, await upload(api, b"PK\x03\x04garbage", "x.xlsx", "customers"))
    assert not_xlsx["status"] == "failed" and "xlsx" in not_xlsx["failure"]
    assert await count(db, "SELECT count(*) FROM imports WHERE content IS NOT NULL") == 0  # files dropped at the end


async def test_ten_thousand_rows_with_fifty_bad_ones(api, db):
    """The e2e-sized case: progress shows while it runs, the report names exactly the bad rows,
    and the same workbook again changes nothing."""
    bad = set(range(100, 10_000, 199))  # 50 data rows
    assert len(bad) == 50
    rows: list[list] = [["external_id", "name", "email", "phone", "tier"]]
    for n in range(10_000):
        rows.append([f"X{n}", f"客户{n}", f"c{n}@example.com" if n not in bad else f"c{n}-at-example.com",
                     f"+86138{n:08d}", "vip" if n % 3 == 0 else None])
    content = xlsx(rows)
    seen: list = []
    started = time.monotonic()
    job = await finished(api, await upload(api, content, "big.xlsx", "customers"), timeout=180, seen=seen)
    first_run = time.monotonic() - started
    assert job["status"] == "completed", job
    assert (job["rows_total"], job["rows_ok"], job["rows_failed"]) == (10_000, 9_950, 50)
    assert [(e["row"], e["column"]) for e in job["errors"]] == [(n + 2, "email") for n in sorted(bad)]
    assert any(status == "running" and 0 < done < 10_000 for status, done, _ in seen), seen[:5]
    assert await count(db, "SELECT count(*) FROM customers") == 9_950

    events = await count(db, "SELECT count(*) FROM outbox")
    again = await finished(api, await upload(api, content, "big.xlsx", "customers"), timeout=180)
    assert (again["rows_ok"], again["rows_failed"]) == (9_950, 50)
    assert await count(db, "SELECT count(*) FROM customers") == 9_950
    assert await count(db, "SELECT count(*) FROM outbox") == events
    print(f"10,000 rows: first import {first_run:.1f} s")


async def test_a_job_whose_replica_stopped_is_resumed_after_its_last_batch(api, db):
    """As after a restart: the job is 'running', its lease ran out, two rows were committed."""
    import uuid

    content = csv_bytes([["external_id", "name"], ["R1", "a"], ["R2", "b"], ["R3", "c"], ["R4", "d"]], "utf-8")
    import_id = uuid.uuid4()
    async with db.begin() as conn:
        await conn.execute(text(
            "INSERT INTO imports (id, kind, status, source, time_zone, format, content, rows_total, rows_done, "
            "rows_ok, created_by, created_by_role, lease_until, started_at) VALUES (:id, 'customers', 'running', "
            "'api', 'UTC', 'csv', :content, 4, 2, 2, 'user:u3', 'supervisor', now() - interval '1 minute', now())"),
            {"id": import_id, "content": content})
    job = await finished(api, str(import_id), timeout=30)
    assert (job["status"], job["rows_ok"], job["rows_failed"], job["rows_total"]) == ("completed", 4, 0, 4)
    from customer_svc.pii.codec import codec

    async with db.connect() as conn:
        stored = (await conn.execute(text("SELECT value, value_enc FROM customer_identities"))).mappings().all()
    assert sorted(codec().identity_value(r) for r in stored) == ["R3", "R4"]  # rows 2 and 3 were done before the stop


async def test_uploads_get_the_intake_body_limit_and_nothing_else_does(api):
    """A 2 MiB spreadsheet passes MAX_BODY_BYTES (1 MiB): multipart POSTs to /v1/imports get the
    intake limit; a JSON body of the same size elsewhere is still a 413."""
    padding = b"".join(b"x%06d,y\r\n" % n for n in range(200_000))  # ~2 MiB, no external_id column
    content = b"name,other\r\n" + padding
    assert len(content) > 2 * 1024 * 1024
    job = await finished(api, await upload(api, content, "big.csv", "customers"))
    assert job["status"] == "failed" and "external_id" in job["failure"]
    r = await api.post("/v1/orders", content=b'{"external_id": "' + b"x" * (2 * 1024 * 1024) + b'"}',
                       headers={**SUPERVISOR, "content-type": "application/json"})
    assert r.status_code == 413
