"""Bad input through the gateway: a 4xx problem+json each time, and nothing stored."""

import pytest

GOOD = {"subject": "hello", "requester": {"email": "bad-input@example.com"}}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b'{"subject": "x", "requester": {', 400),
        (b'{"subject": ["x"], "requester": {"email": "a@b.co"}}', 422),
        (b'{"subject": "x", "requester": {"email": "a@b.co"}, "is_admin": true}', 422),
        (b'{"subject": "x", "requester": {"email": "a@b.co"}, "priority": 5}', 422),
        (b'{"subject": "x\\u0000", "requester": {"email": "a@b.co"}}', 422),
        (b'{"subject": "' + b"A" * (2 * 1024 * 1024) + b'", "requester": {"email": "a@b.co"}}', 413),
    ],
    ids=["malformed-json", "wrong-type", "unknown-field", "bad-priority", "nul-byte", "2mb-body"],
)
async def test_bad_body(gw, key_headers, sql, raw, expected):
    before = await sql("ticket-svc", "SELECT count(*) FROM tickets")
    r = await gw.post("/v1/tickets", content=raw, headers=key_headers | {"Content-Type": "application/json"})
    assert r.status_code == expected, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["status"] == expected
    assert await sql("ticket-svc", "SELECT count(*) FROM tickets") == before


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer hdk_not-a-real-key"}, {"Authorization": "Basic Zm9vOmJhcg=="}, {"Authorization": "Bearer"}],
    ids=["missing", "wrong-key", "wrong-scheme", "empty"],
)
async def test_missing_or_wrong_key(gw, sql, headers):
    before = await sql("ticket-svc", "SELECT count(*) FROM tickets")
    r = await gw.post("/v1/tickets", json=GOOD, headers=headers)
    assert r.status_code == 401
    assert r.headers["content-type"].startswith("application/problem+json")
    assert await sql("ticket-svc", "SELECT count(*) FROM tickets") == before


async def test_forged_internal_identity_is_ignored(gw, sql):
    before = await sql("ticket-svc", "SELECT count(*) FROM tickets")
    r = await gw.post("/v1/tickets", json=GOOD, headers={"X-Internal-Identity": "forged"})
    assert r.status_code == 401
    assert await sql("ticket-svc", "SELECT count(*) FROM tickets") == before


# --- issue 9, "Medium 5": inputs that were 500s through the gateway -------------------------------
#
# Each row is sent as a client would send it, through the gateway to the owning service: NUL in
# query strings and paths, lone surrogates and NaN in JSON, integers beyond their column, a
# forged cursor, a date that overflows in UTC, a rename onto a taken unique name. Every answer
# is a 4xx problem+json; none is a 500.

import base64  # noqa: E402
import json  # noqa: E402
import uuid  # noqa: E402

import orjson  # noqa: E402
from sqlalchemy.ext.asyncio import create_async_engine  # noqa: E402
from sqlalchemy import text  # noqa: E402


def _json(body: str) -> dict:
    """A JSON body sent as written (httpx's json= would refuse a lone surrogate or NaN)."""
    return {"content": body.encode(), "headers": {"Content-Type": "application/json"}}


def _forged_cursor(first: object) -> str:
    return base64.urlsafe_b64encode(json.dumps([first, str(uuid.uuid4())]).encode()).decode().rstrip("=")


INT32_OVER = 2**31
TICKET_WITH = '{"subject": "x", "requester": {"email": "bad-input@example.com"}, "custom_fields": {"k": %s}}'

#: (id, who, method, url, request kwargs, expected status); {ticket}, {team}, {status} are rows the
#: fixture makes first
BAD_INPUTS = [
    ("tickets-tag-nul", "key", "GET", "/v1/tickets?tag=%00", {}, 422),
    ("tickets-channel-nul", "admin", "GET", "/v1/tickets?channel=%00", {}, 422),
    ("tickets-type-nul", "admin", "GET", "/v1/tickets?type=a%00", {}, 422),
    ("tickets-assignee-nul", "admin", "GET", "/v1/tickets?assignee_id=%00", {}, 422),
    ("tickets-tier-nul", "admin", "GET", "/v1/tickets?customer_tier=vip%00", {}, 422),
    ("tickets-q-nul", "admin", "GET", "/v1/tickets?q=%E9%80%80%00", {}, 422),
    ("tickets-created-after-overflows-utc", "admin", "GET", "/v1/tickets?created_after=9999-12-31T23:00:00-14:00",
     {}, 422),
    ("customers-tier-nul", "admin", "GET", "/v1/customers?tier=%00", {}, 422),
    ("customers-email-nul", "admin", "GET", "/v1/customers?email=a%00@b.co", {}, 422),
    ("customers-cursor-overflows-utc", "admin", "GET",
     f"/v1/customers?cursor={_forged_cursor('9999-12-31T23:00:00-14:00')}", {}, 400),
    ("sla-policies-cursor-nul", "admin", "GET", "/v1/sla/policies?cursor=%00", {}, 422),
    ("sla-policies-cursor-forged", "admin", "GET", f"/v1/sla/policies?cursor={_forged_cursor('abc')}", {}, 400),
    ("sla-policies-cursor-beyond-int64", "admin", "GET", f"/v1/sla/policies?cursor={_forged_cursor(10**20)}", {},
     400),
    ("sla-compliance-overflows-utc", "admin", "GET",
     "/v1/sla/compliance?from=0001-01-01T00:00:00%2B14:00&to=2026-01-01T00:00:00Z", {}, 422),
    ("analytics-tz-nul", "admin", "GET", "/v1/analytics/kpis?tz=UTC%00", {}, 422),
    ("agents-path-nul", "admin", "GET", "/v1/agents/a%00b", {}, 422),
    ("ticket-custom-field-lone-surrogate", "key", "POST", "/v1/tickets", _json(TICKET_WITH % '"\\ud800"'), 422),
    ("ticket-custom-field-nan", "key", "POST", "/v1/tickets", _json(TICKET_WITH % "NaN"), 422),
    ("ticket-patch-lone-surrogate", "admin", "PATCH", "/v1/tickets/{ticket}",
     _json('{"custom_fields": {"k": ["\\udc00"]}}'), 422),
    ("message-lone-surrogate", "admin", "POST", "/v1/tickets/{ticket}/messages", _json('{"body": "\\ud800"}'), 422),
    ("audit-cursor-beyond-int64", "admin", "GET", "/v1/tickets/{ticket}/audit?cursor=99999999999999999999", {}, 422),
    ("status-position-beyond-int32", "admin", "POST", "/v1/statuses",
     {"json": {"key": "bad_position", "label": "x", "category": "pending", "position": INT32_OVER}}, 422),
    ("status-patch-position-beyond-int32", "admin", "PATCH", "/v1/statuses/{status}",
     {"json": {"position": INT32_OVER}}, 422),
    ("team-rename-to-taken-name", "admin", "PUT", "/v1/teams/{team}",
     {"json": {"name": "{taken}", "strategy": "manual", "accept_timeout_s": None, "required_skills": [],
               "members": []}}, 409),
    ("team-patch-to-taken-name", "admin", "PATCH", "/v1/teams/{team}", {"json": {"name": "{taken}"}}, 409),
]


