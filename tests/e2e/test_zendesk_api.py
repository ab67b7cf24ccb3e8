"""The Zendesk-compatible surface (``/api/v2``, docs/zendesk-api.md) through the real gateway and
services: zenpy (the Python client Zendesk integrations use, pinned in requirements-dev.txt)
with a personal API token in Zendesk's Basic form, each answer checked field by field against
the native API; then the envelopes and errors over raw HTTP."""

from __future__ import annotations

import asyncio
import base64
import uuid

import httpx
import pytest

from .conftest import eventually

zenpy = pytest.importorskip("zenpy")


@pytest.fixture
async def token_user(gw, admin_headers):
    """An admin of the test's own and a personal API token of theirs."""
    email, password = f"zd-{uuid.uuid4().hex[:10]}@example.com", uuid.uuid4().hex
    r = await gw.post("/v1/users", json={"email": email, "name": "Zendesk script", "role": "admin", "password": password},
                      headers=admin_headers)
    assert r.status_code == 201, r.text
    login = await gw.post("/v1/auth/login", json={"email": email, "password": password})
    bearer = {"Authorization": f"Bearer {login.json()['access_token']}"}
    token = (await gw.post("/v1/users/me/api-tokens", json={"name": "zenpy"}, headers=bearer)).json()["token"]
    return {"email": email, "token": token, "bearer": bearer, "id": r.json()["id"],
            "basic": {"Authorization": "Basic " + base64.b64encode(f"{email}/token:{token}".encode()).decode()}}


@pytest.fixture
def client(stack, token_user, monkeypatch):
    from zenpy import Zenpy

    monkeypatch.setenv("ZENPY_FORCE_NETLOC", stack.creds["gateway_url"].split("://", 1)[1])
    monkeypatch.setenv("ZENPY_FORCE_SCHEME", "http")
    client = Zenpy(subdomain="helpdesk", email=token_user["email"], token=token_user["token"])
    client.disable_caching()  # every read asks the API (zenpy keeps objects by id otherwise)
    return client


async def native_ticket(gw, headers, number):
    page = (await gw.get(f"/v1/tickets?number={number}", headers=headers)).json()
    assert len(page["items"]) == 1, page
    return page["items"][0]


