"""Deflection fixtures: the app with a customer-token key and a short deflection window (the
sweep's own loop slowed down, so tests run it when they mean to), and published articles."""

from __future__ import annotations

import time
import uuid

import pytest

from helpdesk_common.testing import running_app, service_env

KEY = "d" * 40


class App:
    """The httpx client plus the app (its runtime, for running the sweep by hand)."""

    def __init__(self, client, app):
        self.client, self.app = client, app

    def __getattr__(self, name):
        return getattr(self.client, name)

    async def sweep(self) -> int:
        from kb_svc.deflection.sweep import sweep_once

        return await sweep_once(self.app.state.runtime, self.app.state.settings)


def _env(monkeypatch, infra, kb_db, *, consumers: bool) -> str:
    topics = service_env(monkeypatch, infra, "KB_", kb_db)
    monkeypatch.setenv("KB_CONSUMERS_ENABLED", "true" if consumers else "false")
    monkeypatch.setenv("KB_RELAY_ENABLED", "false")
    monkeypatch.setenv("KB_CUSTOMER_TOKEN_KEY", KEY)
    monkeypatch.setenv("KB_DEFLECTION_WINDOW_MINUTES", "0.01")  # 0.6 s
    monkeypatch.setenv("KB_DEFLECTION_SWEEP_INTERVAL_S", "3600")
    monkeypatch.setenv("KB_SUGGESTIONS_BURST", "5")
    monkeypatch.setenv("KB_SUGGESTIONS_RATE_PER_SECOND", "0.01")
    return topics


@pytest.fixture
async def kb(infra, kb_db, monkeypatch):
    _env(monkeypatch, infra, kb_db, consumers=False)
    from kb_svc.config import Settings
    from kb_svc.main import create_app

    app = create_app(Settings())
    async with running_app(app) as client:
        yield App(client, app)


@pytest.fixture
async def kb_consuming(infra, kb_db, monkeypatch):
    """With the consumer of tickets.events running (``.topics``: the test's topic prefix)."""
    topics = _env(monkeypatch, infra, kb_db, consumers=True)
    from kb_svc.config import Settings
    from kb_svc.main import create_app

    app = create_app(Settings())
    async with running_app(app) as client:
        wrapped = App(client, app)
        wrapped.topics = topics
        yield wrapped


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
