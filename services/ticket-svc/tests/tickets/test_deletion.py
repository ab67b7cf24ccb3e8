"""Soft deletion and restore (issue 18: Zendesk's DELETE /api/v2/tickets/{id}.json), on the real
database: a deleted ticket is closed and gone from every path, its deletion is in the audit and
the events, only staff delete and restore, and a restore gives the status back."""

import json
import uuid

from sqlalchemy import text

from helpdesk_common.identity import Principal
from helpdesk_common.testing import identity_headers

CHANNEL = Principal(kind="channel", id="key-1", channel="web")
EMAIL_KEY = Principal(kind="channel", id="mailbox-1", channel="email")
AGENT = Principal(kind="user", id="u-agent", role="agent")
SUPERVISOR = Principal(kind="user", id="u-boss", role="supervisor")
ADMIN = Principal(kind="user", id="u-root", role="admin")
H_CHANNEL, H_AGENT, H_SUP, H_ADMIN = (identity_headers(p) for p in (CHANNEL, AGENT, SUPERVISOR, ADMIN))


async def new_ticket(client, subject: str) -> dict:
    r = await client.post("/v1/tickets", json={"subject": subject, "description": f"{subject} 详情",
                                               "requester": {"name": "韩梅梅", "email": "delete@example.com"}},
                          headers=H_CHANNEL)
    assert r.status_code == 201, r.text
    return r.json()


async def events_of(db, ticket_id: str) -> list[tuple[str, dict]]:
    async with db.connect() as conn:
        rows = (await conn.execute(text("SELECT event_type, payload FROM outbox WHERE key = :k ORDER BY seq"),
                                   {"k": ticket_id})).all()
    return [(r.event_type, json.loads(r.payload)["data"]) for r in rows]


async def test_a_deleted_ticket_is_closed_and_gone_from_every_path(client, db):
    ticket = await new_ticket(client, "垃圾邮件 spam offer")
    kept = await new_ticket(client, "垃圾邮件 real question")
    tid = ticket["id"]
    pending = await client.patch(f"/v1/tickets/{tid}", json={"status": "pending"}, headers=H_SUP)
    assert pending.status_code == 200, pending.text

    stale = await client.delete(f"/v1/tickets/{tid}", headers={**H_SUP, "If-Match": '"1"'})
    assert stale.status_code == 412, stale.text  # If-Match names the version it deletes
    deleted = await client.delete(f"/v1/tickets/{tid}", headers=H_SUP)
    assert deleted.status_code == 204, deleted.text

    for headers in (H_ADMIN, H_SUP, H_AGENT, H_CHANNEL):
        gone = await client.get(f"/v1/tickets/{tid}", headers=headers)
        assert gone.status_code == 404 and gone.headers["content-type"] == "application/problem+json", gone.text
    assert (await client.get(f"/v1/tickets/{tid}/messages", headers=H_ADMIN)).status_code == 404
    assert (await client.patch(f"/v1/tickets/{tid}", json={"priority": "high"}, headers=H_ADMIN)).status_code == 404
    assert (await client.post(f"/v1/tickets/{tid}/messages", json={"body": "还在吗"},
                              headers=H_CHANNEL)).status_code == 404
    assert (await client.delete(f"/v1/tickets/{tid}", headers=H_ADMIN)).status_code == 404  # once
    listed = (await client.get("/v1/tickets", params={"limit": 100}, headers=H_ADMIN)).json()["items"]
    assert tid not in {t["id"] for t in listed} and kept["id"] in {t["id"] for t in listed}
    searched = (await client.get("/v1/tickets", params={"q": "垃圾邮件"}, headers=H_ADMIN)).json()["items"]
    assert [t["id"] for t in searched] == [kept["id"]]
    by_number = (await client.get("/v1/tickets", params={"number": ticket["number"]}, headers=H_ADMIN)).json()
    assert by_number["items"] == []

    page = await client.get("/v1/tickets/deleted", headers=H_ADMIN)
    assert page.status_code == 200, page.text
    [row] = page.json()["items"]
    assert (row["id"], row["number"], row["previous_status"], row["deleted_by"]) == \
        (tid, ticket["number"], "pending", "user:u-boss")

    async with db.connect() as conn:
        stored = (await conn.execute(text("SELECT status, deleted_at IS NOT NULL, closed_at IS NOT NULL "
                                          "FROM tickets WHERE id = :t"), {"t": tid})).one()
        audit = (await conn.execute(text("SELECT action, changes FROM ticket_audit WHERE ticket_id = :t "
                                         "ORDER BY id DESC LIMIT 1"), {"t": tid})).one()
    assert tuple(stored) == ("closed", True, True)  # kept, closed
    assert audit[0] == "deleted" and audit[1]["status"] == {"before": "pending", "after": "closed"}
    assert audit[1]["deleted_at"]["before"] is None and audit[1]["deleted_at"]["after"]
    emitted = await events_of(db, tid)
    status_changes = [(d["from_status"], d["to_status"], d["reason"]) for t, d in emitted
                      if t == "ticket.status_changed"]
    # SLA timers and processes end on it; surveys, notifications and triggers know it is no resolution
    assert status_changes[-1] == ("pending", "closed", "deleted")
    assert any(t == "ticket.updated" and "deleted_at" in d["changes"] for t, d in emitted)