async def test_zenpy_creates_shows_comments_and_updates_a_ticket(gw, client, token_user):
    from zenpy.lib.api_objects import Comment, Ticket, User

    headers = token_user["bearer"]
    requester = f"buyer-{uuid.uuid4().hex[:8]}@example.com"
    audit = await asyncio.to_thread(client.tickets.create, Ticket(
        subject="打印机坏了 / printer broken", comment=Comment(body="它不能打印。\nIt does not print."),
        requester=User(email=requester, name="王小明"), priority="high", tags=["printer", "zendesk"]))
    number = audit.ticket.id
    native = await native_ticket(gw, headers, number)
    assert native["subject"] == "打印机坏了 / printer broken" and native["priority"] == "high"
    assert native["requester"]["email"] == requester and set(native["tags"]) == {"printer", "zendesk"}

    # show: every field against the native ticket (requester_id once customer-svc has the customer)
    async def shown():
        ticket = await asyncio.to_thread(client.tickets, id=number)
        return ticket if ticket.requester_id else None

    ticket = await eventually(shown, timeout=60)
    native = await native_ticket(gw, headers, number)
    assert (ticket.id, ticket.subject, ticket.description, ticket.priority, ticket.status, sorted(ticket.tags)) == (
        native["number"], native["subject"], native["description"], native["priority"], native["status"],
        sorted(native["tags"]))
    assert ticket.created_at == native["created_at"][:19] + "Z"
    customer = (await gw.get(f"/v1/customers?email={requester}", headers=headers)).json()["items"][0]
    raw = (await gw.get(f"/api/v2/tickets/{number}.json", headers=token_user["basic"])).json()["ticket"]
    assert raw["requester_id"] == ticket.requester_id and raw["url"].endswith(f"/api/v2/tickets/{number}.json")

    # a public reply and an internal note, each through an update as Zendesk does it
    ticket.comment = Comment(body="我们正在处理 / we are on it", public=True)
    await asyncio.to_thread(client.tickets.update, ticket)
    ticket = await asyncio.to_thread(client.tickets, id=number)
    ticket.comment = Comment(body="internal: check the toner", public=False)
    ticket.status = "pending"
    ticket.assignee_id = audit.audit.author_id  # the token's own user
    await asyncio.to_thread(client.tickets.update, ticket)

    native = await native_ticket(gw, headers, number)
    assert native["status"] == "pending" and native["assignee_id"] == token_user["id"]
    ticket = await asyncio.to_thread(client.tickets, id=number)
    assert (ticket.status, ticket.assignee_id) == ("pending", audit.audit.author_id)

    comments = await asyncio.to_thread(lambda: list(client.tickets.comments(ticket=number)))
    messages = (await gw.get(f"/v1/tickets/{native['id']}/messages", headers=headers)).json()["items"]
    assert [(c.body, c.public) for c in comments] == [(m["body_text"], m["public"]) for m in messages]
    assert [c.public for c in comments] == [True, True, False]
    # search by status and by requester, as zenpy writes the query (type:ticket status:pending requester:...)
    by_both = await asyncio.to_thread(lambda: [t.id for t in client.search(type="ticket", status="pending",
                                                                           requester=requester)])
    assert by_both == [number]
    assert await asyncio.to_thread(lambda: [t.id for t in client.search(type="ticket", requester=requester)]) == [number]
    assert await asyncio.to_thread(lambda: [t.id for t in client.search(type="ticket", status="solved",
                                                                        requester=requester)]) == []
    below = await asyncio.to_thread(lambda: [t.id for t in client.search(type="ticket", status_less_than="solved",
                                                                         requester=requester)])
    assert below == [number]
    # the first comment's author is who created the ticket (here the token's user), as in Zendesk
    assert comments[0].author_id == comments[1].author_id == comments[2].author_id == audit.audit.author_id
    assert len({c.id for c in comments}) == 3 and all(isinstance(c.id, int) for c in comments)
    assert customer["id"]  # (the requester is a customer of customer-svc)


async def test_the_envelopes_and_errors_are_zendesks(gw, token_user, key_headers):
    basic = token_user["basic"]
    created = await gw.post("/api/v2/tickets.json", headers=basic, json={"ticket": {
        "comment": {"body": "No subject given\nsecond line"}, "requester": {"email": "raw@example.com"}}})
    assert created.status_code == 201, created.text
    body = created.json()
    assert set(body) == {"ticket", "audit"} and body["ticket"]["subject"] == "No subject given"
    assert created.headers["location"] == body["ticket"]["url"]
    number = body["ticket"]["id"]
    shown = await gw.get(f"/api/v2/tickets/{number}.json", headers=basic)
    assert shown.status_code == 200 and shown.json()["ticket"]["status"] == "new"
    comments = (await gw.get(f"/api/v2/tickets/{number}/comments.json", headers=basic)).json()
    assert comments["count"] == 1 and comments["meta"]["has_more"] is False and comments["next_page"] is None

    # errors: Zendesk's {"error", "description", "details"}, never a problem document
    cases = [
        (gw.get(f"/api/v2/tickets/{number + 10**9}.json", headers=basic), 404, "RecordNotFound"),
        (gw.get(f"/api/v2/tickets/{number}.json", headers={"Authorization": "Basic " + base64.b64encode(
            f"{token_user['email']}/token:hdu_{'x' * 43}".encode()).decode()}), 401, "Couldn't authenticate you"),
        (gw.get(f"/api/v2/tickets/{number}.json"), 401, "Couldn't authenticate you"),
        (gw.put(f"/api/v2/tickets/{number}.json", headers=basic, json={"ticket": {"status": "done"}}), 422,
         "RecordInvalid"),
        (gw.post("/api/v2/tickets.json", headers=basic, json={"ticket": {"subject": "x"}}), 422, "RecordInvalid"),
        (gw.put(f"/api/v2/tickets/{number}.json", headers=basic, json={"ticket": {"assignee_id": 999999999}}), 422,
         "RecordInvalid"),
        (gw.get("/api/v2/tickets/abc.json", headers=basic), 422, "RecordInvalid"),
        (gw.get("/api/v2/search.json?query=-tags:spam", headers=basic), 422, "RecordInvalid"),
        (gw.get("/api/v2/search.json?query=status:x", headers=basic), 422, "RecordInvalid"),
        (gw.get("/api/v2/macros.json", headers=basic), 404, "InvalidEndpoint"),
        (gw.get("/api/v2/macros.json"), 401, "Couldn't authenticate you"),
    ]
    for request, status, error in cases:
        r = await request
        assert r.status_code == status and r.headers["content-type"].startswith("application/json"), r.text
        assert r.json()["error"] == error and r.json()["description"], r.text
    invalid = (await gw.put(f"/api/v2/tickets/{number}.json", headers=basic,
                            json={"ticket": {"status": "done"}})).json()
    assert list(invalid["details"]) == ["status"] and invalid["details"]["status"][0]["description"]
    # a channel key is not a Zendesk agent
    refused = await gw.get(f"/api/v2/tickets/{number}.json", headers=key_headers)
    assert refused.status_code == 403 and refused.json()["error"] == "Forbidden", refused.text


