"""Public reads: drafts never show, visibility by caller (public / customers / agents ×
anonymous / customer token / agent / editor), existence is private, ETag / 304, Cache-Control."""

import time
import uuid

import pytest

from helpdesk_common.testing import running_app, service_env

KEY = "k" * 40


@pytest.fixture
async def kb(infra, kb_db, monkeypatch):
    """The API with customer tokens configured (access.py)."""
    service_env(monkeypatch, infra, "KB_", kb_db)
    monkeypatch.setenv("KB_CONSUMERS_ENABLED", "false")
    monkeypatch.setenv("KB_RELAY_ENABLED", "false")
    monkeypatch.setenv("KB_CUSTOMER_TOKEN_KEY", KEY)
    from kb_svc.config import Settings
    from kb_svc.main import create_app

    async with running_app(create_app(Settings())) as client:
        yield client


def customer_headers():
    from kb_svc.access import mint_customer_token

    token = mint_customer_token(KEY.encode(), customer_id=uuid.uuid4(), expires=int(time.time()) + 600)
    return {"Authorization": f"Bearer {token}"}


async def _published(kb, headers, *, visibility="public", publish=True, locale="zh-CN", title="如何申请退款",
                     body="<p>在订单页点击申请退款。</p>"):
    c = (await kb.post("/v1/kb/categories", json={"name": "帮助", "locale": locale}, headers=headers["editor"])).json()
    s = (await kb.post("/v1/kb/sections", json={"category_id": c["id"], "name": "退款", "locale": locale},
                       headers=headers["editor"])).json()
    a = (await kb.post("/v1/kb/articles", json={"section_id": s["id"], "locale": locale, "title": title,
                                               "body_html": body, "labels": [], "visibility": visibility},
                       headers=headers["editor"])).json()
    if publish:
        r = await kb.post(f"/v1/kb/articles/{a['id']}/publish", json={"locale": locale}, headers=headers["editor"])
        assert r.status_code == 200, r.text
    return c, s, a


async def test_a_draft_edit_is_invisible_until_published(kb, headers):
    _, _, article = await _published(kb, headers)
    url = f"/v1/kb/public/articles/{article['id']}?locale=zh-CN"
    first = await kb.get(url)
    assert first.status_code == 200, first.text
    assert first.json()["title"] == "如何申请退款" and first.json()["body_html"] == "<p>在订单页点击申请退款。</p>"
    current = await kb.get(f"/v1/kb/articles/{article['id']}", headers=headers["editor"])
    edited = await kb.put(f"/v1/kb/articles/{article['id']}/translations/zh-CN",
                          json={"title": "退款流程（草稿）", "body_html": "<p>草稿内容</p>"},
                          headers={**headers["editor"], "If-Match": current.headers["etag"]})
    assert edited.status_code == 200
    still = await kb.get(url)
    assert still.json()["title"] == "如何申请退款" and "草稿" not in still.text
    # an English draft is no public translation either
    await kb.put(f"/v1/kb/articles/{article['id']}/translations/en", json={"title": "How to get a refund"},
                 headers={**headers["editor"], "If-Match": edited.headers["etag"]})
    assert (await kb.get(f"/v1/kb/public/articles/{article['id']}?locale=en")).status_code == 404
    await kb.post(f"/v1/kb/articles/{article['id']}/publish", json={"locale": "zh-CN"}, headers=headers["editor"])
    after = await kb.get(url)
    assert after.json()["title"] == "退款流程（草稿）" and after.json()["version"] == 2
    assert after.json()["available_locales"] == ["zh-CN"]
    assert (after.json()["category_name"], after.json()["section_name"]) == ("帮助", "退款")  # breadcrumbs


async def test_a_never_published_article_is_a_404_like_an_unknown_one(kb, headers):
    _, _, article = await _published(kb, headers, publish=False)
    for url in (f"/v1/kb/public/articles/{article['id']}", f"/v1/kb/public/articles/{uuid.uuid4()}"):
        r = await kb.get(url)
        assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(("visibility", "caller", "readable"), [
    ("public", "anonymous", True), ("public", "customer", True), ("public", "agent", True),
    ("public", "editor", True),
    ("customers", "anonymous", False), ("customers", "customer", True), ("customers", "agent", True),
    ("customers", "editor", True),
    ("agents", "anonymous", False), ("agents", "customer", False), ("agents", "agent", True),
    ("agents", "editor", True),
])
async def test_visibility_by_caller(kb, headers, visibility, caller, readable):
    category, section, article = await _published(kb, headers, visibility=visibility)
    h = {"anonymous": {}, "customer": customer_headers(), "agent": headers["agent"],
         "editor": headers["editor"]}[caller]
    r = await kb.get(f"/v1/kb/public/articles/{article['id']}", headers=h)
    assert r.status_code == (200 if readable else 404), r.text
    listing = await kb.get(f"/v1/kb/public/sections/{section['id']}/articles", headers=h)
    assert [i["id"] for i in listing.json()["items"]] == ([article["id"]] if readable else [])
    categories = await kb.get("/v1/kb/public/categories", headers=h)
    assert [c["id"] for c in categories.json()["items"]] == ([category["id"]] if readable else [])
    sections = await kb.get(f"/v1/kb/public/categories/{category['id']}/sections", headers=h)
    assert sections.status_code == (200 if readable else 404)
    if readable:
        expected = "public, max-age=300" if visibility == "public" else "private, no-cache"
        assert r.headers["cache-control"] == expected


