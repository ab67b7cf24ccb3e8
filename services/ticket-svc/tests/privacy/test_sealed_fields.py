"""Other people's addresses and the customer's words at rest (docs/security.md, "ticket-svc: the
requester on a ticket", migration 0021): a ticket's CC list, its CSAT comment and a message's
personal metadata (an e-mail's To / Cc / Reply-To) are sealed; the API, the outbound e-mail and
the export bundle see them in plaintext; rows from before 0021 are read as they are and sealed by
``reencrypt``; the erasure opens the sealed rows to find the person. Real PostgreSQL, the real app."""

import uuid
from datetime import UTC, datetime

import orjson
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from helpdesk_common import erasure, events
from helpdesk_common.identity import Principal
from helpdesk_common.testing import identity_headers
from ticket_svc.pii import codec as pii_codec
from ticket_svc.pii.reencrypt import run as reencrypt

from .test_requester_pii import raw, row_texts  # noqa: F401 (raw: the fixture)

ADMIN = identity_headers(Principal(kind="user", id="root", role="admin"))
API_KEY = identity_headers(Principal(kind="channel", id="key-1", channel="web"))
EMAIL_KEY = identity_headers(Principal(kind="channel", id="email-key", channel="email"))
AGENT = Principal(kind="user", id="u-agent", role="agent")

CC_ONE, CC_TWO, REPLY_TO = "wang.fang@example.com", "chen.jing@example.org", "li.qiang@example.net"
COMMENT = "客服很好，但王芳的电话 13900139000 一直打不通"


def email(msg_id: str, *, cc: str, reply_to: str, in_reply_to: str | None = None) -> bytes:
    headers = ["From: =?UTF-8?B?5byg5LiJ?= <zhang.san@example.com>", "To: support@helpdesk.example",
               f"Cc: {cc}", f"Reply-To: {reply_to}", "Subject: 发票问题", "Date: Mon, 30 Nov 2026 09:30:00 +0800",
               f"Message-ID: <{msg_id}>", "MIME-Version: 1.0", "Content-Type: text/plain; charset=UTF-8",
               "Content-Transfer-Encoding: 8bit"]
    if in_reply_to:
        headers += [f"In-Reply-To: <{in_reply_to}>", f"References: <{in_reply_to}>"]
    return ("\r\n".join(headers) + "\r\n\r\n发票还没收到\r\n").encode()


async def inbound_email(client, *, cc: str = CC_TWO, reply_to: str = REPLY_TO) -> tuple[str, str]:
    msg_id = f"{uuid.uuid4().hex}@mail.example.com"
    answer = await client.post("/v1/channels/email/inbound", content=email(msg_id, cc=cc, reply_to=reply_to),
                               headers={**EMAIL_KEY, "Content-Type": "message/rfc822"})
    assert answer.status_code == 201, answer.text
    return answer.json()["ticket_id"], msg_id


async def answer_csat(raw, ticket_id: str, comment: str) -> None:
    from ticket_svc.customers import service as customers

    async with raw.transaction():
        await customers.on_survey_answered(raw, events.SurveyAnsweredData(
            survey_id=uuid.uuid4(), kind="csat", customer_id=uuid.uuid4(), ticket_id=uuid.UUID(ticket_id),
            rating=5, comment=comment, at=datetime.now(UTC)))


async def reply_route(client, db, ticket_id: str) -> dict:
    answer = await client.post(f"/v1/tickets/{ticket_id}/messages", json={"body": "已补开发票"},
                               headers=identity_headers(Principal(kind="user", id="root", role="admin")))
    assert answer.status_code == 201, answer.text
    async with db.connect() as conn:
        payload = await conn.scalar(text(
            "SELECT payload FROM outbox WHERE key = :k AND event_type = 'ticket.reply_requested' "
            "ORDER BY seq DESC LIMIT 1"), {"k": ticket_id})
    return orjson.loads(payload)["data"]["route"]


