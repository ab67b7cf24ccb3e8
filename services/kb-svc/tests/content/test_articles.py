"""Content through the API: places, drafts vs published, version history, If-Match, roles,
events in the outbox, bad input, Chinese and English content."""

import asyncio

import orjson
import pytest
from sqlalchemy import text


async def _place(api, headers, locale="zh-CN"):
    c = await api.post("/v1/kb/categories", json={"name": "账户与支付", "locale": locale}, headers=headers["editor"])
    assert c.status_code == 201, c.text
    s = await api.post("/v1/kb/sections", json={"category_id": c.json()["id"], "name": "退款", "locale": locale},
                       headers=headers["editor"])
    assert s.status_code == 201, s.text
    return c.json(), s.json()


async def _article(api, headers, section_id, **fields):
    body = {"section_id": section_id, "locale": "zh-CN", "title": "如何申请退款",
            "body_html": "<p>在订单页点击<b>申请退款</b>。</p>", "labels": ["退款", "billing"], "visibility": "public",
            **fields}
    r = await api.post("/v1/kb/articles", json=body, headers=headers["editor"])
    assert r.status_code == 201, r.text
    return r


async def test_create_edit_publish_and_history(api, headers):
    category, section = await _place(api, headers)
    created = await _article(api, headers, section["id"])
    article = created.json()
    assert created.headers["etag"] == 'W/"1"'
    assert article["category_id"] == category["id"] and article["owner_id"] == "u-editor-1"
    [t] = article["translations"]
    assert (t["locale"], t["status"], t["draft_title"], t["published_title"]) == ("zh-CN", "draft", "如何申请退款", None)

    published = await api.post(f"/v1/kb/articles/{article['id']}/publish", json={"locale": "zh-cn"},
                               headers=headers["editor"])
    assert published.status_code == 200, published.text
    [t] = published.json()["translations"]
    assert (t["status"], t["published_title"], t["published_version"], t["published_by"]) == (
        "published", "如何申请退款", 1, "u-editor-1")
    assert not t["has_unpublished_changes"]

    # an English translation by another editor, then a new Chinese draft
    etag = published.headers["etag"]
    en = await api.put(f"/v1/kb/articles/{article['id']}/translations/en",
                       json={"title": "Refund policy and timelines", "body_html": "<p>Refunds take 5 days.</p>"},
                       headers={**headers["editor2"], "If-Match": etag})
    assert en.status_code == 201, en.text
    zh = await api.put(f"/v1/kb/articles/{article['id']}/translations/zh-CN",
                       json={"title": "如何申请退款（新版）", "body_html": "<p>新流程</p>"},
                       headers={**headers["editor"], "If-Match": en.headers["etag"]})
    assert zh.status_code == 200, zh.text
    by_locale = {t["locale"]: t for t in zh.json()["translations"]}
    assert by_locale["zh-CN"]["published_title"] == "如何申请退款"  # the draft edit leaves readers' copy alone
    assert by_locale["zh-CN"]["draft_title"] == "如何申请退款（新版）" and by_locale["zh-CN"]["has_unpublished_changes"]
    assert by_locale["en"]["status"] == "draft"

    history = await api.get(f"/v1/kb/articles/{article['id']}/versions", headers=headers["agent"])
    assert history.status_code == 200
    items = history.json()["items"]
    assert [(v["number"], v["locale"], v["action"], v["actor"], v["title"]) for v in items] == [
        (4, "zh-CN", "draft", "u-editor-1", "如何申请退款（新版）"),
        (3, "en", "draft", "u-editor-2", "Refund policy and timelines"),
        (2, "zh-CN", "published", "u-editor-1", "如何申请退款"),
        (1, "zh-CN", "draft", "u-editor-1", "如何申请退款"),
    ]
    assert [v["at"] for v in items] == sorted((v["at"] for v in items), reverse=True)
    only_en = await api.get(f"/v1/kb/articles/{article['id']}/versions?locale=en", headers=headers["agent"])
    assert [v["number"] for v in only_en.json()["items"]] == [3]
    first = await api.get(f"/v1/kb/articles/{article['id']}/versions/2", headers=headers["supervisor"])
    assert first.status_code == 200 and first.json()["body_html"] == "<p>在订单页点击<b>申请退款</b>。</p>"
    assert (await api.get(f"/v1/kb/articles/{article['id']}/versions/9", headers=headers["agent"])).status_code == 404

    # pages of history
    page1 = await api.get(f"/v1/kb/articles/{article['id']}/versions?limit=3", headers=headers["agent"])
    page2 = await api.get(f"/v1/kb/articles/{article['id']}/versions?limit=3&cursor={page1.json()['next_cursor']}",
                          headers=headers["agent"])
    assert [v["number"] for v in page2.json()["items"]] == [1] and page2.json()["next_cursor"] is None


