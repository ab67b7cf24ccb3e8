"""Merge and links, macros with placeholders, saved views."""

from sqlalchemy import text

from helpdesk_common.identity import Principal
from helpdesk_common.testing import identity_headers

CHANNEL = Principal(kind="channel", id="key-1", channel="web")
AGENT = Principal(kind="user", id="u-agent", role="agent", name="李雷")
OTHER_AGENT = Principal(kind="user", id="u-other", role="agent")
SUPERVISOR = Principal(kind="user", id="u-boss", role="supervisor")


async def new_ticket(client, subject: str, email: str = "han@example.com") -> dict:
    r = await client.post("/v1/tickets", json={"subject": subject, "description": f"{subject} 详情",
                                               "requester": {"name": "韩梅梅", "email": email}},
                          headers=identity_headers(CHANNEL))
    assert r.status_code == 201, r.text
    return r.json()


async def test_merge_moves_messages_and_closes_the_source(client, db):
    source = await new_ticket(client, "打印机卡纸")
    target = await new_ticket(client, "printer jam again")
    await client.post(f"/v1/tickets/{source['id']}/messages", json={"body": "补充：型号 HP-1020"},
                      headers=identity_headers(CHANNEL))
    merged = await client.post(f"/v1/tickets/{source['id']}/merge", json={"target_id": target["id"]},
                               headers=identity_headers(AGENT))
    assert merged.status_code == 200, merged.text
    src = (await client.get(f"/v1/tickets/{source['id']}", headers=identity_headers(AGENT))).json()
    assert src["status"] == "closed" and src["merged_into"] == target["id"]
    bodies = [m["body_text"] for m in (await client.get(f"/v1/tickets/{target['id']}/messages",
                                                         headers=identity_headers(AGENT))).json()["items"]]
    assert "补充：型号 HP-1020" in bodies and "打印机卡纸 详情" in bodies and any("merged into this ticket" in b for b in bodies)
    found = (await client.get("/v1/tickets", params={"q": "型号"}, headers=identity_headers(AGENT))).json()["items"]
    assert target["id"] in {t["id"] for t in found}
    async with db.connect() as conn:
        assert await conn.scalar(text("SELECT count(*) FROM outbox WHERE event_type = 'ticket.merged'")) == 1
    again = await client.post(f"/v1/tickets/{source['id']}/merge", json={"target_id": target["id"]},
                              headers=identity_headers(AGENT))
    assert again.status_code == 409
    itself = await client.post(f"/v1/tickets/{target['id']}/merge", json={"target_id": target["id"]},
                               headers=identity_headers(AGENT))
    assert itself.status_code == 422
    # a customer message for the merged ticket lands on the target
    late = await client.post(f"/v1/tickets/{source['id']}/messages", json={"body": "还在吗"},
                             headers=identity_headers(CHANNEL))
    assert late.status_code == 409 and late.json()["merged_into"] == target["id"]


async def test_links_related_and_parent_child_without_cycles(client):
    a, b, c = [await new_ticket(client, s) for s in ("网络故障 A", "网络故障 B", "网络故障 C")]
    h = identity_headers(AGENT)
    assert (await client.post(f"/v1/tickets/{b['id']}/links", json={"other_id": a["id"], "kind": "parent"},
                              headers=h)).status_code == 204
    assert (await client.post(f"/v1/tickets/{c['id']}/links", json={"other_id": b["id"], "kind": "parent"},
                              headers=h)).status_code == 204
    cycle = await client.post(f"/v1/tickets/{a['id']}/links", json={"other_id": c["id"], "kind": "parent"}, headers=h)
    assert cycle.status_code == 409
    assert (await client.post(f"/v1/tickets/{a['id']}/links", json={"other_id": c["id"], "kind": "related"},
                              headers=h)).status_code == 204
    links = {(x["other_id"], x["kind"]) for x in (await client.get(f"/v1/tickets/{a['id']}/links", headers=h)).json()}
    assert links == {(b["id"], "child"), (c["id"], "related")}
    assert (await client.delete(f"/v1/tickets/{a['id']}/links/related/{c['id']}", headers=h)).status_code == 204
    assert (await client.delete(f"/v1/tickets/{a['id']}/links/related/{c['id']}", headers=h)).status_code == 404
    assert (await client.post(f"/v1/tickets/{a['id']}/links", json={"other_id": c["id"], "kind": "related"},
                              headers=identity_headers(CHANNEL))).status_code == 403