async def test_zenpy_pages_through_tickets_shows_many_and_lists_groups(gw, client, token_user):
    import itertools

    headers = token_user["bearer"]
    made = []
    for n in range(5):
        r = await gw.post("/api/v2/tickets.json", headers=token_user["basic"], json={"ticket": {
            "subject": f"page {n}", "comment": {"body": "x"}, "requester": {"email": f"pager{n}@example.com"}}})
        assert r.status_code == 201, r.text
        made.append(r.json()["ticket"]["id"])
    # cursor pagination, two a page, as zenpy follows links.next: the same order as the native list
    first_five = await asyncio.to_thread(lambda: [t.id for t in itertools.islice(client.tickets(cursor_pagination=2), 5)])
    native = (await gw.get("/v1/tickets?limit=5", headers=headers)).json()["items"]
    assert first_five == [t["number"] for t in native]
    page = (await gw.get("/api/v2/tickets.json?page[size]=2", headers=token_user["basic"])).json()
    assert page["meta"]["has_more"] is True and "page%5Bafter%5D=" in page["links"]["next"]
    second = (await gw.get(httpx.URL(page["links"]["next"]).raw_path.decode(), headers=token_user["basic"])).json()
    assert [t["id"] for t in second["tickets"]] == first_five[2:4]
    # offset pagination: page 2 asked for directly
    offset = (await gw.get("/api/v2/tickets.json?per_page=2&page=2", headers=token_user["basic"])).json()
    assert [t["id"] for t in offset["tickets"]] == first_five[2:4] and "page=3" in offset["next_page"]

    shown = await asyncio.to_thread(lambda: [t.id for t in client.tickets(ids=[made[3], made[1], 10**12])])
    assert shown == [made[3], made[1]]

    team = await gw.post("/v1/teams", json={"name": f"二线 {uuid.uuid4().hex[:6]}"}, headers=headers)
    assert team.status_code == 201, team.text
    groups = await asyncio.to_thread(lambda: {g.name: g.id for g in client.groups()})
    assert team.json()["name"] in groups and isinstance(groups[team.json()["name"]], int)


