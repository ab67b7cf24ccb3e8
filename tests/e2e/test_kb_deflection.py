"""Deflection end to end through the gateway (issue 14): an editor publishes, an anonymous
visitor of the web form gets suggestions for the subject they are typing, opens one and writes no
ticket: past the window (12 s in this stack, tests/e2e/conftest.py) the suggestion counts as
deflected. A second visitor's suggestion followed by a web-form ticket carrying its id counts as
a ticket followed, not deflected. The report and the outcome events agree."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from .conftest import eventually

pytestmark = pytest.mark.timeout(300)


async def _editor(gw, admin_headers) -> dict[str, str]:
    email = f"kb-defl-{uuid.uuid4().hex[:8]}@example.com"
    password = uuid.uuid4().hex + "Aa1!"
    made = await gw.post("/v1/users", json={"email": email, "password": password, "role": "editor", "name": "编辑"},
                         headers=admin_headers)
    assert made.status_code == 201, made.text
    login = await gw.post("/v1/auth/login", json={"email": email, "password": password})
    return {"Authorization": f"Bearer {login.json()['access_token']}"}


async def _outcome(sql, suggestion_id: str):
    return await sql("kb-svc", "SELECT outcome FROM kb_suggestions WHERE id = :i", i=uuid.UUID(suggestion_id))


async def test_deflected_without_a_ticket_and_not_deflected_with_one(gw, admin_headers, channel_key_headers, sql):
    started = datetime.now(UTC) - timedelta(seconds=1)
    editor = await _editor(gw, admin_headers)
    category = await gw.post("/v1/kb/categories", json={"name": "售后", "locale": "zh-CN"}, headers=editor)
    section = await gw.post("/v1/kb/sections", json={"category_id": category.json()["id"], "name": "发票",
                                                     "locale": "zh-CN"}, headers=editor)
    made = await gw.post("/v1/kb/articles", headers=editor, json={
        "section_id": section.json()["id"], "locale": "zh-CN", "title": "如何开具电子发票",
        "body_html": "<p>在<b>我的订单</b>页面点击开具发票，电子发票会发送到您的邮箱。</p>", "labels": ["发票"],
        "visibility": "public"})
    assert made.status_code == 201, made.text
    article_id = made.json()["id"]
    published = await gw.post(f"/v1/kb/articles/{article_id}/publish", json={"locale": "zh-CN"}, headers=editor)
    assert published.status_code == 200, published.text

    # 1. a web-form visitor (no login) types a subject: the article is suggested; they open it
    first = await gw.post("/v1/kb/suggestions", json={"subject": "怎么开发票", "description": "订单需要电子发票",
                                                      "language": "zh-CN", "channel": "web"})
    assert first.status_code == 200, first.text
    suggestion = first.json()
    assert [i["id"] for i in suggestion["items"]] == [article_id]
    read = await gw.get(suggestion["items"][0]["url"])  # the public read, carrying the suggestion id
    assert read.status_code == 200 and read.json()["title"] == "如何开具电子发票"

    # 2. a second visitor gets suggestions too, opens nothing and submits the form with the id
    second = await gw.post("/v1/kb/suggestions", json={"subject": "发票抬头写错了", "description": "",
                                                       "language": "zh-CN"})
    assert second.status_code == 200, second.text
    second_id = second.json()["suggestion_id"]
    ticket = await gw.post("/v1/channels/web/inbound", headers=channel_key_headers["web"], data={
        "subject": "发票抬头写错了", "description": "请帮我重开发票", "email": "buyer@example.com",
        "kb_suggestion_id": second_id})
    assert ticket.status_code == 201, ticket.text

    # the ticket reaches kb-svc over tickets.events; the first one's window passes with no ticket
    await eventually(lambda: _outcome(sql, second_id), timeout=90)
    assert await _outcome(sql, second_id) == "ticket_followed"
    await eventually(lambda: _outcome(sql, suggestion["suggestion_id"]), timeout=90)
    assert await _outcome(sql, suggestion["suggestion_id"]) == "deflected"

    report = await gw.get("/v1/kb/deflection", params={"from": started.isoformat(),
                                                       "to": (datetime.now(UTC) + timedelta(seconds=1)).isoformat(),
                                                       "channel": "web"}, headers=admin_headers)
    assert report.status_code == 200, report.text
    figures = report.json()
    assert figures["suggestions"] == 2 and figures["viewed"] == 1
    assert (figures["deflected"], figures["tickets_followed"], figures["abandoned"]) == (1, 1, 0)
    assert figures["self_service_rate"] == 0.5
    # anonymous callers do not read the report
    assert (await gw.get("/v1/kb/deflection")).status_code == 401

    # one outcome event each left kb-svc through its outbox
    for sid, deflected in ((suggestion["suggestion_id"], True), (second_id, False)):
        await eventually(lambda sid=sid, deflected=deflected: sql(
            "kb-svc", "SELECT count(*) = 1 FROM outbox WHERE event_type = 'kb.suggestion_outcome' AND key = :k "
                      "AND sent_at IS NOT NULL AND convert_from(payload, 'UTF8')::jsonb -> 'data' ->> 'deflected' = :d",
            k=sid, d="true" if deflected else "false"), timeout=60)