async def test_publish_emits_exactly_one_event_in_the_outbox(api, headers, db):
    _, section = await _place(api, headers)
    article = (await _article(api, headers, section["id"])).json()
    async with db.connect() as conn:
        assert await conn.scalar(text("SELECT count(*) FROM outbox")) == 0  # a draft is no event
    r = await api.post(f"/v1/kb/articles/{article['id']}/publish", json={"locale": "zh-CN"}, headers=headers["admin"])
    assert r.status_code == 200, r.text
    async with db.connect() as conn:
        rows = (await conn.execute(text("SELECT event_type, topic, key, payload FROM outbox"))).all()
    assert len(rows) == 1
    event_type, topic, key, payload = rows[0]
    assert (event_type, topic, key) == ("kb.article_published", "kb.events", article["id"])
    data = (orjson.loads(payload) if isinstance(payload, (str, bytes)) else payload)["data"]
    assert data["article_id"] == article["id"] and data["locale"] == "zh-CN" and data["version"] == 1
    assert data["title"] == "如何申请退款" and data["visibility"] == "public" and data["published_by"] == "u-admin-1"
    assert data["labels"] == ["退款", "billing"] and data["category_id"] == article["category_id"]


async def test_unpublish_archive_restore(api, headers, db):
    _, section = await _place(api, headers)
    article = (await _article(api, headers, section["id"])).json()
    aid = article["id"]
    assert (await api.post(f"/v1/kb/articles/{aid}/unpublish", json={"locale": "zh-CN"},
                           headers=headers["editor"])).status_code == 409  # nothing published yet
    await api.post(f"/v1/kb/articles/{aid}/publish", json={"locale": "zh-CN"}, headers=headers["editor"])
    archived = await api.post(f"/v1/kb/articles/{aid}/archive", headers=headers["editor"])
    assert archived.status_code == 200 and archived.json()["state"] == "archived"
    assert (await api.post(f"/v1/kb/articles/{aid}/publish", json={"locale": "zh-CN"},
                           headers=headers["editor"])).status_code == 409
    restored = await api.post(f"/v1/kb/articles/{aid}/restore", headers=headers["editor"])
    assert restored.status_code == 200 and restored.json()["state"] == "active"
    [t] = restored.json()["translations"]
    assert t["status"] == "published" and t["published_version"] == 2
    unpublished = await api.post(f"/v1/kb/articles/{aid}/unpublish", json={"locale": "zh-CN"},
                                 headers=headers["editor"])
    [t] = unpublished.json()["translations"]
    assert t["status"] == "unpublished" and t["published_title"] is None and t["draft_title"] == "如何申请退款"
    again = await api.post(f"/v1/kb/articles/{aid}/publish", json={"locale": "zh-CN"}, headers=headers["editor"])
    assert again.json()["translations"][0]["published_version"] == 3
    history = (await api.get(f"/v1/kb/articles/{aid}/versions", headers=headers["editor"])).json()["items"]
    assert [v["action"] for v in history] == ["published", "unpublished", "restored", "archived", "published", "draft"]
    async with db.connect() as conn:
        types = (await conn.scalars(text("SELECT event_type FROM outbox ORDER BY seq"))).all()
    assert types == ["kb.article_published", "kb.article_unpublished", "kb.article_published",
                     "kb.article_unpublished", "kb.article_published"]