async def test_zenpy_creates_searches_shows_and_updates_an_end_user(gw, client, token_user):
    from zenpy.lib.api_objects import User

    headers = token_user["bearer"]
    email = f"enduser-{uuid.uuid4().hex[:8]}@example.com"
    created = await asyncio.to_thread(client.users.create, User(name="李雷", email=email, external_id=f"crm-{email[8:16]}",
                                                                 tags=["vip"]))
    assert isinstance(created.id, int) and created.role == "end-user" and created.email == email
    native = (await gw.get(f"/v1/customers?email={email}", headers=headers)).json()["items"]
    assert len(native) == 1 and native[0]["name"] == "李雷" and native[0]["tags"] == ["vip"]
    assert {(i["kind"], i["value"]) for i in native[0]["identities"]} == {
        ("email", email), ("external:zendesk", f"crm-{email[8:16]}")}

    found = await asyncio.to_thread(lambda: [u.id for u in client.users.search(query=f"email:{email}")])
    assert found == [created.id]
    by_external = await asyncio.to_thread(lambda: [u.id for u in client.users.search(external_id=f"crm-{email[8:16]}")])
    assert by_external == [created.id]
    shown = await asyncio.to_thread(client.users, id=created.id)
    assert (shown.name, shown.email, shown.external_id, shown.tags) == (
        "李雷", email, f"crm-{email[8:16]}", ["vip"])
    identities = await asyncio.to_thread(lambda: [(i.type, i.value) for i in client.users.identities(id=created.id)])
    assert sorted(identities) == sorted([("email", email), ("external_id", f"crm-{email[8:16]}")])

    shown.name = "李雷 (Li Lei)"
    updated = await asyncio.to_thread(client.users.update, shown)
    assert updated.name == "李雷 (Li Lei)"
    assert (await gw.get(f"/v1/customers/{native[0]['id']}", headers=headers)).json()["name"] == "李雷 (Li Lei)"

    me = await asyncio.to_thread(client.users.me)
    assert (me.email, me.role) == (token_user["email"], "admin")
    assert (await asyncio.to_thread(client.users, id=me.id)).email == token_user["email"]

    basic = token_user["basic"]
    agent = await gw.post("/api/v2/users.json", headers=basic, json={"user": {"name": "x", "email": "a@example.com",
                                                                             "role": "agent"}})
    assert agent.status_code == 422 and agent.json()["details"]["role"], agent.text
    assert (await gw.get("/api/v2/users/999999999999.json", headers=basic)).json()["error"] == "RecordNotFound"


async def test_zenpy_reads_the_incremental_export_to_the_end_of_the_stream(gw, client, token_user):
    import time

    start = int(time.time()) - 1
    made = []
    for n in range(3):
        r = await gw.post("/api/v2/tickets.json", headers=token_user["basic"], json={"ticket": {
            "subject": f"增量 {n}", "comment": {"body": "x"}, "requester": {"email": f"inc{n}@example.com"}}})
        made.append(r.json()["ticket"]["id"])

    async def both():
        """zenpy's export and the native one, read back to back; equal once no ticket changes
        between the two reads (a ticket shows again when it changes: its customer link, its SLA)."""
        exported = await asyncio.to_thread(
            lambda: [t.id for t in client.tickets.incremental(start_time=start, per_page=2)])
        native, cursor = [], None
        while True:
            params = {"cursor": cursor} if cursor else {"start_time": start}
            page = (await gw.get("/v1/export/tickets", params={**params, "limit": 2},
                                 headers=token_user["bearer"])).json()
            native += [t["number"] for t in page["items"]]
            cursor = page["next_cursor"]
            if page["end_of_stream"]:
                break
        return (exported, native) if exported == native else None

    exported, native = await eventually(both, timeout=60)
    assert set(made) <= set(exported) and len(exported) == len(set(exported))
    first = (await gw.get(f"/api/v2/incremental/tickets/cursor.json?start_time={start}&per_page=2",
                          headers=token_user["basic"])).json()
    assert set(first) == {"tickets", "after_cursor", "after_url", "before_cursor", "before_url", "end_of_stream"}
    assert first["end_of_stream"] is False and "cursor=" in first["after_url"]
    missing = await gw.get("/api/v2/incremental/tickets/cursor.json", headers=token_user["basic"])
    assert missing.status_code == 422 and missing.json()["details"]["start_time"], missing.text