async def test_only_staff_delete_restore_and_list_deleted(client):
    ticket = await new_ticket(client, "triage ticket")  # no team: the agent may read and work it
    tid = ticket["id"]
    other = await new_ticket(client, "linked to the triage ticket")
    assert (await client.post(f"/v1/tickets/{other['id']}/links", json={"other_id": tid, "kind": "related"},
                              headers=H_SUP)).status_code == 204
    refused = await client.delete(f"/v1/tickets/{tid}", headers=H_AGENT)
    assert refused.status_code == 403, refused.text
    assert (await client.delete(f"/v1/tickets/{tid}", headers=H_CHANNEL)).status_code == 403
    assert (await client.get("/v1/tickets/deleted", headers=H_AGENT)).status_code == 403
    assert (await client.delete(f"/v1/tickets/{uuid.uuid4()}", headers=H_ADMIN)).status_code == 404
    assert (await client.get(f"/v1/tickets/{tid}", headers=H_AGENT)).status_code == 200  # nothing happened

    assert (await client.delete(f"/v1/tickets/{tid}", headers=H_ADMIN)).status_code == 204
    # gone for the agent too: the same 404 as an id that names nothing; the link list leaves it out
    assert (await client.post(f"/v1/tickets/{tid}/restore", headers=H_AGENT)).status_code == 404
    assert (await client.delete(f"/v1/tickets/{tid}", headers=H_AGENT)).status_code == 404
    assert (await client.get(f"/v1/tickets/{other['id']}/links", headers=H_SUP)).json() == []
    restored = await client.post(f"/v1/tickets/{tid}/restore", headers=H_SUP)
    assert restored.status_code == 200, restored.text
    assert restored.json()["status"] == "new" and restored.json()["deleted_at"] is None
    assert restored.json()["closed_at"] is None  # the deletion's close is undone
    assert len((await client.get(f"/v1/tickets/{other['id']}/links", headers=H_SUP)).json()) == 1
    assert (await client.get(f"/v1/tickets/{tid}", headers=H_AGENT)).json()["status"] == "new"
    assert (await client.get("/v1/tickets/deleted", headers=H_SUP)).json()["items"] == []
    again = await client.post(f"/v1/tickets/{tid}/restore", headers=H_SUP)
    assert again.status_code == 409 and again.json()["type"].endswith("/not-deleted")


async def test_the_deleted_list_pages_most_recent_first(client):
    ids = [(await new_ticket(client, f"paged {i}"))["id"] for i in range(3)]
    for tid in ids:
        assert (await client.delete(f"/v1/tickets/{tid}", headers=H_ADMIN)).status_code == 204
    first = (await client.get("/v1/tickets/deleted", params={"limit": 2}, headers=H_ADMIN)).json()
    second = (await client.get("/v1/tickets/deleted", params={"limit": 2, "cursor": first["next_cursor"]},
                               headers=H_ADMIN)).json()
    assert [t["id"] for t in first["items"] + second["items"]] == ids[::-1] and second["next_cursor"] is None
    only = (await client.get("/v1/tickets/deleted", params=[("number", "999999"), ("number", str(
        (await client.get("/v1/tickets/deleted", params={"limit": 1}, headers=H_ADMIN)).json()["items"][0]["number"]))],
        headers=H_ADMIN)).json()["items"]
    assert [t["id"] for t in only] == [ids[-1]]
    bad = await client.get("/v1/tickets/deleted", params={"cursor": "not-a-cursor"}, headers=H_ADMIN)
    assert bad.status_code == 400 and bad.headers["content-type"] == "application/problem+json"


async def test_a_reply_to_a_deleted_ticket_opens_a_new_one(client):
    raw = ("From: <mei@example.com>\r\nTo: support@example.com\r\nSubject: 发票问题\r\nMessage-ID: <orig-1@example.com>\r\n"
           "Content-Type: text/plain; charset=UTF-8\r\n\r\n请开发票\r\n").encode()
    headers = {**identity_headers(EMAIL_KEY), "Content-Type": "message/rfc822"}
    first = await client.post("/v1/channels/email/inbound", content=raw, headers=headers)
    assert first.status_code == 201, first.text
    number = (await client.get(f"/v1/tickets/{first.json()['ticket_id']}", headers=H_ADMIN)).json()["number"]
    assert (await client.delete(f"/v1/tickets/{first.json()['ticket_id']}", headers=H_ADMIN)).status_code == 204
    for n, reply_headers in enumerate(("In-Reply-To: <orig-1@example.com>\r\n", "")):
        reply = (f"From: <mei@example.com>\r\nTo: support@example.com\r\nSubject: Re: [#{number}] 发票问题\r\n"
                 f"Message-ID: <reply-{n}@example.com>\r\n{reply_headers}"
                 "Content-Type: text/plain; charset=UTF-8\r\n\r\n还没收到\r\n").encode()
        answered = await client.post("/v1/channels/email/inbound", content=reply, headers=headers)
        assert answered.status_code == 201, answered.text
        assert answered.json()["created"] is True and answered.json()["ticket_id"] != first.json()["ticket_id"]


async def test_staff_export_shows_the_deletion_agents_export_does_not(client, known_users):
    ticket = await new_ticket(client, "exported then deleted")
    assert (await client.delete(f"/v1/tickets/{ticket['id']}", headers=H_ADMIN)).status_code == 204

    async def exported(headers) -> dict:
        items, params = [], {"start_time": 0, "limit": 1000}
        while True:
            page = (await client.get("/v1/export/tickets", params=params, headers=headers)).json()
            items += page["items"]
            if page["end_of_stream"]:
                return {t["id"]: t for t in items}
            params = {"cursor": page["next_cursor"]}

    staff = await exported(H_ADMIN)
    assert staff[ticket["id"]]["deleted_at"] and staff[ticket["id"]]["status"] == "closed"
    await known_users("u-agent")
    assert ticket["id"] not in await exported(H_AGENT)