async def test_if_match_on_article_edits(api, headers):
    _, section = await _place(api, headers)
    article = (await _article(api, headers, section["id"])).json()
    url = f"/v1/kb/articles/{article['id']}"
    missing = await api.patch(url, json={"labels": ["x"]}, headers=headers["editor"])
    assert missing.status_code == 428 and missing.headers["content-type"] == "application/problem+json"
    assert (await api.put(f"{url}/translations/en", json={"title": "t"}, headers=headers["editor"])).status_code == 428

    async def patch(h, labels):
        return await api.patch(url, json={"labels": labels}, headers={**h, "If-Match": 'W/"1"'})

    first, second = await asyncio.gather(patch(headers["editor"], ["a"]), patch(headers["editor2"], ["b"]))
    assert sorted([first.status_code, second.status_code]) == [200, 412]
    loser = first if first.status_code == 412 else second
    assert loser.json()["current_version"] == 2
    winner = first if first.status_code == 200 else second
    assert winner.headers["etag"] == 'W/"2"'
    current = await api.get(url, headers=headers["agent"])
    assert current.json()["labels"] in (["a"], ["b"]) and current.headers["etag"] == 'W/"2"'
    stale = await api.put(f"{url}/translations/en", json={"title": "t"}, headers={**headers["editor"],
                                                                                   "If-Match": 'W/"1"'})
    assert stale.status_code == 412


@pytest.mark.parametrize("role", ["agent", "supervisor", "channel", "public"])
async def test_only_editors_and_admins_write(api, headers, role):
    category, section = await _place(api, headers)
    article = (await _article(api, headers, section["id"])).json()
    h = headers[role]
    expected = 401 if role in ("public", "channel") else 403  # a channel key is no signed-in user
    assert (await api.post("/v1/kb/categories", json={"name": "n", "locale": "en"}, headers=h)).status_code == expected
    assert (await api.post("/v1/kb/articles", json={"section_id": section["id"], "locale": "en", "title": "t"},
                           headers=h)).status_code == expected
    assert (await api.post(f"/v1/kb/articles/{article['id']}/publish", json={"locale": "zh-CN"},
                           headers=h)).status_code == expected
    assert (await api.patch(f"/v1/kb/articles/{article['id']}", json={"labels": []},
                            headers={**h, "If-Match": 'W/"1"'})).status_code == expected
    reads = await api.get(f"/v1/kb/articles/{article['id']}", headers=h)
    assert reads.status_code == (200 if role in ("agent", "supervisor") else expected)
    if role in ("agent", "supervisor"):  # staff read drafts
        assert reads.json()["translations"][0]["draft_title"] == "如何申请退款"


async def test_categories_and_sections(api, headers):
    category, section = await _place(api, headers)
    other = (await api.post("/v1/kb/categories", json={"name": "Getting started", "locale": "en"},
                            headers=headers["admin"])).json()
    assert other["position"] > category["position"]
    listed = await api.get("/v1/kb/categories?limit=1", headers=headers["agent"])
    assert [c["id"] for c in listed.json()["items"]] == [category["id"]]
    nxt = await api.get(f"/v1/kb/categories?limit=1&cursor={listed.json()['next_cursor']}", headers=headers["agent"])
    assert [c["id"] for c in nxt.json()["items"]] == [other["id"]] and nxt.json()["next_cursor"] is None
    only_en = await api.get("/v1/kb/categories?locale=EN", headers=headers["agent"])
    assert [c["id"] for c in only_en.json()["items"]] == [other["id"]]
    # not empty: 409; move the section, then both deletes work in order
    assert (await api.delete(f"/v1/kb/categories/{category['id']}", headers=headers["editor"])).status_code == 409
    article = (await _article(api, headers, section["id"])).json()
    assert (await api.delete(f"/v1/kb/sections/{section['id']}", headers=headers["editor"])).status_code == 409
    moved = await api.patch(f"/v1/kb/sections/{section['id']}", json={"category_id": other["id"]},
                            headers=headers["editor"])
    assert moved.status_code == 200 and moved.json()["category_id"] == other["id"]
    got = await api.get(f"/v1/kb/articles/{article['id']}", headers=headers["agent"])
    assert got.json()["category_id"] == other["id"]
    assert (await api.delete(f"/v1/kb/categories/{category['id']}", headers=headers["editor"])).status_code == 204
    assert (await api.get(f"/v1/kb/categories/{category['id']}", headers=headers["agent"])).status_code == 404
    renamed = await api.patch(f"/v1/kb/categories/{other['id']}", json={"name": "入门"},
                              headers={**headers["editor"], "If-Match": 'W/"9"'})
    assert renamed.status_code == 412
    renamed = await api.patch(f"/v1/kb/categories/{other['id']}", json={"name": "入门"}, headers=headers["editor"])
    assert renamed.status_code == 200 and renamed.json()["name"] == "入门" and renamed.json()["version"] == 2