async def test_organizations_ticket_fields_and_custom_fields(gw, client, token_user):
    from zenpy.lib.api_objects import Comment, CustomField, Organization, Ticket, User

    headers, basic = token_user["bearer"], token_user["basic"]
    name = f"华东贸易 {uuid.uuid4().hex[:6]}"
    created = await asyncio.to_thread(client.organizations.create, Organization(name=name, domain_names=[f"{name[-6:]}.example.com"]))
    assert isinstance(created.id, int) and created.name == name and created.domain_names == [f"{name[-6:]}.example.com"]
    shown = await asyncio.to_thread(client.organizations, id=created.id)
    native = (await gw.get("/v1/organizations", params={"name": name}, headers=headers)).json()["items"]
    assert len(native) == 1 and (shown.name, shown.domain_names) == (native[0]["name"], native[0]["domains"])
    listed = (await gw.get("/api/v2/organizations.json?page[size]=100", headers=basic)).json()
    assert created.id in [o["id"] for o in listed["organizations"]]
    taken = await gw.post("/api/v2/organizations.json", headers=basic, json={"organization": {"name": name}})
    assert taken.status_code == 422 and taken.json()["details"]["name"], taken.text
    assert (await gw.get("/api/v2/organizations/999999999999.json", headers=basic)).json()["error"] == "RecordNotFound"

    # a form field of the "question" type, written through Zendesk's custom_fields by id
    ticket_type = "question"
    current = await gw.get(f"/v1/forms/{ticket_type}", headers=headers)
    fields = current.json()["fields"] if current.status_code == 200 else []
    if not any(f["key"] == "order_no" for f in fields):
        r = await gw.put(f"/v1/forms/{ticket_type}", headers=headers, json={"fields": [*fields, {
            "key": "order_no", "label": "订单号 / Order number", "type": "text", "max_length": 32}]})
        assert r.status_code in (200, 201), r.text
    ticket_fields = await asyncio.to_thread(lambda: list(client.ticket_fields()))
    order_no = next(f for f in ticket_fields if f.title == "订单号 / Order number")
    assert order_no.type == "text" and isinstance(order_no.id, int)
    audit = await asyncio.to_thread(client.tickets.create, Ticket(
        subject="where is my order", type="question", comment=Comment(body="订单 SO-1"),
        requester=User(email="orders@example.com"), custom_fields=[CustomField(id=order_no.id, value="SO-1")]))
    number = audit.ticket.id
    assert (await native_ticket(gw, headers, number))["custom_fields"] == {"order_no": "SO-1"}
    ticket = await asyncio.to_thread(client.tickets, id=number)
    assert [(f["id"], f["value"]) for f in ticket.custom_fields] == [(order_no.id, "SO-1")]
    r = await gw.put(f"/api/v2/tickets/{number}.json", headers=basic,
                     json={"ticket": {"custom_fields": [{"id": order_no.id, "value": "SO-2"}]}})
    assert r.status_code == 200 and r.json()["ticket"]["custom_fields"] == [{"id": order_no.id, "value": "SO-2"}], r.text
    wrong = await gw.put(f"/api/v2/tickets/{number}.json", headers=basic,
                         json={"ticket": {"custom_fields": [{"id": 999999999999, "value": "x"}]}})
    assert wrong.status_code == 422 and wrong.json()["details"]["custom_fields"], wrong.text
    too_long = await gw.put(f"/api/v2/tickets/{number}.json", headers=basic,
                            json={"ticket": {"custom_fields": [{"id": order_no.id, "value": "x" * 100}]}})
    assert too_long.status_code == 422 and too_long.json()["error"] == "RecordInvalid", too_long.text


