"""WeChat / WeCom senders at rest (docs/security.md, "ticket-svc: the requester on a ticket"):
``tickets.conversation_key`` holds a blind index of the sender, ``reply_routes.route`` is sealed;
threading and the outbound reply still work, across migration 0019 (rows from before it are
read as they are and moved by ``python -m ticket_svc.pii reencrypt``), and the erasure finds and
scrubs the rows by blind index. Real PostgreSQL, the real app."""

import uuid

import orjson
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from helpdesk_common import erasure
from helpdesk_common.identity import Principal
from helpdesk_common.testing import identity_headers
from ticket_svc.pii import codec as pii_codec
from ticket_svc.pii.reencrypt import run as reencrypt

from .test_requester_pii import raw, row_texts  # noqa: F401 (raw: the fixture)

AGENT = Principal(kind="user", id="u-agent", role="agent", name="李雷 Lei")


def wechat(openid: str, msg_id: str | None = None, *, without_msg_id: bool = False,
           create_time: int = 1763861400) -> bytes:
    msg = "" if without_msg_id else f"<MsgId>{msg_id or uuid.uuid4().hex[:12]}</MsgId>"
    return (f"<xml><ToUserName><![CDATA[gh_service]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName>"
            f"<CreateTime>{create_time}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
            f"<Content><![CDATA[我的快递丢了]]></Content>{msg}</xml>").encode()


def wecom(userid: str) -> bytes:
    return (f"<xml><ToUserName><![CDATA[ww_corp]]></ToUserName><FromUserName><![CDATA[{userid}]]></FromUserName>"
            f"<CreateTime>1763861400</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[VPN]]>"
            f"</Content><MsgId>{uuid.uuid4().hex[:12]}</MsgId><AgentID>1000002</AgentID></xml>").encode()


async def inbound(client, kind: str, body: bytes) -> dict:
    answer = await client.post(f"/v1/channels/{kind}/inbound", content=body, headers={
        **identity_headers(Principal(kind="channel", id=f"{kind}-key", channel=kind)),
        "Content-Type": "application/xml"})
    assert answer.status_code in (200, 201), answer.text
    return answer.json()


async def reply_route(client, db, ticket_id: str) -> dict:
    """The route of the ``ticket.reply_requested`` an agent's public reply enqueues."""
    answer = await client.post(f"/v1/tickets/{ticket_id}/messages", json={"body": "您好"},
                               headers=identity_headers(AGENT))
    assert answer.status_code == 201, answer.text
    async with db.connect() as conn:
        payload = await conn.scalar(text(
            "SELECT payload FROM outbox WHERE key = :k AND event_type = 'ticket.reply_requested' "
            "ORDER BY seq DESC LIMIT 1"), {"k": ticket_id})
    return orjson.loads(payload)["data"]["route"]


async def test_no_sender_in_the_tables_and_threading_and_replies_work(client, db):
    openid, userid = f"oUpF8u{uuid.uuid4().hex[:16]}", f"wm{uuid.uuid4().hex[:14]}"
    first = await inbound(client, "wechat", wechat(openid))
    again = await inbound(client, "wechat", wechat(openid))
    other = await inbound(client, "wechat", wechat(openid + "x"))
    assert again["ticket_id"] == first["ticket_id"] != other["ticket_id"]  # threading by the index
    work = await inbound(client, "wecom", wecom(userid))
    assert (await inbound(client, "wecom", wecom(userid)))["ticket_id"] == work["ticket_id"]

    box = pii_codec.codec()
    async with db.connect() as conn:
        keys = dict((await conn.execute(text("SELECT id::text, conversation_key FROM tickets"))).all())
        routes = (await conn.execute(text("SELECT route FROM reply_routes"))).scalars().all()
    assert keys[first["ticket_id"]] == f"wechat:#{box.identity_index(openid)}"
    assert keys[work["ticket_id"]] == f"wecom:#{box.identity_index(userid)}"
    assert len(routes) == 3 and all(list(r) == ["sealed"] for r in routes)
    for table in ("tickets", "reply_routes"):
        for row in await row_texts(db, table):
            assert openid not in row and userid not in row, (table, row)

    assert await reply_route(client, db, first["ticket_id"]) == {"openid": openid, "original_id": "gh_service"}
    assert await reply_route(client, db, work["ticket_id"]) == {"external_userid": userid, "corp_id": "ww_corp",
                                                                "agent_id": "1000002"}


