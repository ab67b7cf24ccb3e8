"""The XSS corpus (tests/security/xss_corpus.txt) through the gateway into the knowledge base and
back out of its anonymous public read: every article body comes back inert with its Chinese text
(the in-process tests in tests/security/test_xss.py cover every other HTML-bearing input)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from .test_kb_wiring import _editor

pytestmark = pytest.mark.timeout(600)

_spec = importlib.util.spec_from_file_location(
    "security_xss", Path(__file__).resolve().parents[1] / "security" / "test_xss.py")
xss = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(xss)  # type: ignore[union-attr]


async def test_the_corpus_comes_back_inert_from_the_public_knowledge_base(gw, admin_headers):
    editor = await _editor(gw, admin_headers)
    category = await gw.post("/v1/kb/categories", json={"name": "安全", "locale": "zh-CN"}, headers=editor)
    section = await gw.post("/v1/kb/sections", json={"category_id": category.json()["id"], "name": "XSS",
                                                     "locale": "zh-CN"}, headers=editor)
    assert section.status_code == 201, section.text
    problems = []
    for i, payload in enumerate(xss.CORPUS):
        article = await gw.post("/v1/kb/articles", headers=editor, json={
            "section_id": section.json()["id"], "locale": "zh-CN", "title": f"载荷 {i}", "body_html": payload})
        assert article.status_code == 201, article.text
        published = await gw.post(f"/v1/kb/articles/{article.json()['id']}/publish", json={"locale": "zh-CN"},
                                  headers=editor)
        assert published.status_code == 200, published.text
        public = await gw.get(f"/v1/kb/public/articles/{article.json()['id']}")  # no credentials
        assert public.status_code == 200, public.text
        assert public.headers["content-type"].startswith("application/json")
        body = public.json()["body_html"]
        if live := xss.live_parts(body):
            problems.append((payload, live))
        if lost := xss._survives(payload, body):
            problems.append((payload, "lost", lost))
    assert not problems, problems
    print(f"{len(xss.CORPUS)} payloads through the gateway's public knowledge base: all inert")
