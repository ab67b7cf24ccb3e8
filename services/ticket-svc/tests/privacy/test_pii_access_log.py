"""The audit of unmasked requester reads: one pii_access_log row per ticket an answer showed a user
unmasked (reads, lists, changes, exports and streamed downloads), none for masked answers or channel
keys; admins read it; an answer whose audit cannot be written is refused (503), never sent unaudited."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import text

from helpdesk_common.identity import Principal
from helpdesk_common.testing import identity_headers
from ticket_svc.pii import audit

from .test_requester_pii import ADMIN, AGENT, CHANNEL, EMAIL, REQUESTER, SUPERVISOR, create

REQUESTER_FIELDS = ["requester.email", "requester.phone", "requester.wechat_openid"]


async def log_rows(db) -> list[dict]:
    async with db.connect() as conn:
        rows = (await conn.execute(text(
            "SELECT actor, actor_role, ticket_id, fields, reason, purpose, route, request_id "
            "FROM pii_access_log ORDER BY id"))).mappings().all()
    return [dict(r) for r in rows]


async def test_each_unmasked_answer_leaves_one_row_per_ticket(client, db, known_users):
    await known_users(AGENT.id)
    assert (await client.put(f"/v1/agents/{AGENT.id}", json={"display_name": AGENT.id},
                             headers=ADMIN)).status_code == 200
    first = await create(client, "审计 one")
    second = await create(client, "审计 two", {"name": "李娜", "email": "li.na@example.com"})
    assert await log_rows(db) == []  # the channel that sent the requesters is shown what it sent

    read = await client.get(f"/v1/tickets/{first['id']}", headers=ADMIN)
    assert read.status_code == 200 and read.json()["requester"] == REQUESTER
    rows = await log_rows(db)
    assert rows == [{"actor": "user:root", "actor_role": "admin", "ticket_id": uuid.UUID(first["id"]),
                     "fields": REQUESTER_FIELDS, "reason": "role", "purpose": "read",
                     "route": "/v1/tickets/{ticket_id}", "request_id": read.headers["x-request-id"]}]

    listed = await client.get("/v1/tickets", headers=SUPERVISOR)
    assert listed.status_code == 200 and len(listed.json()["items"]) == 2
    rows = (await log_rows(db))[1:]
    assert sorted((r["ticket_id"], r["fields"]) for r in rows) == sorted([
        (uuid.UUID(first["id"]), REQUESTER_FIELDS), (uuid.UUID(second["id"]), ["requester.email"])])
    assert {(r["actor"], r["reason"], r["route"]) for r in rows} == {("user:boss", "role", "/v1/tickets")}
    assert len({r["request_id"] for r in rows}) == 1  # one answer, one statement

    # an agent: masked (nothing audited) until assigned, then unmasked and audited as the assignee
    before = len(await log_rows(db))
    masked = await client.get(f"/v1/tickets/{first['id']}", headers=identity_headers(AGENT))
    assert masked.json()["requester"]["email"] == "z***@example.com"
    assert len(await log_rows(db)) == before
    assigned = await client.post(f"/v1/tickets/{first['id']}/assign", json={"assignee_id": AGENT.id},
                                 headers=ADMIN)
    assert assigned.status_code == 200, assigned.text
    worked = await client.get(f"/v1/tickets/{first['id']}", headers=identity_headers(AGENT))
    assert worked.json()["requester"] == REQUESTER
    last = (await log_rows(db))[-1]
    assert (last["actor"], last["actor_role"], last["reason"], last["ticket_id"]) == (
        f"user:{AGENT.id}", "agent", "assignee", uuid.UUID(first["id"]))
    assert (await log_rows(db))[-2]["route"] == "/v1/tickets/{ticket_id}/assign"  # the admin's answer too

    # rows carry ids only: no requester value is in the table
    async with db.connect() as conn:
        dump = str((await conn.execute(text("SELECT array_agg(t::text) FROM pii_access_log t"))).scalar_one())
    assert EMAIL not in dump and "13800138000" not in dump


async def test_exports_and_streamed_downloads_are_audited_as_exports(client, db):
    tickets = [await create(client, f"导出 {i}") for i in range(3)]
    csv = await client.get("/v1/export/tickets.csv", headers=ADMIN)
    assert csv.status_code == 200 and EMAIL in csv.text
    page = await client.get("/v1/export/tickets", headers=ADMIN)
    assert page.status_code == 200
    rows = await log_rows(db)
    by_route: dict[str, set] = {}
    for r in rows:
        assert r["purpose"] == "export" and r["reason"] == "role"
        by_route.setdefault(r["route"], set()).add(r["ticket_id"])
    ids = {uuid.UUID(t["id"]) for t in tickets}
    assert by_route == {"/v1/export/tickets.csv": ids, "/v1/export/tickets": ids}


async def test_admins_read_the_log_filtered_and_paged(client, db):
    ticket = await create(client, "读日志")
    other = await create(client, "另一个")
    for _ in range(3):
        assert (await client.get(f"/v1/tickets/{ticket['id']}", headers=ADMIN)).status_code == 200
    assert (await client.get(f"/v1/tickets/{other['id']}", headers=SUPERVISOR)).status_code == 200

    one = await client.get(f"/v1/tickets/{ticket['id']}/pii-access", params={"limit": 2}, headers=ADMIN)
    assert one.status_code == 200, one.text
    body = one.json()
    assert [i["ticket_id"] for i in body["items"]] == [ticket["id"]] * 2 and body["next_cursor"]
    rest = await client.get(f"/v1/tickets/{ticket['id']}/pii-access", params={"cursor": body["next_cursor"]},
                            headers=ADMIN)
    assert len(rest.json()["items"]) == 1 and rest.json()["next_cursor"] is None
    by_actor = await client.get("/v1/tickets/pii-access", params={"actor": "user:boss"}, headers=ADMIN)
    assert [(i["ticket_id"], i["actor_role"]) for i in by_actor.json()["items"]] == [(other["id"], "supervisor")]
    exports = await client.get("/v1/tickets/pii-access", params={"purpose": "export"}, headers=ADMIN)
    assert exports.json()["items"] == []

    for headers in (SUPERVISOR, identity_headers(AGENT), CHANNEL):
        refused = await client.get("/v1/tickets/pii-access", headers=headers)
        assert refused.status_code == 403, (headers, refused.text)
    bad = await client.get("/v1/tickets/pii-access", params={"cursor": "not-ours"}, headers=ADMIN)
    assert bad.status_code == 400 and bad.headers["content-type"] == "application/problem+json"


async def test_no_unmasked_answer_leaves_without_its_row(client, db, monkeypatch):
    ticket = await create(client, "审计失败")

    async def broken(conn, entries):
        raise OSError("the audit table is unreachable")

    monkeypatch.setattr(audit.log_repository, "record", broken)
    refused = await client.get(f"/v1/tickets/{ticket['id']}", headers=ADMIN)
    assert refused.status_code == 503 and refused.headers["content-type"] == "application/problem+json"
    assert EMAIL not in refused.text and "unreachable" not in refused.text
    assert refused.json()["request_id"] == refused.headers["x-request-id"]
    # an answer that shows nothing unmasked does not need the audit
    masked = await client.get(f"/v1/tickets/{ticket['id']}", headers=identity_headers(AGENT))
    assert masked.status_code == 200


@pytest.mark.parametrize("noted, expected", [
    ([], []),
    ([("user:a", "admin", uuid.UUID(int=1), ("requester.email",), "role")] * 2,
     [("user:a", "admin", uuid.UUID(int=1), ["requester.email"], "role", "read", "/v1/tickets/{ticket_id}/merge",
       "r1")]),
])
def test_entries_one_per_ticket_and_caller(noted, expected):
    assert audit.entries(noted, route="/v1/tickets/{ticket_id}/merge", request_id="r1") == expected


def test_nothing_is_noted_outside_a_request_or_without_identities():
    audit.note(Principal(kind="user", id="x", role="admin"), uuid.uuid4(), ("requester.email",), "role")  # no bucket
    assert audit.revealed_fields({"name": "张伟", "email": None, "phone": ""}, ("email", "phone")) == ()
    assert audit.revealed_fields({"email": "a@b.c"}, ("email", "phone")) == ("requester.email",)