async def test_article_list_filters_and_pages(api, headers):
    category, section = await _place(api, headers)
    a = (await _article(api, headers, section["id"], labels=["refund"])).json()
    b = (await _article(api, headers, section["id"], locale="en", title="Reset your password", labels=["account"],
                        owner_id="u-editor-2", review_at="2020-01-01T00:00:00Z", visibility="agents")).json()
    await api.post(f"/v1/kb/articles/{b['id']}/publish", json={"locale": "en"}, headers=headers["editor"])

    async def ids(query):
        r = await api.get(f"/v1/kb/articles?{query}", headers=headers["agent"])
        assert r.status_code == 200, r.text
        return [i["id"] for i in r.json()["items"]]

    assert await ids("") == [b["id"], a["id"]]
    assert await ids("label=refund") == [a["id"]]
    assert await ids("locale=en") == [b["id"]]
    assert await ids("owner_id=u-editor-2") == [b["id"]]
    assert await ids("review_due=true") == [b["id"]]
    assert await ids("review_due=false") == [a["id"]]
    assert await ids("status=published") == [b["id"]]
    assert await ids("visibility=agents") == [b["id"]]
    assert await ids(f"category_id={category['id']}&state=active") == [b["id"], a["id"]]
    assert await ids("state=archived") == []
    first = await api.get("/v1/kb/articles?limit=1", headers=headers["agent"])
    second = await api.get(f"/v1/kb/articles?limit=1&cursor={first.json()['next_cursor']}", headers=headers["agent"])
    assert [i["id"] for i in second.json()["items"]] == [a["id"]]
    item = first.json()["items"][0]
    assert item["review_due"] is True and item["translations"] == [
        {"locale": "en", "title": "Reset your password", "status": "published"}]
    assert (await api.get("/v1/kb/articles?cursor=bm9wZQ", headers=headers["agent"])).status_code == 400
    assert (await api.get("/v1/kb/articles?limit=1000", headers=headers["agent"])).status_code == 422
    assert (await api.get("/v1/kb/articles?locale=not a tag", headers=headers["agent"])).status_code == 422


async def test_idempotency_key_on_creates(api, headers, db):
    _, section = await _place(api, headers)
    body = {"section_id": section["id"], "locale": "en", "title": "Refund policy and timelines"}
    key = {"Idempotency-Key": "create-refund-article-1"}
    first = await api.post("/v1/kb/articles", json=body, headers={**headers["editor"], **key})
    again = await api.post("/v1/kb/articles", json=body, headers={**headers["editor"], **key})
    assert first.status_code == again.status_code == 201
    assert again.json()["id"] == first.json()["id"] and again.headers["idempotent-replayed"] == "true"
    other = await api.post("/v1/kb/articles", json={**body, "title": "Another"}, headers={**headers["editor"], **key})
    assert other.status_code == 422 and other.json()["type"].endswith("idempotency-key-reused")
    # keys are per caller: another editor's same key is their own
    mine = await api.post("/v1/kb/articles", json=body, headers={**headers["editor2"], **key})
    assert mine.status_code == 201 and mine.json()["id"] != first.json()["id"]
    async with db.connect() as conn:
        assert await conn.scalar(text("SELECT count(*) FROM kb_articles")) == 2
    upload = {"Content-Type": "text/plain", "Idempotency-Key": "up-1"}
    url = f"/v1/kb/articles/{first.json()['id']}/attachments?filename=a.txt"
    a1 = await api.post(url, content=b"hello", headers={**headers["editor"], **upload})
    a2 = await api.post(url, content=b"hello", headers={**headers["editor"], **upload})
    assert a1.status_code == a2.status_code == 201 and a1.json()["id"] == a2.json()["id"]
    assert (await api.post(url, content=b"other", headers={**headers["editor"], **upload})).status_code == 422


