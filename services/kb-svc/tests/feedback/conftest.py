"""Feedback fixtures: the app with a customer-token key and a small review threshold (4 votes,
a share of 0.5), and published articles."""

from __future__ import annotations

import time
import uuid

import pytest

KEY = "f" * 40

@pytest.fixture
async def kb(infra, kb_db, monkeypatch):
    from helpdesk_common.testing import running_app, service_env

    service_env(monkeypatch, infra, "KB_", kb_db)
    monkeypatch.setenv("KB_CONSUMERS_ENABLED", "false")
    monkeypatch.setenv("KB_RELAY_ENABLED", "false")
    monkeypatch.setenv("KB_CUSTOMER_TOKEN_KEY", KEY)
    monkeypatch.setenv("KB_REVIEW_MIN_VOTES", "4")
    monkeypatch.setenv("KB_REVIEW_NEGATIVE_SHARE", "0.5")
    monkeypatch.setenv("KB_SUGGESTIONS_BURST", "1000")
    from kb_svc.config import Settings
    from kb_svc.main import create_app

    async with running_app(create_app(Settings())) as client:
        yield client

def customer_headers(customer_id: uuid.UUID | None = None) -> dict:
    from kb_svc.access import mint_customer_token

    token = mint_customer_token(KEY.encode(), customer_id=customer_id or uuid.uuid4(), expires=int(time.time()) + 600)
    return {"Authorization": f"Bearer {token}"}

async def publish(kb, editor, *, title: str, body: str, visibility: str = "public", locale: str = "zh-CN",
                  publish: bool = True) -> dict:
    c = (await kb.post("/v1/kb/categories", json={"name": "帮助中心", "locale": locale}, headers=editor)).json()
    s = (await kb.post("/v1/kb/sections", json={"category_id": c["id"], "name": "常见问题", "locale": locale},
                       headers=editor)).json()
    r = await kb.post("/v1/kb/articles", json={"section_id": s["id"], "locale": locale, "title": title,
                                               "body_html": body, "labels": ["faq"], "visibility": visibility},
                      headers=editor)
    assert r.status_code == 201, r.text
    article = r.json()
    if publish:
        r = await kb.post(f"/v1/kb/articles/{article['id']}/publish", json={"locale": locale}, headers=editor)
        assert r.status_code == 200, r.text
    return article