async def test_cc_comment_and_addresses_are_sealed_and_read_back(client, db, raw):
    created = await client.post("/v1/tickets", headers=API_KEY, json={
        "subject": "抄送", "description": "…", "requester": {"name": "张三", "email": "zhang.san@example.com"},
        "cc": [CC_ONE]})
    assert created.status_code == 201, created.text
    ticket_id = created.json()["id"]
    assert created.json()["cc"] == [CC_ONE]
    patched = await client.patch(f"/v1/tickets/{ticket_id}", headers=ADMIN, json={"cc": [CC_ONE, CC_TWO]})
    assert patched.status_code == 200 and patched.json()["cc"] == [CC_ONE, CC_TWO], patched.text
    unchanged = await client.patch(f"/v1/tickets/{ticket_id}", headers=ADMIN, json={"cc": [CC_ONE, CC_TWO]})
    assert unchanged.json()["version"] == patched.json()["version"]  # compared in plaintext: no change
    await answer_csat(raw, ticket_id, COMMENT)
    mailed, _ = await inbound_email(client)

    for table in ("tickets", "messages"):
        for row in await row_texts(db, table):
            found = [n for n in (CC_ONE, CC_TWO, REPLY_TO, "support@helpdesk.example", "13900139000") if n in row]
            assert not found, (table, found, row)
    async with db.connect() as conn:
        cc, comment = (await conn.execute(text("SELECT cc, csat_comment FROM tickets WHERE id = :t"),
                                          {"t": ticket_id})).one()
        metadata = await conn.scalar(text("SELECT metadata FROM messages WHERE ticket_id = :t"), {"t": mailed})
    assert list(cc) == ["sealed"] and comment.startswith("v1.k1.")
    assert "personal" in metadata and "to" not in metadata and "forwarded" in metadata  # flags stay readable

    read = (await client.get(f"/v1/tickets/{ticket_id}", headers=ADMIN)).json()
    assert read["cc"] == [CC_ONE, CC_TWO] and read["csat"]["comment"] == COMMENT
    audit = await client.get(f"/v1/tickets/{ticket_id}/audit", headers=ADMIN)
    assert any(e["changes"].get("cc") == {"before": [CC_ONE], "after": [CC_ONE, CC_TWO]}
               for e in audit.json()["items"]), audit.text
    # the outbound e-mail: the ticket's CCs, and the reply leaves from the address the customer wrote to
    route = await reply_route(client, db, mailed)
    assert route["from"] == "support@helpdesk.example" and route["to"] == "zhang.san@example.com"
    assert pii_codec.message_metadata_of(metadata)["cc"] and pii_codec.message_metadata_of(metadata)["reply_to"]
    assert (await reply_route(client, db, ticket_id))["cc"] == [CC_ONE, CC_TWO]


async def test_rows_from_before_0021_are_read_and_sealed_by_reencrypt(client, db, raw):
    ticket_id, _ = await inbound_email(client)
    legacy_metadata = {"to": [{"name": None, "email": "support@helpdesk.example"}], "cc": [CC_TWO],
                       "forwarded": False}
    await raw.execute("UPDATE tickets SET cc = $2::jsonb, csat_comment = $3, csat_answered_at = now(), "
                      "csat_rating = 4 WHERE id = $1::uuid", ticket_id, [CC_ONE], COMMENT)
    await raw.execute("UPDATE messages SET metadata = $2::jsonb WHERE ticket_id = $1::uuid", ticket_id,
                      legacy_metadata)
    read = (await client.get(f"/v1/tickets/{ticket_id}", headers=ADMIN)).json()
    assert read["cc"] == [CC_ONE] and read["csat"]["comment"] == COMMENT
    assert (await reply_route(client, db, ticket_id))["from"] == "support@helpdesk.example"

    report = await reencrypt(raw, pii_codec.codec(), batch=1)
    assert report["ticket_fields"] == 1 and report["messages"] == 1
    assert report["remaining"]["ticket_fields"] == 0 and report["remaining"]["messages"] == 0
    for table in ("tickets", "messages"):
        for row in await row_texts(db, table):
            assert CC_ONE not in row and CC_TWO not in row and "13900139000" not in row, (table, row)
    again = await reencrypt(raw, pii_codec.codec(), batch=1)
    assert again["ticket_fields"] == 0 and again["messages"] == 0  # idempotent
    read = (await client.get(f"/v1/tickets/{ticket_id}", headers=ADMIN)).json()
    assert read["cc"] == [CC_ONE] and read["csat"]["comment"] == COMMENT
    async with db.connect() as conn:
        metadata = await conn.scalar(text("SELECT metadata FROM messages WHERE ticket_id = :t"), {"t": ticket_id})
    assert pii_codec.message_metadata_of(metadata) == legacy_metadata