async def test_a_delivery_id_naming_the_sender_is_stored_indexed_and_still_dedupes(client, db):
    """A WeChat message without a MsgId is known by <openid>:<CreateTime>: stored with the openid
    indexed, a retry of it is still the same delivery, another second is another message."""
    openid = f"oNoMsgId{uuid.uuid4().hex[:16]}"
    first = await inbound(client, "wechat", wechat(openid, without_msg_id=True))
    retried = await inbound(client, "wechat", wechat(openid, without_msg_id=True))
    later = await inbound(client, "wechat", wechat(openid, without_msg_id=True, create_time=1763861401))
    assert retried["message_id"] == first["message_id"] != later["message_id"]
    assert later["ticket_id"] == first["ticket_id"]
    index = pii_codec.codec().identity_index(openid)
    async with db.connect() as conn:
        deliveries = (await conn.execute(text(
            "SELECT external_id FROM channel_deliveries WHERE channel = 'wechat' AND ticket_id = :t "
            "ORDER BY external_id"), {"t": first["ticket_id"]})).scalars().all()
        messages = (await conn.execute(text("SELECT external_id FROM messages WHERE ticket_id = :t ORDER BY created_at"),
                                       {"t": first["ticket_id"]})).scalars().all()
    assert deliveries == [f"#{index}:1763861400", f"#{index}:1763861401"] == messages
    for table in ("channel_deliveries", "messages"):
        for row in await row_texts(db, table):
            assert openid not in row, (table, row)


async def test_rows_from_before_0019_thread_reply_and_are_moved_by_reencrypt(client, db, raw):
    openid = f"oLegacy{uuid.uuid4().hex[:16]}"
    old = await inbound(client, "wechat", wechat(openid))
    # as 0018's code wrote them: the sender in the key, the route as an object
    await raw.execute("UPDATE tickets SET conversation_key = $2 WHERE id = $1::uuid", old["ticket_id"],
                      f"wechat:{openid}")
    await raw.execute("UPDATE reply_routes SET route = $2 WHERE ticket_id = $1::uuid", old["ticket_id"],
                      {"openid": openid, "original_id": "gh_old"})

    assert (await inbound(client, "wechat", wechat(openid)))["ticket_id"] == old["ticket_id"]
    assert await reply_route(client, db, old["ticket_id"]) == {"openid": openid, "original_id": "gh_service"}
    # the intake's merge sealed the route; the key stays until the command moves it
    await raw.execute("UPDATE reply_routes SET route = $2 WHERE ticket_id = $1::uuid", old["ticket_id"],
                      {"openid": openid, "original_id": "gh_old"})
    assert await reply_route(client, db, old["ticket_id"]) == {"openid": openid, "original_id": "gh_old"}

    report = await reencrypt(raw, pii_codec.codec(), batch=1)
    assert (report["tickets"], report["reply_routes"]) == (1, 1)
    assert report["remaining"] == {"tickets": 0, "identities": 0, "reply_routes": 0, "ticket_fields": 0, "messages": 0}
    assert (await reencrypt(raw, pii_codec.codec(), batch=1))["reply_routes"] == 0  # idempotent
    for table in ("tickets", "reply_routes"):
        for row in await row_texts(db, table):
            assert openid not in row, (table, row)
    assert (await inbound(client, "wechat", wechat(openid)))["ticket_id"] == old["ticket_id"]
    assert await reply_route(client, db, old["ticket_id"]) == {"openid": openid, "original_id": "gh_service"}


