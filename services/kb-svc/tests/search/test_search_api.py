"""GET /v1/kb/search over HTTP: content published through the API is found, unpublished is not;
visibility by caller (anonymous, customer token, agent); bad input is a 422 problem."""

from __future__ import annotations

import time
import uuid

import pytest

from helpdesk_common.testing import running_app, service_env

KEY = "s" * 40


@pytest.fixture
async def kb(infra, kb_db, monkeypatch):
    service_env(monkeypatch, infra, "KB_", kb_db)
    monkeypatch.setenv("KB_CONSUMERS_ENABLED", "false")
    monkeypatch.setenv("KB_RELAY_ENABLED", "false")
    monkeypatch.setenv("KB_CUSTOMER_TOKEN_KEY", KEY)
    from kb_svc.config import Settings
    from kb_svc.main import create_app

    async with running_app(create_app(Settings())) as client:
        yield client


def _customer():
    from kb_svc.access import mint_customer_token

    token = mint_customer_token(KEY.encode(), customer_id=uuid.uuid4(), expires=int(time.time()) + 600)
    return {"Authorization": f"Bearer {token}"}


async def _article(kb, editor, *, title, body, visibility="public", locale="zh-CN", publish=True):
    c = (await kb.post("/v1/kb/categories", json={"name": "帮助", "locale": locale}, headers=editor)).json()
    s = (await kb.post("/v1/kb/sections", json={"category_id": c["id"], "name": "退款", "locale": locale},
                       headers=editor)).json()
    a = (await kb.post("/v1/kb/articles", json={"section_id": s["id"], "locale": locale, "title": title,
                                               "body_html": body, "labels": ["faq"], "visibility": visibility},
                       headers=editor)).json()
    if publish:
        r = await kb.post(f"/v1/kb/articles/{a['id']}/publish", json={"locale": locale}, headers=editor)
        assert r.status_code == 200, r.text
    return a


async def test_published_through_the_api_is_found_and_unpublished_is_not(kb, headers):
    article = await _article(kb, headers["editor"], title="如何申请退款",
                             body="<p>在<b>我的订单</b>中点击申请退款。</p><script>x()</script>")
    await _article(kb, headers["editor"], title="退款草稿", body="<p>退款草稿内容</p>", publish=False)
    r = await kb.get("/v1/kb/search", params={"q": "退款流程"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert [i["id"] for i in body["items"]] == [article["id"]]
    hit = body["items"][0]
    assert hit["title"] == "如何申请退款" and hit["locale"] == "zh-CN" and hit["labels"] == ["faq"]
    assert "<mark>退款</mark>" in hit["snippet"] and "script" not in hit["snippet"]
    assert hit["url"] == f"/v1/kb/public/articles/{article['id']}?locale=zh-CN"
    assert body["next_cursor"] is None
    assert r.headers["cache-control"].startswith("public")

    r = await kb.post(f"/v1/kb/articles/{article['id']}/unpublish", json={"locale": "zh-CN"},
                      headers=headers["editor"])
    assert r.status_code == 200, r.text
    assert (await kb.get("/v1/kb/search", params={"q": "退款"})).json()["items"] == []


@pytest.mark.parametrize(("caller", "found"), [
    ("anonymous", {"public"}), ("customer", {"public", "customers"}),
    ("agent", {"public", "customers", "agents"}), ("editor", {"public", "customers", "agents"}),
])
async def test_visibility_by_caller(kb, headers, caller, found):
    for visibility in ("public", "customers", "agents"):
        await _article(kb, headers["editor"], title=f"Invoice help ({visibility})", body="<p>Invoice copies.</p>",
                       visibility=visibility, locale="en")
    h = {"anonymous": {}, "customer": _customer(), "agent": headers["agent"], "editor": headers["editor"]}[caller]
    r = await kb.get("/v1/kb/search", params={"q": "invoice"}, headers=h)
    assert r.status_code == 200, r.text
    assert {i["title"].split("(")[1].rstrip(")") for i in r.json()["items"]} == found
    if caller != "anonymous":
        assert "no-store" in r.headers["cache-control"]


async def test_a_forged_customer_token_is_refused(kb):
    r = await kb.get("/v1/kb/search", params={"q": "invoice"}, headers={"Authorization": "Bearer hkc1.forged"})
    assert r.status_code == 401
    assert r.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize("params", [
    {}, {"q": ""}, {"q": "x" * 201}, {"q": "refund", "limit": 0}, {"q": "refund", "limit": 51},
    {"q": "refund", "limit": "many"}, {"q": "refund", "category_id": "nope"}, {"q": "refund", "visibility": "all"},
    {"q": "refund", "locale": "en_US!"}, {"q": "refund", "cursor": "garbage"}, {"q": "a\tb\x01"},
    {"q": "   "}, {"q": "refund", "label": "x" * 65}, {"q": "refund", "fallback": "perhaps"},
    {"q": "refund", "unknown": "1"}, {"q": "refund", "section_id": str(2 ** 63)},
])
async def test_bad_input_is_a_422_problem(kb, params):
    r = await kb.get("/v1/kb/search", params=params)
    assert r.status_code == 422, (params, r.text)
    assert r.headers["content-type"].startswith("application/problem+json")


async def test_nul_in_the_query_is_refused(kb):
    r = await kb.get("/v1/kb/search?q=re%00fund")
    assert r.status_code in (400, 422)
    assert r.headers["content-type"].startswith("application/problem+json")


async def test_query_syntax_characters_are_plain_text(kb, headers):
    await _article(kb, headers["editor"], title="Refund policy", body="<p>Refunds.</p>", locale="en")
    for q in ["refund & | ! ( ) : * <->", "'refund'", "\\refund", "refund:*", "!!!", "退款 ' \" ;--"]:
        r = await kb.get("/v1/kb/search", params={"q": q})
        assert r.status_code == 200, (q, r.text)
    r = await kb.get("/v1/kb/search", params={"q": "refund:* & !policy"})
    assert [i["title"] for i in r.json()["items"]] == ["Refund policy"]