async def test_zenpy_deletes_lists_deleted_and_restores_a_ticket(gw, client, token_user, stack):
    """A soft delete: the ticket is gone from every read and search, listed among the deleted
    ones with the status it had, and back with that status after a restore."""
    from zenpy.lib.api_objects import Comment, Ticket, User
    from zenpy.lib.exception import RecordNotFoundException

    import time

    started = int(time.time()) - 1
    headers, basic = token_user["bearer"], token_user["basic"]
    requester = f"deleted-{uuid.uuid4().hex[:8]}@example.com"
    audit = await asyncio.to_thread(client.tickets.create, Ticket(
        subject="垃圾广告 spam", comment=Comment(body="buy now"), requester=User(email=requester)))
    number = audit.ticket.id
    native = await native_ticket(gw, headers, number)
    assert (await gw.patch(f"/v1/tickets/{native['id']}", json={"status": "pending"}, headers=headers)).status_code == 200

    await asyncio.to_thread(client.tickets.delete, audit.ticket)
    with pytest.raises(RecordNotFoundException):
        await asyncio.to_thread(client.tickets, id=number)
    assert (await gw.get(f"/v1/tickets/{native['id']}", headers=headers)).status_code == 404
    assert await asyncio.to_thread(lambda: [t.id for t in client.search(type="ticket", requester=requester)]) == []
    deleted = await asyncio.to_thread(lambda: [t for t in client.tickets.deleted()])
    mine = [t for t in deleted if t.id == number]
    assert len(mine) == 1 and mine[0].previous_state == "pending" and mine[0].subject == "垃圾广告 spam"
    assert mine[0].actor["id"] == audit.audit.author_id and mine[0].actor["name"] == "Zendesk script"
    again = await gw.delete(f"/api/v2/tickets/{number}.json", headers=basic)
    assert again.status_code == 404 and again.json()["error"] == "RecordNotFound", again.text
    # staff's incremental export shows the deletion, as Zendesk's does
    pages = [(await gw.get(f"/api/v2/incremental/tickets/cursor.json?start_time={started}&per_page=1000",
                           headers=basic)).json()]
    while not pages[-1]["end_of_stream"]:
        pages.append((await gw.get(httpx.URL(pages[-1]["after_url"]).raw_path.decode(), headers=basic)).json())
    assert any(t["id"] == number and t["status"] == "deleted" for page in pages for t in page["tickets"])

    await asyncio.to_thread(client.tickets.restore, audit.ticket)
    ticket = await asyncio.to_thread(client.tickets, id=number)
    assert (ticket.id, ticket.status) == (number, "pending")
    assert (await native_ticket(gw, headers, number))["status"] == "pending"
    assert number not in [t.id for t in await asyncio.to_thread(lambda: list(client.tickets.deleted()))]
    twice = await gw.put(f"/api/v2/deleted_tickets/{number}/restore.json", headers=basic)
    assert twice.status_code == 404 and twice.json()["error"] == "RecordNotFound", twice.text


async def test_deleting_is_for_admins_and_supervisors(gw, token_user, admin_headers):
    """An agent who may work the ticket is refused by role, in Zendesk's envelope."""
    email, password = f"zd-agent-{uuid.uuid4().hex[:8]}@example.com", uuid.uuid4().hex
    made = await gw.post("/v1/users", json={"email": email, "password": password, "role": "agent"},
                         headers=admin_headers)
    assert made.status_code == 201, made.text
    login = await gw.post("/v1/auth/login", json={"email": email, "password": password})
    agent = {"Authorization": f"Bearer {login.json()['access_token']}"}
    created = await gw.post("/api/v2/tickets.json", headers=token_user["basic"], json={"ticket": {
        "subject": "triage", "comment": {"body": "x"}, "requester": {"email": "triage@example.com"}}})
    number = created.json()["ticket"]["id"]
    assert (await gw.get(f"/api/v2/tickets/{number}.json", headers=agent)).status_code == 200  # the triage queue
    for request in (gw.delete(f"/api/v2/tickets/{number}.json", headers=agent),
                    gw.get("/api/v2/deleted_tickets.json", headers=agent),
                    gw.put(f"/api/v2/deleted_tickets/{number}/restore.json", headers=agent)):
        refused = await request
        assert refused.status_code == 403 and refused.json()["error"] == "Forbidden", refused.text
    assert (await gw.get(f"/api/v2/tickets/{number}.json", headers=agent)).status_code == 200  # still there