@pytest.fixture
async def targets(gw, admin_headers, key_headers):
    """A ticket, a custom status and two teams, named uniquely (the stack is shared by the session)."""
    unique = uuid.uuid4().hex[:8]
    ticket = await gw.post("/v1/tickets", json=GOOD, headers=key_headers)
    assert ticket.status_code == 201, ticket.text
    status = await gw.post("/v1/statuses", json={"key": f"bad_{unique}", "label": "x", "category": "pending"},
                           headers=admin_headers)
    assert status.status_code == 201, status.text
    taken = await gw.post("/v1/teams", json={"name": f"Taken {unique}"}, headers=admin_headers)
    team = await gw.post("/v1/teams", json={"name": f"Other {unique}"}, headers=admin_headers)
    assert taken.status_code == team.status_code == 201, (taken.text, team.text)
    return {"ticket": ticket.json()["id"], "status": status.json()["id"], "team": team.json()["id"],
            "taken": f"Taken {unique}"}


@pytest.mark.parametrize(("who", "method", "url", "kwargs", "expected"), [row[1:] for row in BAD_INPUTS],
                         ids=[row[0] for row in BAD_INPUTS])
async def test_input_that_was_a_500_is_a_4xx_problem(gw, admin_headers, key_headers, sql, targets, who, method, url,
                                                      kwargs, expected):
    before = await sql("ticket-svc", "SELECT count(*) FROM tickets")
    kwargs = dict(kwargs)
    if "json" in kwargs:
        kwargs["json"] = json.loads(json.dumps(kwargs["json"]).replace("{taken}", targets["taken"]))
    headers = {**(admin_headers if who == "admin" else key_headers), **kwargs.pop("headers", {})}
    r = await gw.request(method, url.format(**targets), headers=headers, **kwargs)
    assert r.status_code == expected, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["status"] == expected
    assert await sql("ticket-svc", "SELECT count(*) FROM tickets") == before


async def test_attachment_download_with_a_nasty_stored_type_and_name(gw, admin_headers, stack, targets):
    """Stored metadata reaches response headers: a declared type is stored safe, and a row stored
    before that (forged here) downloads with safe, escaped headers instead of a 500."""
    url = f"/v1/tickets/{targets['ticket']}/messages"
    posted = await gw.post(url, json={"body": "file", "attachments": [
        {"filename": 'quote "me".pdf', "content_type": "图片/png\r\nSet-Cookie: a=b",
         "content_base64": base64.b64encode(b"%PDF-1.4").decode()}]}, headers=admin_headers)
    assert posted.status_code == 201, posted.text
    meta = posted.json()["attachments"][0]
    assert meta["content_type"] == "application/pdf"
    download = f"/v1/tickets/{targets['ticket']}/attachments/{meta['id']}"
    got = await gw.get(download, headers=admin_headers)
    assert got.status_code == 200 and got.content == b"%PDF-1.4"
    assert got.headers["content-disposition"] == (
        "attachment; filename=\"quote \\\"me\\\".pdf\"; filename*=UTF-8''quote%20%22me%22.pdf")
    assert got.headers["x-content-type-options"] == "nosniff"

    engine = create_async_engine(stack.database_url("ticket-svc"))
    try:
        async with engine.begin() as conn:
            forged = {**meta, "content_type": "图片/png\r\nSet-Cookie: a=b", "filename": "报价\r\nX-Injected: 1.pdf"}
            await conn.execute(text("UPDATE messages SET attachments = CAST(:a AS jsonb) WHERE id = :m"),
                               {"a": orjson.dumps([forged]).decode(), "m": posted.json()["id"]})
    finally:
        await engine.dispose()
    got = await gw.get(download, headers=admin_headers)
    assert got.status_code == 200, got.text
    assert "set-cookie" not in got.headers and "x-injected" not in got.headers
    assert got.headers["x-attachment-content-type"] == "application/pdf"
    assert got.headers["content-disposition"].startswith('attachment; filename="__X-Injected: 1.pdf"')