async def test_the_erasure_opens_sealed_rows_and_removes_only_the_person(client, db, raw):
    from ticket_svc.pii.codec import sealed_identities
    from ticket_svc.privacy import service as privacy
    from ticket_svc.tickets import repository

    person, customer = f"erase.{uuid.uuid4().hex[:8]}@example.com", uuid.uuid4()
    created = await client.post("/v1/tickets", headers=API_KEY, json={
        "subject": "someone else's", "description": "…", "requester": {"email": "boss@example.com"},
        "cc": [CC_ONE, person]})
    other = created.json()["id"]
    await answer_csat(raw, other, f"请联系 {person} 或 {CC_TWO}")
    mailed, _ = await inbound_email(client, cc=f"{person}, {CC_TWO}", reply_to=person)
    untouched, _ = await inbound_email(client)
    before = await _metadata(db, untouched)
    await repository.upsert_identities(raw, customer_id=customer, identities=sealed_identities([("email", person)]))
    async with raw.transaction():
        counts = await privacy.erase(raw, customer_id=customer)
    assert counts["tickets.cc"] == 1 and counts["tickets.csat_comment"] == 1 and counts["messages.metadata"] == 1

    read = (await client.get(f"/v1/tickets/{other}", headers=ADMIN)).json()
    assert read["cc"] == [CC_ONE] and read["csat"]["comment"] == f"请联系 {erasure.REDACTED} 或 {CC_TWO}"
    async with db.connect() as conn:
        stored = dict((await conn.execute(text("SELECT ticket_id::text, metadata FROM messages"))).all())
    opened = pii_codec.message_metadata_of(stored[mailed])
    assert person not in orjson.dumps(opened).decode() and CC_TWO in orjson.dumps(opened["cc"]).decode()
    assert stored[untouched] == before  # the same ciphertext: nothing rewritten where the person is not
    assert REPLY_TO in orjson.dumps(pii_codec.message_metadata_of(stored[untouched])).decode()
    async with raw.transaction():
        again = await privacy.erase(raw, customer_id=customer)
    assert again["tickets.cc"] == again["tickets.csat_comment"] == again["messages.metadata"] == 0


async def _metadata(db, ticket_id: str) -> dict:
    async with db.connect() as conn:
        return await conn.scalar(text("SELECT metadata FROM messages WHERE ticket_id = :t"), {"t": ticket_id})


async def test_migration_0021_goes_down_only_without_sealed_values(infra):
    from helpdesk_common.migrate import ensure_database

    from ..tickets.test_migration_0008 import migrate

    url = f"{infra.db_base}/t_ticket_svc_m21_{uuid.uuid4().hex[:8]}"
    await ensure_database(url)
    migrate(url, "head")
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text(
                "INSERT INTO tickets (id, subject, status, priority, requester, created_by, created_at, updated_at, "
                "cc) VALUES (gen_random_uuid(), 's', 'open', 'normal', '{}', 'api:k', now(), now(), "
                "'{\"sealed\": \"v1.k1.AAAA\"}')"))
        with pytest.raises(Exception, match="downgrading below 0021"):
            migrate(url, "0020", down=True)
        async with engine.begin() as conn:
            await conn.execute(text("UPDATE tickets SET cc = '[\"a@example.com\"]'"))
        migrate(url, "0020", down=True)
    finally:
        await engine.dispose()