#: every endpoint of the surface, with requests that must fail in Zendesk's envelope: a 404 for an
#: id that names nothing, a 422 for a value it refuses (each endpoint also gets a 401 for a bad
#: token, below). ``N`` stands for a ticket number / user / organization id that exists nowhere.
N = 10**15
ERROR_CASES: dict[tuple[str, str], list[tuple[str, str, dict | None, int, str]]] = {
    ("POST", "/api/v2/tickets.json"): [("POST", "/api/v2/tickets.json", {"ticket": {"subject": "x"}}, 422, "RecordInvalid"),
                                       ("POST", "/api/v2/tickets.json", {"ticket": {"subject": "x", "comment": {
                                           "body": "x"}, "requester_id": N}}, 422, "RecordInvalid")],
    ("POST", "/api/v2/tickets"): [("POST", "/api/v2/tickets", {"ticket": "not an object"}, 422, "RecordInvalid")],
    ("GET", "/api/v2/tickets.json"): [("GET", "/api/v2/tickets.json?page[size]=1000", None, 422, "RecordInvalid")],
    ("GET", "/api/v2/tickets/show_many.json"): [("GET", "/api/v2/tickets/show_many.json?ids=abc", None, 422,
                                                 "RecordInvalid")],
    ("GET", "/api/v2/tickets/{number}.json"): [("GET", f"/api/v2/tickets/{N}.json", None, 404, "RecordNotFound"),
                                               ("GET", "/api/v2/tickets/abc.json", None, 422, "RecordInvalid")],
    ("PUT", "/api/v2/tickets/{number}.json"): [("PUT", f"/api/v2/tickets/{N}.json", {"ticket": {"priority": "high"}},
                                                404, "RecordNotFound"),
                                               ("PUT", "/api/v2/tickets/0.json", {"ticket": {}}, 422, "RecordInvalid")],
    ("DELETE", "/api/v2/tickets/{number}.json"): [("DELETE", f"/api/v2/tickets/{N}.json", None, 404, "RecordNotFound"),
                                                  ("DELETE", "/api/v2/tickets/abc.json", None, 422, "RecordInvalid")],
    ("GET", "/api/v2/tickets/{number}/comments.json"): [
        ("GET", f"/api/v2/tickets/{N}/comments.json", None, 404, "RecordNotFound"),
        ("GET", "/api/v2/tickets/abc/comments.json", None, 422, "RecordInvalid")],
    ("GET", "/api/v2/deleted_tickets.json"): [("GET", "/api/v2/deleted_tickets.json?page[size]=0", None, 422,
                                               "RecordInvalid")],
    ("PUT", "/api/v2/deleted_tickets/{number}/restore.json"): [
        ("PUT", f"/api/v2/deleted_tickets/{N}/restore.json", None, 404, "RecordNotFound"),
        ("PUT", "/api/v2/deleted_tickets/abc/restore.json", None, 422, "RecordInvalid")],
    ("GET", "/api/v2/groups.json"): [],
    ("GET", "/api/v2/ticket_fields.json"): [],
    ("GET", "/api/v2/users/me.json"): [],
    ("GET", "/api/v2/users/search.json"): [("GET", "/api/v2/users/search.json", None, 422, "RecordInvalid")],
    ("GET", "/api/v2/users/{user_id}.json"): [("GET", f"/api/v2/users/{N}.json", None, 404, "RecordNotFound"),
                                              ("GET", "/api/v2/users/abc.json", None, 422, "RecordInvalid")],
    ("PUT", "/api/v2/users/{user_id}.json"): [("PUT", f"/api/v2/users/{N}.json", {"user": {"name": "x"}}, 404,
                                               "RecordNotFound"),
                                              ("PUT", "/api/v2/users/abc.json", {"user": {}}, 422, "RecordInvalid")],
    ("GET", "/api/v2/users/{user_id}/identities.json"): [
        ("GET", f"/api/v2/users/{N}/identities.json", None, 404, "RecordNotFound"),
        ("GET", "/api/v2/users/abc/identities.json", None, 422, "RecordInvalid")],
    ("POST", "/api/v2/users.json"): [("POST", "/api/v2/users.json", {"user": {"name": "x", "role": "admin"}}, 422,
                                      "RecordInvalid")],
    ("POST", "/api/v2/organizations.json"): [("POST", "/api/v2/organizations.json", {"organization": {}}, 422,
                                              "RecordInvalid")],
    ("GET", "/api/v2/organizations.json"): [("GET", "/api/v2/organizations.json?page[size]=0", None, 422,
                                             "RecordInvalid")],
    ("GET", "/api/v2/organizations/{organization_id}.json"): [
        ("GET", f"/api/v2/organizations/{N}.json", None, 404, "RecordNotFound"),
        ("GET", "/api/v2/organizations/abc.json", None, 422, "RecordInvalid")],
    ("GET", "/api/v2/search.json"): [("GET", "/api/v2/search.json?query=-tags:spam", None, 422, "RecordInvalid"),
                                     ("GET", "/api/v2/search.json", None, 422, "RecordInvalid")],
    ("GET", "/api/v2/incremental/tickets/cursor.json"): [
        ("GET", "/api/v2/incremental/tickets/cursor.json", None, 422, "RecordInvalid"),
        ("GET", "/api/v2/incremental/tickets/cursor.json?cursor=forged", None, 422, "RecordInvalid")],
}


