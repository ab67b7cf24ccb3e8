"""The requester at rest (docs/security.md, "Personal data at rest"): ciphertext in the tables,
lookups through blind indexes, masking by role in reads and exports, key rotation and the
re-encrypt command, rows written before migration 0018. Real PostgreSQL, the real app."""

import csv
import io

import pytest
from sqlalchemy import text

from helpdesk_common.identity import Principal
from helpdesk_common.pii_crypto import generate_key, key_id_of
from helpdesk_common.testing import SESSION_PII_ENV, identity_headers
from ticket_svc.pii import access, codec as pii_codec
from ticket_svc.pii.reencrypt import run as reencrypt

CHANNEL = identity_headers(Principal(kind="channel", id="key-1", channel="web"))
ADMIN = identity_headers(Principal(kind="user", id="root", role="admin"))
SUPERVISOR = identity_headers(Principal(kind="user", id="boss", role="supervisor"))
AGENT = Principal(kind="user", id="a-pii", role="agent")
OTHER_AGENT = Principal(kind="user", id="b-pii", role="agent")

EMAIL, PHONE, OPENID, NAME = "zhang.wei@example.com", "+8613800138000", "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o", "张伟"
REQUESTER = {"name": NAME, "email": EMAIL, "phone": PHONE, "wechat_openid": OPENID}
NEEDLES = (EMAIL, PHONE, "13800138000", OPENID, NAME)


async def create(client, subject: str, requester=None) -> dict:
    r = await client.post("/v1/tickets", headers=CHANNEL,
                          json={"subject": subject, "description": "…", "requester": requester or REQUESTER})
    assert r.status_code == 201, r.text
    return r.json()


async def row_texts(db, table: str) -> list[str]:
    async with db.connect() as conn:
        return [r[0] for r in (await conn.execute(text(f"SELECT t::text FROM {table} t"))).all()]


@pytest.fixture
async def raw(ticket_db):
    from helpdesk_common.db import create_raw_pool

    pool = await create_raw_pool(ticket_db, size=1)
    async with pool.acquire() as conn:
        yield conn
    await pool.close()


async def test_the_requester_is_ciphertext_in_every_column(client, db, raw):
    from ticket_svc.pii.codec import sealed_identities
    from ticket_svc.tickets import repository

    import uuid

    customer = uuid.uuid4()
    await repository.upsert_identities(raw, customer_id=customer, identities=sealed_identities([("email", EMAIL)]))
    ticket = await create(client, "加密 at rest")
    assert ticket["customer_id"] == str(customer)  # the intake's link went through the blind index
    assert ticket["requester"] == REQUESTER  # the channel that sent it gets it back as sent
    for table in ("tickets", "customer_identity_projection"):
        for row in await row_texts(db, table):
            assert not [n for n in NEEDLES if n.lower() in row.lower()], (table, row)
    async with db.connect() as conn:
        stored = (await conn.execute(text("SELECT requester, requester_identity_value, requester_identity_kind, "
                                          "cardinality(requester_bidx) FROM tickets"))).one()
    assert list(stored[0]) == ["sealed"] and stored[0]["sealed"].startswith("v1.k1.")
    assert stored[1:] == (None, "email", 3)  # e-mail, phone, openid: three indexes
    read = await client.get(f"/v1/tickets/{ticket['id']}", headers=ADMIN)
    assert read.json()["requester"] == REQUESTER


async def test_search_by_requester_goes_through_the_blind_indexes(client):
    mine = await create(client, "mine")
    await create(client, "someone else's", {"name": "李娜", "email": "li.na@example.com"})

    async def found(value: str) -> list[str]:
        r = await client.get("/v1/tickets", params={"requester": value}, headers=ADMIN)
        assert r.status_code == 200, r.text
        return [t["id"] for t in r.json()["items"]]

    assert await found("Zhang.Wei@Example.COM") == [mine["id"]]  # an address matches case-folded
    assert await found(PHONE) == [mine["id"]]
    assert await found(OPENID) == [mine["id"]]
    assert await found(OPENID.lower()) == []  # openids are case-sensitive
    assert await found("nobody@example.com") == []
    assert await found(NAME) == []  # names are not an identity
    bad = await client.get("/v1/tickets", params={"requester": "x" * 300}, headers=ADMIN)
    assert bad.status_code == 422 and bad.headers["content-type"] == "application/problem+json"


