"""Agents link articles to tickets (idempotent, staff only) and insert one into a reply (the
reply snippet: the public link for articles customers may open, the title alone otherwise)."""

from __future__ import annotations

import uuid

from .conftest import customer_headers, publish


async def test_link_list_unlink_idempotently(kb, headers):
    # a supervisor reads every ticket; an agent's links wait for ticket-svc's answer (test_link_access.py)
    agent, editor = headers["supervisor"], headers["editor"]
    refund = await publish(kb, editor, title="如何申请退款", body="<p>退款</p>")
    internal = await publish(kb, editor, title="内部流程", body="<p>内部</p>", visibility="agents", publish=False)
    ticket = str(uuid.uuid4())
    first = await kb.post(f"/v1/kb/articles/{refund['id']}/links", json={"ticket_id": ticket}, headers=agent)
    assert first.status_code == 201, first.text
    assert first.json()["linked_by"] == "u-supervisor-1"
    again = await kb.post(f"/v1/kb/articles/{refund['id']}/links", json={"ticket_id": ticket}, headers=agent)
    assert again.status_code == 200 and again.json() == first.json()
    assert (await kb.post(f"/v1/kb/articles/{internal['id']}/links", json={"ticket_id": ticket},
                          headers=headers["supervisor"])).status_code == 201
    listed = (await kb.get("/v1/kb/links", params={"ticket_id": ticket}, headers=agent)).json()["items"]
    assert [(i["article_id"], i["titles"]) for i in listed] == [
        (refund["id"], {"zh-CN": "如何申请退款"}), (internal["id"], {"zh-CN": "内部流程"})]
    for _ in range(2):
        r = await kb.delete(f"/v1/kb/articles/{refund['id']}/links/{ticket}", headers=agent)
        assert r.status_code == 204
    listed = (await kb.get("/v1/kb/links", params={"ticket_id": ticket}, headers=agent)).json()["items"]
    assert [i["article_id"] for i in listed] == [internal["id"]]
    assert (await kb.get("/v1/kb/links", params={"ticket_id": str(uuid.uuid4())}, headers=agent)).json()["items"] == []


async def test_links_are_for_users_and_check_input(kb, headers):
    article = await publish(kb, headers["editor"], title="如何申请退款", body="<p>退款</p>")
    url = f"/v1/kb/articles/{article['id']}/links"
    assert (await kb.post(url, json={"ticket_id": str(uuid.uuid4())})).status_code == 401
    assert (await kb.post(url, json={"ticket_id": str(uuid.uuid4())}, headers=customer_headers())).status_code == 403
    assert (await kb.get("/v1/kb/links", params={"ticket_id": str(uuid.uuid4())})).status_code == 401
    for body in ({}, {"ticket_id": "12"}, {"ticket_id": str(uuid.uuid4()), "x": 1}):
        r = await kb.post(url, json=body, headers=headers["agent"])
        assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
    r = await kb.post(f"/v1/kb/articles/{uuid.uuid4()}/links", json={"ticket_id": str(uuid.uuid4())},
                      headers=headers["supervisor"])
    assert r.status_code == 404
    assert (await kb.get("/v1/kb/links", params={"ticket_id": "nope"}, headers=headers["agent"])).status_code == 422


async def test_reply_snippet(kb, headers):
    public = await publish(kb, headers["editor"], title="如何申请退款 <快速>", body="<p>退款</p>")
    internal = await publish(kb, headers["editor"], title="内部流程", body="<p>内部</p>", visibility="agents")
    draft = await publish(kb, headers["editor"], title="草稿", body="<p>草稿</p>", publish=False)
    r = await kb.get(f"/v1/kb/articles/{public['id']}/reply-snippet", headers=headers["agent"])
    assert r.status_code == 200, r.text
    snippet = r.json()
    assert snippet["url"] == f"/v1/kb/public/articles/{public['id']}?locale=zh-CN"
    assert snippet["text"] == f"如何申请退款 <快速>: {snippet['url']}"
    assert snippet["html"] == f'<a href="{snippet["url"]}">如何申请退款 &lt;快速&gt;</a>'
    r = await kb.get(f"/v1/kb/articles/{internal['id']}/reply-snippet", params={"locale": "zh-cn"},
                     headers=headers["agent"])
    assert r.json()["url"] is None and r.json()["text"] == "内部流程"
    for article_id, params in ((draft["id"], {}), (public["id"], {"locale": "en"}), (str(uuid.uuid4()), {})):
        r = await kb.get(f"/v1/kb/articles/{article_id}/reply-snippet", params=params, headers=headers["agent"])
        assert r.status_code == 404
    assert (await kb.get(f"/v1/kb/articles/{public['id']}/reply-snippet")).status_code == 401
