"""POST /v1/kb/suggestions and its views over HTTP: at most 5 articles the caller may read, the
subject weighing more than the description, a hash of the question instead of its text, views
only of suggested articles, bad input as problems, and the per-address limit."""

from __future__ import annotations

import uuid

from sqlalchemy import text

from .conftest import customer_headers, publish

CLIENT = "x-kb-client"


async def _suggest(kb, body, headers=None, address="203.0.113.7"):
    return await kb.post("/v1/kb/suggestions", json=body, headers={CLIENT: address, **(headers or {})})


async def test_at_most_five_visible_articles_and_the_question_is_not_stored(kb, headers, db):
    editor = headers["editor"]
    public = [await publish(kb, editor, title=f"如何申请退款（第{i}种情况）", body=f"<p>退款步骤 {i}：在订单页申请退款。</p>")
              for i in range(7)]
    customers = await publish(kb, editor, title="会员退款规则", body="<p>会员的退款规则。</p>", visibility="customers")
    agents = await publish(kb, editor, title="退款内部处理流程", body="<p>客服的退款处理。</p>", visibility="agents")
    draft = await publish(kb, editor, title="退款草稿", body="<p>退款</p>", publish=False)

    r = await _suggest(kb, {"subject": "我想申请退款", "description": "订单已经付款，怎么退款？", "language": "zh-CN"})
    assert r.status_code == 200, r.text
    body = r.json()
    ids = [i["id"] for i in body["items"]]
    assert 1 <= len(ids) <= 5
    assert set(ids) <= {a["id"] for a in public}
    for item in body["items"]:
        assert item["url"].endswith(f"suggestion_id={body['suggestion_id']}")
        assert "<mark>" in item["snippet"] or "退款" in item["title"]

    seen = {i["id"] for i in (await _suggest(kb, {"subject": "退款规则 内部处理", "language": "zh-CN"},
                                             customer_headers())).json()["items"]}
    assert customers["id"] in seen and agents["id"] not in seen and draft["id"] not in seen
    staff = (await _suggest(kb, {"subject": "退款内部处理", "ticket_id": str(uuid.uuid4())}, headers["agent"])).json()
    assert agents["id"] in {i["id"] for i in staff["items"]} and draft["id"] not in {i["id"] for i in staff["items"]}

    async with db.connect() as conn:
        rows = (await conn.execute(text("SELECT * FROM kb_suggestions ORDER BY created_at"))).mappings().all()
    assert [r["viewer_kind"] for r in rows] == ["public", "customer", "staff"]
    assert [r["channel"] for r in rows] == ["web", "web", "agent"]
    assert rows[0]["article_ids"] == [uuid.UUID(i) for i in ids]
    assert rows[1]["customer_id"] is not None and rows[2]["context_ticket_id"] is not None
    assert all(len(r["query_hash"]) == 64 for r in rows)
    stored = " ".join(str(v) for r in rows for v in r.values())
    assert "申请退款" not in stored and "付款" not in stored


async def test_subject_outweighs_description(kb, headers):
    editor = headers["editor"]
    invoice = await publish(kb, editor, title="How to download an invoice", body="<p>Invoices are in billing.</p>",
                            locale="en")
    password = await publish(kb, editor, title="Reset your password", body="<p>Use the reset link.</p>", locale="en")
    r = await _suggest(kb, {"subject": "download invoice",
                            "description": "I also forgot my password once but that is solved", "language": "en"})
    ids = [i["id"] for i in r.json()["items"]]
    assert ids[0] == invoice["id"]
    assert password["id"] in ids  # the description still counts


async def test_nothing_matches_gives_an_empty_list_and_a_suggestion_id(kb, headers):
    await publish(kb, headers["editor"], title="如何申请退款", body="<p>退款</p>")
    r = await _suggest(kb, {"subject": "zzqx wvvk", "description": ""})
    assert r.status_code == 200 and r.json()["items"] == [] and uuid.UUID(r.json()["suggestion_id"])