async def test_masking_per_role_and_assignment(client, known_users):
    await known_users(AGENT.id, OTHER_AGENT.id)
    for agent in (AGENT, OTHER_AGENT):
        assert (await client.put(f"/v1/agents/{agent.id}", json={"display_name": agent.id},
                                 headers=ADMIN)).status_code == 200
    ticket = await create(client, "masking")
    path = f"/v1/tickets/{ticket['id']}"

    async def requester(principal_headers) -> dict:
        r = await client.get(path, headers=principal_headers)
        assert r.status_code == 200, r.text
        return r.json()["requester"]

    masked = {"name": NAME, "email": "z***@example.com", "phone": "+86 138****8000",
              "wechat_openid": "oU" + "*" * (len(OPENID) - 4) + "6o"}
    assert await requester(ADMIN) == REQUESTER
    assert await requester(SUPERVISOR) == REQUESTER
    assert await requester(identity_headers(AGENT)) == masked  # the triage queue: readable, not worked
    assigned = await client.post(f"{path}/assign", json={"assignee_id": AGENT.id}, headers=ADMIN)
    assert assigned.status_code == 200, assigned.text
    assert await requester(identity_headers(AGENT)) == REQUESTER  # works it now
    listed = (await client.get("/v1/tickets", headers=identity_headers(AGENT))).json()["items"]
    assert [t["requester"] for t in listed] == [REQUESTER]
    # configurable: supervisors masked, and assignment no longer unmasks
    access.configure(unmasked_roles=("admin",), assignee_sees=False)
    assert await requester(SUPERVISOR) == masked
    assert await requester(identity_headers(AGENT)) == masked
    assert await requester(ADMIN) == REQUESTER


def test_the_assignee_rule_ends_when_the_ticket_is_closed():
    row = {"assignee_id": AGENT.id, "status": "solved"}
    assert access.unmasked_for(AGENT, row)
    assert not access.unmasked_for(AGENT, {**row, "status": "closed"})
    assert not access.unmasked_for(OTHER_AGENT, row)
    assert access.unmasked_for(None, {**row, "status": "closed"})  # ticket-svc itself (replies, erasure)


async def test_exports_mask_as_the_list_does(client, known_users, caplog):
    import logging

    await known_users(AGENT.id)
    await create(client, "exported")

    def rows(response) -> list[dict]:
        assert response.status_code == 200, response.text
        return list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))

    with caplog.at_level(logging.INFO, logger="audit.pii_export"):
        as_admin = rows(await client.get("/v1/export/tickets.csv", headers=ADMIN))
        as_agent = rows(await client.get("/v1/export/tickets.csv", params={"requester": EMAIL},
                                         headers=identity_headers(AGENT)))
    audited = [(r.actor, r.unmasked, r.filters) for r in caplog.records if r.name == "audit.pii_export"]
    assert audited == [("user:root", "role", []), (f"user:{AGENT.id}", "assignee", ["requester_bidx"])]
    assert EMAIL not in str([r.__dict__ for r in caplog.records if r.name == "audit.pii_export"])
    # (a cell starting with + is escaped with ' against spreadsheet formulas)
    assert [(r["requester_email"], r["requester_phone"]) for r in as_admin] == [(EMAIL, "'" + PHONE)]
    assert [(r["requester_name"], r["requester_email"], r["requester_phone"]) for r in as_agent] == [
        (NAME, "z***@example.com", "'+86 138****8000")]
    page = await client.get("/v1/export/tickets", headers=identity_headers(AGENT))
    assert [t["requester"]["email"] for t in page.json()["items"]] == ["z***@example.com"]