async def test_repeating_a_save_or_a_publish_changes_nothing(api, headers, db):
    _, section = await _place(api, headers)
    article = (await _article(api, headers, section["id"])).json()
    url = f"/v1/kb/articles/{article['id']}"
    body = {"title": "如何申请退款", "body_html": "<p>在订单页点击<b>申请退款</b>。</p>"}
    same = await api.put(f"{url}/translations/zh-CN", json=body, headers={**headers["editor"], "If-Match": 'W/"1"'})
    assert same.status_code == 200 and same.headers["etag"] == 'W/"1"'
    for _ in range(2):
        r = await api.post(f"{url}/publish", json={"locale": "zh-CN"}, headers=headers["editor"])
        assert r.status_code == 200 and r.json()["translations"][0]["published_version"] == 1
    history = (await api.get(f"{url}/versions", headers=headers["agent"])).json()["items"]
    assert [v["action"] for v in history] == ["published", "draft"]
    async with db.connect() as conn:
        assert await conn.scalar(text("SELECT count(*) FROM outbox")) == 1


async def test_revert_a_draft_and_delete_a_translation(api, headers):
    _, section = await _place(api, headers)
    article = (await _article(api, headers, section["id"])).json()
    url = f"/v1/kb/articles/{article['id']}"
    await api.post(f"{url}/publish", json={"locale": "zh-CN"}, headers=headers["editor"])  # history 2
    etag = (await api.get(url, headers=headers["editor"])).headers["etag"]
    edited = await api.put(f"{url}/translations/zh-CN", json={"title": "改坏了", "body_html": "<p>错误</p>"},
                           headers={**headers["editor"], "If-Match": etag})  # history 3
    assert (await api.post(f"{url}/versions/2/revert", headers=headers["editor"])).status_code == 428
    assert (await api.post(f"{url}/versions/2/revert", headers=headers["agent"])).status_code == 403
    reverted = await api.post(f"{url}/versions/2/revert", headers={**headers["editor2"],
                                                                   "If-Match": edited.headers["etag"]})
    assert reverted.status_code == 200, reverted.text
    [t] = reverted.json()["translations"]
    assert (t["draft_title"], t["draft_body_html"], t["draft_updated_by"]) == (
        "如何申请退款", "<p>在订单页点击<b>申请退款</b>。</p>", "u-editor-2")
    assert not t["has_unpublished_changes"]
    assert (await api.post(f"{url}/versions/99/revert", headers={**headers["editor"],
                                                                 "If-Match": reverted.headers["etag"]})).status_code == 404

    # translations: a published one or the last one cannot go; a draft one can, its history stays
    en = await api.put(f"{url}/translations/en", json={"title": "How to get a refund"},
                       headers={**headers["editor"], "If-Match": reverted.headers["etag"]})
    tag = en.headers["etag"]
    assert (await api.delete(f"{url}/translations/zh-CN", headers={**headers["editor"], "If-Match": tag})
            ).status_code == 409
    assert (await api.delete(f"{url}/translations/en", headers=headers["editor"])).status_code == 428
    gone = await api.delete(f"{url}/translations/en", headers={**headers["editor"], "If-Match": tag})
    assert gone.status_code == 200 and [t["locale"] for t in gone.json()["translations"]] == ["zh-CN"]
    history = (await api.get(f"{url}/versions?locale=en", headers=headers["agent"])).json()["items"]
    assert [(v["action"], v["title"]) for v in history] == [("draft", "How to get a refund")]
    unpublished = await api.post(f"{url}/unpublish", json={"locale": "zh-CN"}, headers=headers["editor"])
    assert (await api.delete(f"{url}/translations/zh-CN", headers={**headers["editor"],
                                                                   "If-Match": unpublished.headers["etag"]})
            ).status_code == 409  # the last one


async def test_a_body_at_the_size_limit_is_published_whole(api, headers):
    from helpdesk_common.html_sanitize import MAX_HTML

    _, section = await _place(api, headers)
    body = ("1 < 2 & 3 > 2 " * (MAX_HTML // 14 + 1))[:MAX_HTML]  # escaping makes it longer than the limit
    article = (await _article(api, headers, section["id"], body_html=body)).json()
    draft = article["translations"][0]["draft_body_html"]
    assert len(draft) > MAX_HTML
    published = await api.post(f"/v1/kb/articles/{article['id']}/publish", json={"locale": "zh-CN"},
                               headers=headers["editor"])
    [t] = published.json()["translations"]
    assert t["published_body_html"] == draft and not t["has_unpublished_changes"]