async def test_views_only_of_suggested_articles(kb, headers, db):
    editor = headers["editor"]
    shown = await publish(kb, editor, title="如何申请退款", body="<p>退款</p>")
    other = await publish(kb, editor, title="修改收货地址", body="<p>地址</p>")
    suggestion = (await _suggest(kb, {"subject": "申请退款"})).json()
    sid = suggestion["suggestion_id"]
    assert [i["id"] for i in suggestion["items"]] == [shown["id"]]

    for _ in range(2):  # idempotent
        r = await kb.post(f"/v1/kb/suggestions/{sid}/views", json={"article_id": shown["id"]})
        assert r.status_code == 204, r.text
    r = await kb.post(f"/v1/kb/suggestions/{sid}/views", json={"article_id": other["id"]})
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
    assert r.json()["errors"][0]["code"] == "not_suggested"
    r = await kb.post(f"/v1/kb/suggestions/{uuid.uuid4()}/views", json={"article_id": shown["id"]})
    assert r.status_code == 404
    # a public read from the suggestion's link is a view too; a foreign suggestion id is ignored
    r = await kb.get(f"/v1/kb/public/articles/{other['id']}", params={"suggestion_id": sid})
    assert r.status_code == 200
    async with db.connect() as conn:
        views = (await conn.execute(text("SELECT article_id FROM kb_suggestion_views"))).scalars().all()
    assert views == [uuid.UUID(shown["id"])]


async def test_bad_input_is_a_problem(kb, headers):
    for body in ({}, {"subject": ""}, {"subject": "   "}, {"subject": "x" * 501}, {"subject": "a\x00b"},
                 {"subject": "退款", "language": "not a tag!"}, {"subject": "退款", "unknown": 1},
                 {"subject": "退款", "channel": "WEB FORM"}, {"subject": 5},
                 {"subject": "退款", "ticket_id": str(uuid.uuid4())},  # ticket_id: users only
                 {"subject": "退款", "description": "x" * 20_001}):
        r = await _suggest(kb, body, address=str(uuid.uuid4()))
        assert r.status_code == 422, (body, r.text)
        assert r.headers["content-type"] == "application/problem+json"
    r = await kb.post("/v1/kb/suggestions", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.headers["content-type"] == "application/problem+json"
    r = await kb.post(f"/v1/kb/suggestions/{uuid.uuid4()}/views", json={"article_id": "nope"})
    assert r.status_code == 422
    r = await kb.post("/v1/kb/suggestions", json={"subject": "退款"}, headers={"Authorization": "Bearer hkc1.forged"})
    assert r.status_code == 401


async def test_rate_limited_per_address_with_retry_after(kb, headers):
    # KB_SUGGESTIONS_BURST=5 at 0.01 a second: the sixth from one address waits
    for _ in range(5):
        assert (await _suggest(kb, {"subject": "退款"}, address="198.51.100.1")).status_code == 200
    r = await _suggest(kb, {"subject": "退款"}, address="198.51.100.1")
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
    assert r.headers["content-type"] == "application/problem+json"
    assert (await _suggest(kb, {"subject": "退款"}, address="198.51.100.2")).status_code == 200
    # users are not limited here (the gateway limits them per user)
    for _ in range(6):
        assert (await _suggest(kb, {"subject": "退款"}, headers["agent"], address="198.51.100.1")).status_code == 200


async def test_anonymous_callers_through_the_gateway_are_limited_by_their_signed_address_digest(kb):
    from helpdesk_common.identity import Principal
    from helpdesk_common.testing import identity_headers

    visitor = identity_headers(Principal(kind="visitor", id="anon:" + "a" * 32))
    other = identity_headers(Principal(kind="visitor", id="anon:" + "b" * 32))
    for i in range(5):  # a spoofed X-KB-Client does not move a signed caller to another bucket
        r = await kb.post("/v1/kb/suggestions", json={"subject": "退款"}, headers={**visitor, CLIENT: f"x{i}"})
        assert r.status_code == 200, r.text
    assert (await kb.post("/v1/kb/suggestions", json={"subject": "退款"},
                          headers={**visitor, CLIENT: "fresh"})).status_code == 429
    assert (await kb.post("/v1/kb/suggestions", json={"subject": "退款"}, headers=other)).status_code == 200
