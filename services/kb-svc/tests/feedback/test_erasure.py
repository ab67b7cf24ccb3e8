"""kb-svc's erasure of a customer, its handler on the real database: the customer's vote keeps
counting without its comment, a redelivery acknowledges again and changes nothing more, other
voters are untouched; the export lists the customer's votes (admins only)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from helpdesk_common import events
from helpdesk_common.db import create_raw_pool

from kb_svc.privacy.handlers import handle_erasure_requested

from .conftest import customer_headers, publish

COMMENT = "退款太慢了，请打 13912345678 联系我"


async def test_erasure_drops_the_customers_comments(kb, headers, kb_db):
    article = await publish(kb, headers["editor"], title="退款多久到账", body="<p>三个工作日</p>")
    me, other = uuid.uuid4(), uuid.uuid4()
    url = f"/v1/kb/articles/{article['id']}/votes"
    for who in (me, other):
        r = await kb.post(url, json={"helpful": False, "comment": COMMENT}, headers=customer_headers(who))
        assert r.status_code in (200, 201), r.text
    export = await kb.get(f"/v1/privacy/customers/{me}/export", headers=headers["admin"])
    assert export.status_code == 200 and [v["comment"] for v in export.json()["votes"]] == [COMMENT]
    assert (await kb.get(f"/v1/privacy/customers/{me}/export", headers=headers["agent"])).status_code == 403

    pool = await create_raw_pool(kb_db, size=1)
    try:
        ask = events.PrivacyErasureRequested(source="customer-svc", subject=str(me), data=events.ErasureRequestedData(
            request_id=uuid.uuid4(), customer_id=me, requested_at=datetime.now(UTC)))
        for _ in range(2):  # a redelivery
            async with pool.acquire() as conn, conn.transaction():
                await handle_erasure_requested(conn, ask)
        async with pool.acquire() as conn:
            votes = {r["voter"]: (r["helpful"], r["comment"]) for r in await conn.fetch(
                "SELECT voter, helpful, comment FROM kb_article_votes")}
            acks = [events.decode(r["payload"]) for r in await conn.fetch(
                "SELECT payload FROM outbox WHERE event_type = 'privacy.erasure_completed'")]
    finally:
        await pool.close()
    assert votes == {f"customer:{me}": (False, None), f"customer:{other}": (False, COMMENT)}
    assert [(a.data.request_id, a.data.service) for a in acks] == [(ask.data.request_id, "kb-svc")] * 2