async def test_a_forged_customer_token_is_refused_not_downgraded(kb, headers):
    _, _, article = await _published(kb, headers, visibility="customers")
    r = await kb.get(f"/v1/kb/public/articles/{article['id']}", headers={"Authorization": "Bearer hkc1.forged.1.x"})
    assert r.status_code == 401


async def test_archived_and_unpublished_articles_disappear(kb, headers):
    _, _, article = await _published(kb, headers)
    url = f"/v1/kb/public/articles/{article['id']}"
    assert (await kb.get(url)).status_code == 200
    await kb.post(f"/v1/kb/articles/{article['id']}/archive", headers=headers["editor"])
    assert (await kb.get(url)).status_code == 404
    await kb.post(f"/v1/kb/articles/{article['id']}/restore", headers=headers["editor"])
    assert (await kb.get(url)).status_code == 200
    await kb.post(f"/v1/kb/articles/{article['id']}/unpublish", json={"locale": "zh-CN"}, headers=headers["editor"])
    assert (await kb.get(url)).status_code == 404


async def test_etag_and_if_none_match(kb, headers):
    _, _, article = await _published(kb, headers)
    url = f"/v1/kb/public/articles/{article['id']}?locale=zh-CN"
    first = await kb.get(url)
    tag = first.headers["etag"]
    again = await kb.get(url, headers={"If-None-Match": tag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == tag
    # a label change (what readers see around the text) changes the tag, so does a republish
    current = await kb.get(f"/v1/kb/articles/{article['id']}", headers=headers["editor"])
    await kb.patch(f"/v1/kb/articles/{article['id']}", json={"labels": ["退款"]},
                   headers={**headers["editor"], "If-Match": current.headers["etag"]})
    changed = await kb.get(url, headers={"If-None-Match": tag})
    assert changed.status_code == 200 and changed.json()["labels"] == ["退款"] and changed.headers["etag"] != tag
    # making it agents-only: the cached copy is not confirmed to an anonymous reader
    current = await kb.get(f"/v1/kb/articles/{article['id']}", headers=headers["editor"])
    await kb.patch(f"/v1/kb/articles/{article['id']}", json={"visibility": "agents"},
                   headers={**headers["editor"], "If-Match": current.headers["etag"]})
    assert (await kb.get(url, headers={"If-None-Match": changed.headers["etag"]})).status_code == 404


async def test_the_translation_follows_accept_language(kb, headers):
    _, _, article = await _published(kb, headers, locale="en", title="Refund policy and timelines",
                                     body="<p>Refunds take 5 working days.</p>")
    current = await kb.get(f"/v1/kb/articles/{article['id']}", headers=headers["editor"])
    await kb.put(f"/v1/kb/articles/{article['id']}/translations/zh-CN",
                 json={"title": "退款政策与时效", "body_html": "<p>退款需5个工作日。</p>"},
                 headers={**headers["editor"], "If-Match": current.headers["etag"]})
    await kb.post(f"/v1/kb/articles/{article['id']}/publish", json={"locale": "zh-CN"}, headers=headers["editor"])
    url = f"/v1/kb/public/articles/{article['id']}"
    zh = await kb.get(url, headers={"Accept-Language": "zh-TW,zh;q=0.9,en;q=0.5"})
    assert zh.json()["title"] == "退款政策与时效" and zh.headers["content-language"] == "zh-CN"
    en = await kb.get(url, headers={"Accept-Language": "fr-FR, en;q=0.3"})
    assert en.json()["title"] == "Refund policy and timelines"
    assert en.json()["available_locales"] == ["en", "zh-CN"]
    assert zh.headers["etag"] != en.headers["etag"] and "Accept-Language" in zh.headers["vary"]
    assert (await kb.get(url + "?locale=de")).status_code == 404
    listing = f"/v1/kb/public/sections/{article['section_id']}/articles"
    zh_list = await kb.get(listing, headers={"Accept-Language": "zh"})
    assert [(i["locale"], i["title"], i["excerpt"]) for i in zh_list.json()["items"]] == [
        ("zh-CN", "退款政策与时效", "退款需5个工作日。")]
    en_list = await kb.get(listing, headers={"Accept-Language": "ja"})
    assert [i["locale"] for i in en_list.json()["items"]] == ["en"]
    only = await kb.get(listing + "?locale=zh-cn")
    assert [i["locale"] for i in only.json()["items"]] == ["zh-CN"]
    assert (await kb.get(url + "?locale=%E4%B8%AD%E6%96%87")).status_code == 422