async def test_a_follow_up_keeps_the_conversation_and_its_route(client, db, raw):
    """A channel's message on a closed ticket opens a follow-up with the stored key (kept as it is,
    not indexed twice) and the copied route; the conversation then threads onto the follow-up."""
    openid = f"oFollow{uuid.uuid4().hex[:16]}"
    first = await inbound(client, "wechat", wechat(openid))
    await raw.execute("UPDATE tickets SET status = 'closed' WHERE id = $1::uuid", first["ticket_id"])
    posted = await client.post(f"/v1/tickets/{first['ticket_id']}/messages", json={"body": "还在吗"},
                               headers=identity_headers(Principal(kind="channel", id="wechat-key", channel="wechat")))
    assert posted.status_code == 201, posted.text
    follow = posted.json()["follow_up_ticket_id"]
    async with db.connect() as conn:
        keys = dict((await conn.execute(text("SELECT id::text, conversation_key FROM tickets"))).all())
    assert keys[follow] == keys[first["ticket_id"]] == f"wechat:#{pii_codec.codec().identity_index(openid)}"
    assert (await inbound(client, "wechat", wechat(openid)))["ticket_id"] == follow
    assert await reply_route(client, db, follow) == {"openid": openid, "original_id": "gh_service"}


async def test_the_erasure_finds_the_conversation_by_index_and_scrubs_it(client, db, raw):
    from ticket_svc.pii.codec import sealed_identities
    from ticket_svc.privacy import service as privacy
    from ticket_svc.tickets import repository

    openid, customer = f"oErase{uuid.uuid4().hex[:16]}", uuid.uuid4()
    mine = await inbound(client, "wechat", wechat(openid))
    kept = await inbound(client, "wechat", wechat(f"oKeep{uuid.uuid4().hex[:16]}"))
    # only the conversation key ties this ticket to the person (no customer link, no requester index)
    await raw.execute("UPDATE tickets SET customer_id = NULL, requester_bidx = '{}', requester_identity_bidx = NULL "
                      "WHERE id = $1::uuid", mine["ticket_id"])
    await repository.upsert_identities(raw, customer_id=customer,
                                       identities=sealed_identities([("wechat_openid", openid)]))
    async with raw.transaction():
        counts = await privacy.erase(raw, customer_id=customer)
    assert counts["reply_routes"] == 1
    async with db.connect() as conn:
        rows = dict((await conn.execute(text("SELECT id::text, conversation_key FROM tickets"))).all())
        requester = await conn.scalar(text("SELECT requester FROM tickets WHERE id = :t"), {"t": mine["ticket_id"]})
        routes = (await conn.execute(text("SELECT ticket_id::text FROM reply_routes"))).scalars().all()
    assert rows[mine["ticket_id"]] is None and rows[kept["ticket_id"]].startswith("wechat:#")
    assert routes == [kept["ticket_id"]] and requester == {"name": erasure.ERASED_NAME}
    # the channel's ids of the person's messages and their dedupe rows go too; the other ticket's stay
    async with db.connect() as conn:
        delivered = (await conn.execute(text("SELECT ticket_id::text FROM channel_deliveries"))).scalars().all()
        ids = dict((await conn.execute(text("SELECT ticket_id::text, external_id FROM messages"))).all())
    assert delivered == [kept["ticket_id"]] and counts["channel_deliveries"] == 1
    assert ids[mine["ticket_id"]] is None and ids[kept["ticket_id"]] is not None


async def test_migration_0019_goes_down_only_without_indexed_keys_or_sealed_routes(infra):
    """0019 holds no key: below it an indexed key or a sealed route could not be read back."""
    from helpdesk_common.migrate import ensure_database

    from ..tickets.test_migration_0008 import migrate

    url = f"{infra.db_base}/t_ticket_svc_m19_{uuid.uuid4().hex[:8]}"
    await ensure_database(url)
    migrate(url, "head")
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text(
                "INSERT INTO tickets (id, subject, status, priority, requester, created_by, created_at, updated_at, "
                "conversation_key) VALUES (gen_random_uuid(), 's', 'open', 'normal', '{}', 'api:k', now(), now(), "
                "'wechat:#0123')"))
        with pytest.raises(Exception, match="downgrading below 0019"):
            migrate(url, "0018", down=True)
        async with engine.begin() as conn:
            await conn.execute(text("UPDATE tickets SET conversation_key = 'wechat:oOld'"))
        migrate(url, "0018", down=True)
        migrate(url, "head")
        async with engine.connect() as conn:
            assert await conn.scalar(text("SELECT conversation_key FROM tickets")) == "wechat:oOld"
    finally:
        await engine.dispose()
