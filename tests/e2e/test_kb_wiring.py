"""The knowledge base wired into the stack (issue 14), through the gateway: an editor writes and
publishes, anonymous readers get public articles without a login (and a 401 elsewhere), a
customer token minted by staff adds the customers-only ones, an editor gets nothing outside
/v1/kb, and kb-svc's events reach the topic."""

from __future__ import annotations

import uuid

import pytest

from .conftest import eventually

pytestmark = pytest.mark.timeout(300)


async def _editor(gw, admin_headers) -> dict[str, str]:
    email = f"editor-{uuid.uuid4().hex[:8]}@example.com"
    password = uuid.uuid4().hex + "Aa1!"
    made = await gw.post("/v1/users", json={"email": email, "password": password, "role": "editor", "name": "编辑"},
                         headers=admin_headers)
    assert made.status_code == 201, made.text
    assert made.json()["role"] == "editor" and made.json()["agent_profile"] is None
    login = await gw.post("/v1/auth/login", json={"email": email, "password": password})
    assert login.status_code == 200, login.text
    return {"Authorization": f"Bearer {login.json()['access_token']}"}


async def test_editors_publish_and_readers_see_by_visibility(gw, admin_headers, sql):
    editor = await _editor(gw, admin_headers)
    category = await gw.post("/v1/kb/categories", json={"name": "账户与账单", "locale": "zh-CN"}, headers=editor)
    assert category.status_code == 201, category.text
    section = await gw.post("/v1/kb/sections", json={"category_id": category.json()["id"], "name": "退款",
                                                     "locale": "zh-CN"}, headers=editor)
    assert section.status_code == 201, section.text
    articles = {}
    for visibility in ("public", "customers", "agents"):
        made = await gw.post("/v1/kb/articles", headers=editor, json={
            "section_id": section.json()["id"], "locale": "zh-CN", "title": f"如何申请退款 ({visibility})",
            "body_html": "<p>在订单页点击<b>申请退款</b>。</p>", "labels": ["退款"], "visibility": visibility})
        assert made.status_code == 201, made.text
        article_id = made.json()["id"]
        published = await gw.post(f"/v1/kb/articles/{article_id}/publish", json={"locale": "zh-CN"}, headers=editor)
        assert published.status_code == 200, published.text
        articles[visibility] = article_id

    # anonymous: public only, no login, cacheable
    public = await gw.get(f"/v1/kb/public/articles/{articles['public']}")
    assert public.status_code == 200, public.text
    assert public.json()["title"] == "如何申请退款 (public)" and public.headers.get("etag")
    again = await gw.get(f"/v1/kb/public/articles/{articles['public']}", headers={"If-None-Match": public.headers["etag"]})
    assert again.status_code == 304
    for hidden in ("customers", "agents"):
        assert (await gw.get(f"/v1/kb/public/articles/{articles[hidden]}")).status_code == 404

    # a customer token (minted by staff) adds the customers-only article, not the agents-only one
    minted = await gw.post("/v1/kb/customer-tokens", json={"customer_id": str(uuid.uuid4()), "ttl_minutes": 10},
                           headers=admin_headers)
    assert minted.status_code == 201, minted.text
    customer = {"Authorization": f"Bearer {minted.json()['token']}"}
    assert (await gw.get(f"/v1/kb/public/articles/{articles['customers']}", headers=customer)).status_code == 200
    assert (await gw.get(f"/v1/kb/public/articles/{articles['agents']}", headers=customer)).status_code == 404
    forged = {"Authorization": f"Bearer {minted.json()['token'][:-2]}xx"}
    assert (await gw.get(f"/v1/kb/public/articles/{articles['customers']}", headers=forged)).status_code == 401
    # ... and is no login anywhere else
    assert (await gw.get("/v1/kb/articles", headers=customer)).status_code == 401

    # staff read all of it; the editor nothing outside the knowledge base
    assert (await gw.get(f"/v1/kb/public/articles/{articles['agents']}", headers=admin_headers)).status_code == 200
    assert (await gw.get("/v1/tickets", headers=editor)).status_code == 403
    assert (await gw.get("/v1/customers", headers=editor)).status_code == 403

    # the publications left through the outbox on kb.events
    await eventually(lambda: sql("kb-svc", "SELECT count(*) = 3 FROM outbox WHERE event_type = 'kb.article_published' "
                                          "AND key = ANY(:ids) AND sent_at IS NOT NULL",
                                 ids=list(articles.values())), timeout=60)


async def test_anonymous_callers_get_401_on_the_signed_in_routes(gw):
    for method, path in (("POST", "/v1/kb/customer-tokens"), ("GET", "/v1/kb/articles"), ("POST", "/v1/kb/categories")):
        answer = await gw.request(method, path, json={} if method == "POST" else None)
        assert answer.status_code == 401, (method, path, answer.text)
        assert answer.headers["content-type"].startswith("application/problem+json")
    # the public ones answer without a login
    assert (await gw.get("/v1/kb/public/categories")).status_code == 200
    assert (await gw.get("/v1/kb/search", params={"q": "refund policy"})).status_code == 200