def concrete_path(template: str) -> str:
    return template.replace("{number}", "1").replace("{user_id}", "1").replace("{organization_id}", "1")


async def test_every_endpoint_answers_its_errors_in_zendesks_envelope(gw, token_user):
    from gateway.zendesk.endpoints import router

    served = {(method, route.path) for route in router.routes for method in route.methods
              if "{rest" not in route.path and method != "HEAD"}
    assert served == set(ERROR_CASES), "a /api/v2 endpoint without its error cases (or a case without an endpoint)"
    basic = token_user["basic"]
    bad_token = {"Authorization": "Basic " + base64.b64encode(
        f"{token_user['email']}/token:hdu_{'y' * 43}".encode()).decode()}

    def check(r: httpx.Response, status: int, error: str, where: str) -> None:
        assert r.status_code == status, (where, r.status_code, r.text)
        assert r.headers["content-type"] == "application/json", (where, r.headers["content-type"])
        body = r.json()
        assert body["error"] == error and body["description"] and body["request_id"] == r.headers["x-request-id"], \
            (where, body)
        if status == 422 and error == "RecordInvalid":
            assert body.get("details") is None or all(
                isinstance(v, list) and v and {"description", "error"} <= v[0].keys() for v in body["details"].values()), body

    for (method, template), cases in sorted(ERROR_CASES.items()):
        path = concrete_path(template)
        r = await gw.request(method, path, headers=bad_token, json={} if method in ("POST", "PUT") else None)
        check(r, 401, "Couldn't authenticate you", f"{method} {template} with a bad token")
        for case_method, case_path, body, status, error in cases:
            r = await gw.request(case_method, case_path, headers=basic, json=body)
            check(r, status, error, f"{case_method} {case_path}")
    for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
        r = await gw.request(method, "/api/v2/macros/1.json", headers=basic)
        check(r, 404, "InvalidEndpoint", f"{method} an endpoint this surface does not have")


async def test_a_rate_limited_client_gets_zendesks_429_with_retry_after(stack, token_user):
    """The per-user limit (20 requests a second, bursts of 200) answered as Zendesk does: 429,
    ``Retry-After`` in seconds, the error envelope. A fresh user of its own: no one else's budget."""
    async with httpx.AsyncClient(base_url=stack.creds["gateway_url"], timeout=30) as gw:
        limited = None
        for _ in range(20):  # at most 1,000 requests, bounded
            answers = await asyncio.gather(*[gw.get("/api/v2/users/me.json", headers=token_user["basic"])
                                             for _ in range(50)])
            limited = next((r for r in answers if r.status_code == 429), None)
            if limited is not None:
                break
        assert limited is not None, "no 429 after 1,000 requests"
        assert limited.headers["content-type"] == "application/json"
        assert int(limited.headers["retry-after"]) >= 1
        assert limited.json()["error"] == "TooManyRequests" and limited.json()["description"], limited.text