async def test_macro_applies_fields_and_reply_with_placeholders(client):
    ticket = await new_ticket(client, "退款进度")
    shared = await client.post("/v1/macros", json={
        "name": "退款已处理", "shared": True,
        "actions": {"status": "solved", "add_tags": ["refund"], "priority": "low"},
        "reply": {"body": "{{requester.name}}您好，工单 #{{ticket.number}} 的退款已处理。—— {{agent.name}} {{unknown.x}}"}},
        headers=identity_headers(SUPERVISOR))
    assert shared.status_code == 201, shared.text
    assert (await client.post("/v1/macros", json={"name": "x", "shared": True}, headers=identity_headers(AGENT))).status_code == 403
    applied = await client.post(f"/v1/tickets/{ticket['id']}/macros/{shared.json()['id']}",
                                headers={**identity_headers(AGENT), "If-Match": f'W/"{ticket["version"]}"'})
    assert applied.status_code == 200, applied.text
    body = applied.json()
    assert (body["status"], body["priority"], body["tags"]) == ("solved", "low", ["refund"])
    assert body["sla"]["first_response_at"] is not None
    messages = (await client.get(f"/v1/tickets/{ticket['id']}/messages", headers=identity_headers(AGENT))).json()["items"]
    assert messages[-1]["body_text"] == f"韩梅梅您好，工单 #{ticket['number']} 的退款已处理。—— 李雷 {{{{unknown.x}}}}"
    stale = await client.post(f"/v1/tickets/{ticket['id']}/macros/{shared.json()['id']}",
                              headers={**identity_headers(AGENT), "If-Match": f'W/"{ticket["version"]}"'})
    assert stale.status_code == 412
    personal = await client.post("/v1/macros", json={"name": "mine", "actions": {"add_tags": ["x"]}},
                                 headers=identity_headers(AGENT))
    hidden = await client.post(f"/v1/tickets/{ticket['id']}/macros/{personal.json()['id']}",
                               headers=identity_headers(OTHER_AGENT))
    assert hidden.status_code == 404


async def test_saved_views_are_private_and_filter_the_list(client, known_users):
    await known_users("u-agent")
    mine = await new_ticket(client, "登录失败 login failed")
    await new_ticket(client, "发票问题")
    await client.put("/v1/agents/u-agent", json={"display_name": "李雷", "status": "online"},
                     headers=identity_headers(SUPERVISOR))
    await client.post(f"/v1/tickets/{mine['id']}/assign", json={"assignee_id": "u-agent"},
                      headers=identity_headers(SUPERVISOR))
    view = await client.post("/v1/views", json={"name": "我的待办", "filters": {"assignee_id": "me", "status": ["new", "open"]}},
                             headers=identity_headers(AGENT))
    assert view.status_code == 201, view.text
    listed = (await client.get("/v1/tickets", params={"view_id": view.json()["id"]}, headers=identity_headers(AGENT))).json()
    assert [t["id"] for t in listed["items"]] == [mine["id"]]
    other = await client.get("/v1/tickets", params={"view_id": view.json()["id"]}, headers=identity_headers(OTHER_AGENT))
    assert other.status_code == 404
    assert (await client.post("/v1/views", json={"name": "我的待办", "filters": {}}, headers=identity_headers(AGENT))).status_code == 409
    bad = await client.post("/v1/views", json={"name": "x", "filters": {"status": ["weird"]}}, headers=identity_headers(AGENT))
    assert bad.status_code == 422


async def test_list_filters(client):
    a = await new_ticket(client, "filter A")
    b = await new_ticket(client, "filter B")
    await client.patch(f"/v1/tickets/{b['id']}", json={"priority": "urgent", "add_tags": ["vip"]},
                       headers=identity_headers(AGENT))
    h = identity_headers(AGENT)

    async def ids(**params) -> list[str]:
        r = await client.get("/v1/tickets", params=params, headers=h)
        assert r.status_code == 200, r.text
        return [t["id"] for t in r.json()["items"]]

    assert await ids(priority="urgent") == [b["id"]]
    assert await ids(tag="vip") == [b["id"]]
    assert await ids(assignee_id="none") == [b["id"], a["id"]]
    assert set(await ids(status=["new"])) == {a["id"], b["id"]}
    assert await ids(sort="updated", limit=1) == [b["id"]]
    assert (await client.get("/v1/tickets", params={"limit": 101}, headers=h)).status_code == 422
    assert (await client.get("/v1/tickets", params={"cursor": "garbage"}, headers=h)).status_code == 400
