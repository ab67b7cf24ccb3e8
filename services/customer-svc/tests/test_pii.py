"""Personal data at rest in customer-svc, on a real database: no plaintext in the tables,
lookups by blind index, rotation and the re-encrypt command, masking per role, the audit."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from customer_svc.customers import service
from customer_svc.pii import access, codec
from customer_svc.pii.reencrypt import run as reencrypt
from helpdesk_common.identity import Principal
from helpdesk_common.pii_crypto import generate_key, key_id_of
from helpdesk_common.testing import identity_headers

ADMIN_P = Principal(kind="user", id="11111111-1111-1111-1111-111111111111", role="admin")
SUPERVISOR_P = Principal(kind="user", id="22222222-2222-2222-2222-222222222222", role="supervisor")
AGENT_P = Principal(kind="user", id="33333333-3333-3333-3333-333333333333", role="agent")
OTHER_AGENT_P = Principal(kind="user", id="44444444-4444-4444-4444-444444444444", role="agent")
ADMIN, SUPERVISOR, AGENT, OTHER_AGENT = (identity_headers(p) for p in (ADMIN_P, SUPERVISOR_P, AGENT_P, OTHER_AGENT_P))

REQUESTER = {"name": "张伟 Zhang Wei", "email": "Zhang.Wei@Example.COM", "phone": "+86 138 1234 5678",
             "wechat_openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"}
PLAINTEXTS = ["zhang.wei@example.com", "Zhang.Wei", "+8613812345678", "13812345678", "12345678",
              "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o", "张伟", "Zhang Wei", "zhang", "wei"]


async def resolve(raw, requester=REQUESTER, ticket_id=None):
    async with raw.transaction():
        return await service.resolve_requester(raw, ticket_id=ticket_id or uuid.uuid4(), requester=dict(requester))


async def raw_text(raw) -> str:
    """Every column of every row of the tables that hold a customer's profile as text (the
    tsvector, the merge audit and stored idempotent answers included)."""
    rows = await raw.fetch("SELECT c::text AS t FROM customers c UNION ALL SELECT i::text FROM customer_identities i "
                           "UNION ALL SELECT m::text FROM customer_merges m UNION ALL SELECT k::text FROM idempotency_keys k")
    return "\n".join(r["t"] for r in rows)


async def test_tables_hold_no_plaintext_and_lookups_still_resolve(raw, api):
    customer_id, created = await resolve(raw)
    assert created
    stored = await raw_text(raw)
    for plain in PLAINTEXTS:
        assert plain.lower() not in stored.lower(), plain
    identities = await raw.fetch("SELECT kind, value, value_enc, value_bidx FROM customer_identities")
    assert {r["kind"] for r in identities} == {"email", "phone", "wechat_openid"}
    assert all(r["value"] is None and r["value_enc"].startswith("v1.") and len(r["value_bidx"]) == 64
               for r in identities)
    row = await raw.fetchrow("SELECT name, name_enc, notes, search::text AS search FROM customers")
    assert row["name"] is None and row["name_enc"].startswith("v1.")
    # the same person again, written another way: the blind index finds them
    again, created = await resolve(raw, {"email": " zhang.wei@EXAMPLE.com ", "name": "someone else"})
    assert (again, created) == (customer_id, False)
    by_phone, created = await resolve(raw, {"phone": "0086 138-1234-5678"})
    assert (by_phone, created) == (customer_id, False)
    # the API reads the plaintext back, and finds the customer by identity and by name
    body = (await api.get(f"/v1/customers/{customer_id}", headers=ADMIN)).json()
    assert body["name"] == "张伟 Zhang Wei"
    assert {i["value"] for i in body["identities"]} == {"zhang.wei@example.com", "+8613812345678",
                                                        "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"}
    for params in ({"email": "ZHANG.WEI@example.com"}, {"phone": "138 1234 5678"}, {"q": "张伟"}, {"q": "伟"},
                   {"q": "zha"}, {"q": "zhang wei"}, {"q": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"},
                   {"q": "+86 13812345678"}):
        found = (await api.get("/v1/customers", params=params, headers=ADMIN)).json()["items"]
        assert [c["id"] for c in found] == [str(customer_id)], params
    for params in ({"q": "张三"}, {"q": "wang"}, {"email": "zhang.wei@example.org"}):
        assert (await api.get("/v1/customers", params=params, headers=ADMIN)).json()["items"] == [], params


async def test_profile_writes_are_encrypted(raw, api):
    created = await api.post("/v1/customers", headers={**SUPERVISOR, "Idempotency-Key": "create-li-na"}, json={
        "name": "李娜", "notes": "VIP, 住在北京市朝阳区建国路88号", "identities": [{"kind": "email", "value": "li.na@example.cn"}]})
    assert created.status_code == 201, created.text
    cid = created.json()["id"]
    replayed = await api.post("/v1/customers", headers={**SUPERVISOR, "Idempotency-Key": "create-li-na"}, json={
        "name": "李娜", "notes": "VIP, 住在北京市朝阳区建国路88号", "identities": [{"kind": "email", "value": "li.na@example.cn"}]})
    assert replayed.headers.get("idempotent-replayed") == "true" and replayed.json() == created.json()
    changed = await api.patch(f"/v1/customers/{cid}", headers={**AGENT, "If-Match": created.headers["etag"]},
                              json={"name": "李娜娜", "notes": "搬到上海市浦东新区"})
    assert changed.status_code == 200, changed.text
    assert (changed.json()["name"], changed.json()["notes"]) == ("李娜娜", "搬到上海市浦东新区")
    stored = await raw_text(raw)
    for plain in ("li.na@example.cn", "李娜", "北京市", "上海市", "浦东"):
        assert plain not in stored, plain
    found = (await api.get("/v1/customers", params={"q": "娜娜"}, headers=ADMIN)).json()["items"]
    assert [c["id"] for c in found] == [cid]
    assert (await api.get("/v1/customers", params={"q": "李娜张"}, headers=ADMIN)).json()["items"] == []


async def legacy_customer(raw, *, name: str, email: str, phone: str) -> uuid.UUID:
    """A customer as the service stored it before migration 0008 (plaintext, plaintext lexemes)."""
    from customer_svc.customers import search

    cid = uuid.uuid4()
    await raw.execute("INSERT INTO customers (id, name, notes, search) VALUES ($1, $2, $3, $4::text::tsvector)",
                      cid, name, f"notes of {name}", search.document(name))
    await raw.execute("INSERT INTO customer_identities (kind, value, customer_id) VALUES ('email', $1, $3), "
                      "('phone', $2, $3)", email, phone, cid)
    return cid


def use_keys(spec: str, index_key: str) -> None:
    codec.configure(spec, index_key)


async def test_legacy_rows_rotation_and_reencrypt(raw, api):
    index_key = generate_key()
    k1, k2 = generate_key(), generate_key()
    use_keys(f"k1:{k1}", index_key)
    legacy = await legacy_customer(raw, name="王小明", email="xiaoming@example.com", phone="+8613900001111")
    under_k1, _ = await resolve(raw, {"name": "Li Lei", "email": "lilei@example.com"})
    # before the command: the legacy row is read, found and resolved like any other
    body = (await api.get(f"/v1/customers/{legacy}", headers=ADMIN)).json()
    assert body["name"] == "王小明" and body["notes"] == "notes of 王小明"
    for params in ({"q": "小明"}, {"email": "xiaoming@example.com"}, {"q": "+86 139 0000 1111"}):
        found = (await api.get("/v1/customers", params=params, headers=ADMIN)).json()["items"]
        assert [c["id"] for c in found] == [str(legacy)], params
    assert await resolve(raw, {"email": "XiaoMing@example.com"}) == (legacy, False)

    # rotate: k2 first, k1 still decrypts
    use_keys(f"k2:{k2},k1:{k1}", index_key)
    under_k2, _ = await resolve(raw, {"name": "Han Meimei", "email": "meimei@example.com"})
    kids = {r["value_enc"] and key_id_of(r["value_enc"]) for r in await raw.fetch(
        "SELECT value_enc FROM customer_identities WHERE value_enc IS NOT NULL")}
    assert kids == {"k1", "k2"}
    for cid, name in ((under_k1, "Li Lei"), (under_k2, "Han Meimei"), (legacy, "王小明")):
        assert (await api.get(f"/v1/customers/{cid}", headers=ADMIN)).json()["name"] == name

    report = await reencrypt(raw, codec.codec(), batch=2)  # small batches: several transactions
    assert report.remaining == {"identities": 0, "customers": 0, "merges": 0, "surveys": 0}
    assert report.identities == 3 and report.customers == 2 and report.batches >= 3  # legacy 2 + k1's 1; 2 customers
    rows = await raw.fetch("SELECT value, value_enc FROM customer_identities")
    assert all(r["value"] is None and key_id_of(r["value_enc"]) == "k2" for r in rows)
    rows = await raw.fetch("SELECT name, notes, name_enc, notes_enc FROM customers")
    assert all(r["name"] is None and r["notes"] is None and key_id_of(r["name_enc"]) == "k2" for r in rows)
    assert "王小明" not in await raw_text(raw) and "xiaoming" not in await raw_text(raw)
    # idempotent: a second run finds nothing
    again = await reencrypt(raw, codec.codec(), batch=2)
    assert (again.identities, again.customers, again.merges) == (0, 0, 0)
    # k1 can go now: everything reads under k2 alone, and still resolves and searches
    use_keys(f"k2:{k2}", index_key)
    for cid, name in ((under_k1, "Li Lei"), (under_k2, "Han Meimei"), (legacy, "王小明")):
        assert (await api.get(f"/v1/customers/{cid}", headers=ADMIN)).json()["name"] == name
    found = (await api.get("/v1/customers", params={"q": "小明"}, headers=ADMIN)).json()["items"]
    assert [c["id"] for c in found] == [str(legacy)]
    assert await resolve(raw, {"phone": "139 0000 1111"}) == (legacy, False)


async def assign(raw, customer_id: uuid.UUID, assignee: str | None, status: str = "open") -> uuid.UUID:
    ticket_id = uuid.uuid4()
    now = datetime.now(UTC)
    await raw.execute("INSERT INTO customer_tickets (ticket_id, customer_id, status, assignee_id, created_at, updated_at) "
                      "VALUES ($1, $2, $3, $4, $5, $5)", ticket_id, customer_id, status, assignee, now)
    return ticket_id


def values_of(body) -> set[str]:
    return {i["value"] for i in body["identities"]}


PLAIN = {"zhang.wei@example.com", "+8613812345678", "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"}
MASKED = {"z***@example.com", "+86 138****5678", "oU" + "*" * 24 + "6o"}


@pytest.mark.parametrize(("who", "ticket", "expected", "reason"), [
    ("admin", None, PLAIN, "role"),
    ("supervisor", None, PLAIN, "role"),
    ("agent", None, MASKED, None),
    ("agent", "open", PLAIN, "assignee"),
    ("agent", "pending", PLAIN, "assignee"),
    ("agent", "solved", PLAIN, "assignee"),
    ("agent", "closed", MASKED, None),
    ("other_agent", "open", MASKED, None),  # the ticket is the first agent's
])
async def test_masking_per_role_and_the_audit(raw, api, who, ticket, expected, reason):
    headers, principal = {"admin": (ADMIN, ADMIN_P), "supervisor": (SUPERVISOR, SUPERVISOR_P),
                          "agent": (AGENT, AGENT_P), "other_agent": (OTHER_AGENT, OTHER_AGENT_P)}[who]
    customer_id, _ = await resolve(raw)
    if ticket is not None:
        await assign(raw, customer_id, AGENT_P.id, ticket)
    paths = [f"/v1/customers/{customer_id}", f"/v1/customers/{customer_id}/360"]
    for path in paths:
        r = await api.get(path, headers=headers)
        assert r.status_code == 200, r.text
        body = r.json()
        assert values_of(body.get("customer", body)) == expected, path
    listed = (await api.get("/v1/customers", params={"q": "张伟"}, headers=headers)).json()["items"]
    assert values_of(listed[0]) == expected
    log = await raw.fetch("SELECT actor, actor_role, customer_id, fields, purpose, reason, route FROM pii_access_log "
                          "ORDER BY id")
    if reason is None:
        assert log == []
    else:
        assert [(r["actor"], r["customer_id"], r["purpose"], r["reason"], r["route"]) for r in log] == [
            (principal.ref, customer_id, "read", reason, route)
            for route in ("customers.read", "customers.overview", "customers.list")]
        assert all(list(r["fields"]) == ["identities.email", "identities.phone", "identities.wechat_openid"]
                   and r["actor_role"] == principal.role for r in log)


async def test_masking_rule_is_configurable(raw, api):
    customer_id, _ = await resolve(raw)
    access.configure(unmasked_roles=["admin", "agent"], assignee_sees=False)
    assert values_of((await api.get(f"/v1/customers/{customer_id}", headers=AGENT)).json()) == PLAIN
    assert values_of((await api.get(f"/v1/customers/{customer_id}", headers=SUPERVISOR)).json()) == MASKED
    access.configure(unmasked_roles=["admin"], assignee_sees=False)
    await assign(raw, customer_id, AGENT_P.id)
    assert values_of((await api.get(f"/v1/customers/{customer_id}", headers=AGENT)).json()) == MASKED


async def test_the_audit_api_is_for_admins(raw, api):
    customer_id, _ = await resolve(raw)
    other, _ = await resolve(raw, {"email": "someone@example.com"})
    for _ in range(3):
        await api.get(f"/v1/customers/{customer_id}", headers=SUPERVISOR)
    await api.get(f"/v1/customers/{other}", headers=ADMIN)
    for headers in (SUPERVISOR, AGENT, identity_headers(Principal(kind="channel", id="k", channel="api"))):
        for path in ("/v1/customers/pii-access", f"/v1/customers/{customer_id}/pii-access"):
            r = await api.get(path, headers=headers)
            assert r.status_code == 403 and r.headers["content-type"].startswith("application/problem+json"), path
    page = await api.get(f"/v1/customers/{customer_id}/pii-access", params={"limit": 2}, headers=ADMIN)
    assert page.status_code == 200, page.text
    first = page.json()
    assert len(first["items"]) == 2 and first["next_cursor"]
    assert {i["actor"] for i in first["items"]} == {SUPERVISOR_P.ref}
    assert first["items"][0]["id"] > first["items"][1]["id"]
    rest = (await api.get(f"/v1/customers/{customer_id}/pii-access",
                          params={"limit": 2, "cursor": first["next_cursor"]}, headers=ADMIN)).json()
    assert len(rest["items"]) == 1 and rest["next_cursor"] is None
    everything = (await api.get("/v1/customers/pii-access", headers=ADMIN)).json()["items"]
    # the admin's own reads of the audit are not identity reads; the four customer reads are there
    assert [(i["customer_id"], i["actor"]) for i in everything] == [
        (str(other), ADMIN_P.ref), *[(str(customer_id), SUPERVISOR_P.ref)] * 3]
    by_actor = (await api.get("/v1/customers/pii-access", params={"actor": ADMIN_P.ref}, headers=ADMIN)).json()
    assert [i["customer_id"] for i in by_actor["items"]] == [str(other)]
    assert (await api.get("/v1/customers/pii-access", params={"purpose": "export"}, headers=ADMIN)).json()["items"] == []
    bad = await api.get("/v1/customers/pii-access", params={"cursor": "nonsense"}, headers=ADMIN)
    assert bad.status_code == 400 and bad.json()["type"].endswith("invalid-cursor")
    for params in ({"since": "2026-01-01T00:00:00"}, {"limit": 0}, {"limit": 101}, {"purpose": "write"},
                   {"actor": "x\u0000"}, {"unknown": "1"}):
        r = await api.get("/v1/customers/pii-access", params=params, headers=ADMIN)
        assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json", (params, r.text)
    later = (await api.get("/v1/customers/pii-access", params={"since": "2999-01-01T00:00:00+08:00"},
                           headers=ADMIN)).json()
    assert later["items"] == []


async def test_a_merge_keeps_its_audit_encrypted(raw, api):
    a, _ = await resolve(raw, {"name": "周杰", "email": "zhoujie@example.com"})
    b, _ = await resolve(raw, {"name": "周杰", "phone": "+8613700002222"})
    etag = (await api.get(f"/v1/customers/{a}", headers=ADMIN)).headers["etag"]
    r = await api.post(f"/v1/customers/{a}/merge", headers={**ADMIN, "If-Match": etag},
                       json={"source_id": str(b)})
    assert r.status_code in (200, 201), r.text
    assert values_of(r.json()) == {"zhoujie@example.com", "+8613700002222"}
    stored = await raw_text(raw)
    assert "13700002222" not in stored and "zhoujie" not in stored and "周杰" not in stored
    moved = (await raw.fetchrow("SELECT identities FROM customer_merges"))["identities"]
    assert [m["kind"] for m in moved] == ["phone"]
    assert codec.codec().open_merge_identity(moved[0]["value_enc"]) == "+8613700002222"


async def test_the_reencrypt_command(raw, customer_db):
    """``python -m customer_svc.pii reencrypt`` as an operator runs it: the service's settings from
    the environment, a JSON report, exit 0 once nothing is left (1 before, 2 for a bad usage)."""
    import asyncio
    import json
    import os
    import sys

    # the session's keys, which the autouse fixture put in the environment
    PII_ENV = {name: os.environ[name] for name in ("CUSTOMER_PII_KEYS", "CUSTOMER_PII_INDEX_KEY")}
    legacy = await legacy_customer(raw, name="赵六", email="zhaoliu@example.com", phone="+8613600003333")
    env = {**os.environ, **PII_ENV, "CUSTOMER_DATABASE_URL": customer_db, "CUSTOMER_PII_REENCRYPT_BATCH": "1"}

    async def command(*args: str) -> tuple[int, str, str]:
        proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "customer_svc.pii", *args, env=env,
                                                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await proc.communicate()
        return proc.returncode, out.decode(), err.decode()

    code, out, _ = await command("reencrypt")
    assert code == 0, out
    report = json.loads(out.strip().splitlines()[-1])
    assert (report["identities"], report["customers"], report["batches"]) == (2, 1, 3)
    assert report["remaining"] == {"identities": 0, "customers": 0, "merges": 0, "surveys": 0}
    assert "zhaoliu" not in await raw_text(raw) and "赵六" not in await raw_text(raw)
    assert codec.codec().customer(await raw.fetchrow("SELECT * FROM customers WHERE id = $1", legacy))["name"] == "赵六"
    code, out, err = await command("reencrypt", "--all")
    assert code == 2 and "usage" in err
    env.pop("CUSTOMER_PII_KEYS")
    code, out, err = await command("reencrypt")
    assert code != 0 and "CUSTOMER_PII_KEYS is not set" in err and PII_ENV["CUSTOMER_PII_INDEX_KEY"] not in err
