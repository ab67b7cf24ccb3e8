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
    {"q": "refund", "locale": "en_US!"}, {"q": "a\tb\x01"},
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


async def test_a_very_long_article_is_published_and_its_opening_found(kb, headers):
    """A 300,000-character Chinese body (a tsvector of all of it passes PostgreSQL's 1 MB cap) is
    published, not refused with a 500; the indexed opening is found, the far end is not."""
    import random

    rng = random.Random(5)
    filler = "".join(rng.choice("的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面而方后多定行学法所民得经十三之进着等部度家电力里如水化高自二理起小物现实加量都两体制机当使点从业本去把性好应开它合还因由其些然前外天政四日那社义事平形相全表间样与关各重新线内数正心反你明看原又么利比或但质气第向道命此变条只没结解问意建月公无系军很情者最立代想已通并提直题党程展五果料象员革位入常文总次品式活设及管特件长求老头基资边流路级少图山统接知较将组见计别她手角期根论运农指几九区强放决西被干做必战先回则任取据处队南给色光门即保治北造百规热领七海口东导器压志世金增争济阶油思术极交受联什认六共权收证改清己美再采转更单风切打白教速花带安场身车例真务具万每目至达走积示议声报斗完类八离华名确才科张信马节话米整空元况今集温传土许步群广石记需段研界拉林律叫且究观越织装影算低持音众书布复容儿须际商非验连断深难近矿千周委素技备半办青省列习响约支般史感劳便团往酸历市克何除消构府称太准精值号率族维划选标写存候毛亲快效斯院查江型眼王按格养易置派层片始却专状育厂京识适属圆包火住调满县局照参红细引听该铁价严" ) for _ in range(300_000))
    body = f"<p>会员积分兑换规则说明。</p><p>{filler}</p><p>末尾独有词语鲸鱼潜水艇</p>"
    article = await _article(kb, headers["editor"], title="超长说明书", body=body)
    found = (await kb.get("/v1/kb/search", params={"q": "积分兑换"})).json()["items"]
    assert [i["id"] for i in found] == [article["id"]]
    assert (await kb.get("/v1/kb/search", params={"q": "鲸鱼潜水艇"})).json()["items"] == []


async def test_a_cursor_this_service_did_not_issue_is_a_400_invalid_cursor(kb):
    r = await kb.get("/v1/kb/search", params={"q": "refund", "cursor": "garbage"})
    assert r.status_code == 400 and r.headers["content-type"] == "application/problem+json"
    assert r.json()["type"].endswith("/invalid-cursor")