async def test_rotation_old_key_reads_new_key_writes_reencrypt_moves(client, db, raw, monkeypatch):
    env = SESSION_PII_ENV["TICKET_"]
    old = await create(client, "under k1")
    rotated = f"k2:{generate_key()},{env['TICKET_PII_KEYS']}"
    pii_codec.configure(rotated, env["TICKET_PII_INDEX_KEY"])
    assert (await client.get(f"/v1/tickets/{old['id']}", headers=ADMIN)).json()["requester"] == REQUESTER
    new = await create(client, "under k2")
    async with db.connect() as conn:
        kids = dict((await conn.execute(text("SELECT id::text, requester->>'sealed' FROM tickets"))).all())
    assert key_id_of(kids[old["id"]]) == "k1" and key_id_of(kids[new["id"]]) == "k2"
    # a row written before 0018: plaintext requester and identity, no indexes
    await raw.execute("UPDATE tickets SET requester = $2, requester_identity_value = $3, "
                      "requester_identity_bidx = NULL, requester_bidx = '{}' WHERE id = $1::uuid",
                      old["id"], {"name": "旧 row", "email": "old@example.com"}, "old@example.com")
    assert (await client.get(f"/v1/tickets/{old['id']}", headers=ADMIN)).json()["requester"]["email"] == \
        "old@example.com"
    await raw.execute("INSERT INTO customer_identity_projection (kind, value, customer_id) "
                      "VALUES ('email', 'legacy@example.com', gen_random_uuid())")

    report = await reencrypt(raw, pii_codec.codec(), batch=1)
    assert report["tickets"] == 1 and report["identities"] == 1 and report["current_kid"] == "k2"
    assert report["remaining"] == {"tickets": 0, "identities": 0, "reply_routes": 0, "ticket_fields": 0, "messages": 0}
    assert (await reencrypt(raw, pii_codec.codec(), batch=1))["tickets"] == 0  # idempotent
    async with db.connect() as conn:
        kids = [key_id_of(r[0]) for r in (await conn.execute(text("SELECT requester->>'sealed' FROM tickets"))).all()]
        projection = (await conn.execute(text("SELECT value, value_enc FROM customer_identity_projection"))).one()
    assert kids == ["k2", "k2"] and projection[0] is None and key_id_of(projection[1]) == "k2"
    for row in await row_texts(db, "tickets") + await row_texts(db, "customer_identity_projection"):
        assert "old@example.com" not in row and "legacy@example.com" not in row
    # k1 dropped: everything still reads, and the moved row is found by its identity now
    pii_codec.configure(rotated.split(",")[0], env["TICKET_PII_INDEX_KEY"])
    found = (await client.get("/v1/tickets", params={"requester": "old@example.com"}, headers=ADMIN)).json()
    assert [(t["id"], t["requester"]["name"]) for t in found["items"]] == [(old["id"], "旧 row")]


def test_the_service_does_not_start_without_its_keys(monkeypatch):
    from helpdesk_common.pii_crypto import PiiKeyError
    from ticket_svc.config import Settings
    from ticket_svc.main import create_app

    monkeypatch.delenv("TICKET_PII_KEYS")
    with pytest.raises(PiiKeyError, match="TICKET_PII_KEYS is not set"):
        create_app(Settings())
    monkeypatch.setenv("TICKET_PII_KEYS", SESSION_PII_ENV["TICKET_"]["TICKET_PII_KEYS"])
    monkeypatch.setenv("TICKET_PII_INDEX_KEY", "too-short")
    with pytest.raises(PiiKeyError, match="TICKET_PII_INDEX_KEY") as refused:
        create_app(Settings())
    assert SESSION_PII_ENV["TICKET_"]["TICKET_PII_KEYS"].split(":")[1] not in str(refused.value)


async def test_the_erasure_scan_sees_through_the_ciphertext(client, ticket_db, raw):
    """``pii_scan.scan_database`` with the service's keyring opens every token: what is encrypted
    but not erased is still found (the erasure test scans this way)."""
    from helpdesk_common.pii_scan import scan_database
    from ticket_svc.pii.codec import sealed_identities
    from ticket_svc.tickets import repository

    import uuid

    await repository.upsert_identities(raw, customer_id=uuid.uuid4(), identities=sealed_identities([("email", EMAIL)]))
    await create(client, "scanned")
    needles = [EMAIL, OPENID, NAME]
    plain = await scan_database(ticket_db, needles, label="ticket")
    assert not [f for f in plain if f.where.split(".")[1] in ("tickets", "customer_identity_projection")], plain
    opened = await scan_database(ticket_db, needles, label="ticket", keyring=pii_codec.codec().keyring)
    assert {f.where for f in opened} >= {"ticket.tickets.requester (decrypted)",
                                          "ticket.customer_identity_projection.value_enc (decrypted)"}, opened


async def test_the_reencrypt_command(client, ticket_db, raw):
    """``python -m ticket_svc.pii reencrypt`` as ops run it: the service's environment, a JSON report,
    exit 0 once nothing is left."""
    import asyncio
    import json
    import os
    import sys

    ticket = await create(client, "command")
    await raw.execute("UPDATE tickets SET requester = $2 WHERE id = $1::uuid", ticket["id"], {"email": "cmd@example.com"})
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ticket_svc.pii", "reencrypt", env={**os.environ, "TICKET_DATABASE_URL": ticket_db},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 0, err.decode()
    report = json.loads(out.decode().strip().splitlines()[-1])
    assert report["tickets"] == 1 and report["remaining"] == {"tickets": 0, "identities": 0, "reply_routes": 0, "ticket_fields": 0, "messages": 0}
    assert (await client.get(f"/v1/tickets/{ticket['id']}", headers=ADMIN)).json()["requester"] == {
        "email": "cmd@example.com"}
