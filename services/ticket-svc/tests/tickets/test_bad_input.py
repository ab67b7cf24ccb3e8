"""Bad input on ticket-svc's own API: a 4xx problem+json each time, never a 500 (issue 9, "Medium 5").

One row per input a client can send: NUL in query strings and paths (PostgreSQL text refuses
U+0000), lone surrogates and NaN in JSON bodies (PostgreSQL and orjson refuse them), integers
beyond the column (int64 audit cursors, int32 positions), a rename onto a taken unique name.
"""

import base64
import uuid

import orjson
import pytest
from sqlalchemy import text

from helpdesk_common.identity import Principal
from helpdesk_common.testing import identity_headers

CHANNEL = Principal(kind="channel", id="key-bad-input", channel="web")
AGENT = Principal(kind="user", id="u-agent", role="agent")
ADMIN = Principal(kind="user", id="u-admin", role="admin")

BODY = {"subject": "bad input", "requester": {"email": "bad-input@example.com"}}
INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1


def _raw(body: str) -> dict:
    """A JSON body sent as written (json= would refuse or re-encode a lone surrogate)."""
    return {"content": body.encode(), "headers": {"Content-Type": "application/json"}}


#: (id, method, url, request kwargs, principal, expected status, what the answer names); {ticket},
#: {team}, {status} are filled with rows the fixture creates first. The named field (or title)
#: shows the schema refused the input, not only the database-error safety net behind it.
CASES = [
    ("list-tag-nul", "GET", "/v1/tickets?tag=%00", {}, AGENT, 422, "query.tag"),
    ("list-tag-nul-second", "GET", "/v1/tickets?tag=ok&tag=a%00b", {}, AGENT, 422, "query.tag"),
    ("list-channel-nul", "GET", "/v1/tickets?channel=web%00", {}, AGENT, 422, "query.channel"),
    ("list-type-nul", "GET", "/v1/tickets?type=%00", {}, AGENT, 422, "query.type"),
    ("list-assignee-nul", "GET", "/v1/tickets?assignee_id=%00", {}, AGENT, 422, "query.assignee_id"),
    ("list-tier-nul", "GET", "/v1/tickets?customer_tier=vip%00", {}, AGENT, 422, "query.customer_tier"),
    ("list-q-nul", "GET", "/v1/tickets?q=%E9%80%80%00", {}, AGENT, 422, "query.q"),
    ("list-cursor-nul", "GET", "/v1/tickets?cursor=%00", {}, AGENT, 422, "query.cursor"),
    ("list-nul-as-channel", "GET", "/v1/tickets?channel=%00", {}, CHANNEL, 422, "query.channel"),
    ("list-created-after-overflows-utc", "GET", "/v1/tickets?created_after=9999-12-31T23:00:00-14:00", {}, AGENT,
     422, "query.created_after"),
    ("list-updated-before-underflows-utc", "GET", "/v1/tickets?updated_before=0001-01-01T00:00:00%2B14:00", {},
     AGENT, 422, "query.updated_before"),
    ("messages-cursor-nul", "GET", "/v1/tickets/{ticket}/messages?cursor=%00", {}, AGENT, 422, "query.cursor"),
    ("audit-cursor-beyond-int64", "GET", "/v1/tickets/{ticket}/audit?cursor=99999999999999999999", {}, AGENT, 422,
     "query.cursor"),
    ("audit-cursor-int64-plus-one", "GET", f"/v1/tickets/{{ticket}}/audit?cursor={INT64_MAX + 1}", {}, AGENT, 422,
     "query.cursor"),
    ("agent-path-nul", "GET", "/v1/agents/a%00b", {}, AGENT, 422, "path"),
    ("agent-put-path-nul", "PUT", "/v1/agents/a%00b", {"json": {"display_name": "x"}}, ADMIN, 422, "path"),
    ("create-custom-field-lone-surrogate", "POST", "/v1/tickets",
     _raw('{"subject": "x", "requester": {"email": "a@b.co"}, "custom_fields": {"k": "\\ud800"}}'), CHANNEL, 422,
     "custom_fields.k"),
    ("create-custom-field-key-lone-surrogate", "POST", "/v1/tickets",
     _raw('{"subject": "x", "requester": {"email": "a@b.co"}, "custom_fields": {"\\udfff": 1}}'), CHANNEL, 422,
     "custom_fields"),
    ("create-subject-lone-surrogate", "POST", "/v1/tickets",
     _raw('{"subject": "a\\ud83d", "requester": {"email": "a@b.co"}}'), CHANNEL, 422, "subject"),
    ("create-nested-lone-surrogate", "POST", "/v1/tickets",
     _raw('{"subject": "x", "requester": {"email": "a@b.co"}, "custom_fields": {"k": [{"v": "\\ude00"}]}}'),
     CHANNEL, 422, "custom_fields.k[0].v"),
    ("create-custom-field-nan", "POST", "/v1/tickets",
     _raw('{"subject": "x", "requester": {"email": "a@b.co"}, "custom_fields": {"k": NaN}}'), CHANNEL, 422,
     "custom_fields.k"),
    ("create-custom-field-infinity", "POST", "/v1/tickets",
     _raw('{"subject": "x", "requester": {"email": "a@b.co"}, "custom_fields": {"k": -Infinity}}'), CHANNEL, 422,
     "custom_fields.k"),
    ("patch-custom-field-lone-surrogate", "PATCH", "/v1/tickets/{ticket}",
     _raw('{"custom_fields": {"k": "\\ud800"}}'), AGENT, 422, "custom_fields.k"),
    ("message-lone-surrogate", "POST", "/v1/tickets/{ticket}/messages", _raw('{"body": "hi \\udbff"}'), AGENT, 422,
     "body"),
    ("status-position-beyond-int32", "POST", "/v1/statuses",
     {"json": {"key": "waiting_x", "label": "x", "category": "pending", "position": INT32_MAX + 1}}, ADMIN, 422,
     "position"),
    ("status-position-below-int32", "POST", "/v1/statuses",
     {"json": {"key": "waiting_y", "label": "y", "category": "pending", "position": -(2**31) - 1}}, ADMIN, 422,
     "position"),
    ("status-patch-position-beyond-int32", "PATCH", "/v1/statuses/{status}",
     {"json": {"position": 99999999999999999999}}, ADMIN, 422, "position"),
    ("view-position-beyond-int32", "POST", "/v1/views",
     {"json": {"name": "v", "filters": {}, "position": INT32_MAX + 1}}, AGENT, 422, "position"),
    ("team-rename-to-taken-name", "PUT", "/v1/teams/{team}",
     {"json": {"name": "Taken", "strategy": "manual", "accept_timeout_s": None, "required_skills": [], "members": []}},
     ADMIN, 409, "Team exists"),
    ("team-patch-to-taken-name", "PATCH", "/v1/teams/{team}", {"json": {"name": "Taken"}}, ADMIN, 409, "Team exists"),
    ("rule-operand-beyond-64-bits", "POST", "/v1/routing/rules",
     {"json": {"name": "r", "conditions": [{"field": "custom_fields.n", "op": "gt", "value": 2**70}],
               "actions": {"set_priority": "high"}}}, ADMIN, 422, "64 bits"),
    ("rule-list-operand-beyond-64-bits", "POST", "/v1/routing/rules",
     {"json": {"name": "r", "conditions": [{"field": "custom_fields.n", "op": "in", "value": [1, -(2**64)]}],
               "actions": {"set_priority": "high"}}}, ADMIN, 422, "64 bits"),
]


@pytest.fixture
async def rows(client):
    """A ticket, a custom status and two teams (one named "Taken") to aim the bad input at."""
    ticket = await client.post("/v1/tickets", json=BODY, headers=identity_headers(CHANNEL))
    assert ticket.status_code == 201, ticket.text
    status = await client.post("/v1/statuses", json={"key": "waiting_parts", "label": "Waiting", "category": "pending"},
                               headers=identity_headers(ADMIN))
    assert status.status_code == 201, status.text
    for name in ("Taken", "Renamed"):
        team = await client.post("/v1/teams", json={"name": name}, headers=identity_headers(ADMIN))
        assert team.status_code == 201, team.text
    return {"ticket": ticket.json()["id"], "status": status.json()["id"], "team": team.json()["id"]}


async def _counts(db) -> tuple[int, ...]:
    async with db.connect() as conn:
        return tuple([await conn.scalar(text(f"SELECT count(*) FROM {t}"))
                      for t in ("tickets", "messages", "custom_statuses", "teams", "agents", "outbox")])


@pytest.mark.parametrize(("method", "url", "kwargs", "principal", "expected", "named"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
async def test_bad_input_is_a_4xx_problem(client, db, rows, method, url, kwargs, principal, expected, named):
    before = await _counts(db)
    kwargs = dict(kwargs)
    headers = {**identity_headers(principal), **kwargs.pop("headers", {})}
    r = await client.request(method, url.format(**rows), headers=headers, **kwargs)
    assert r.status_code == expected, r.text
    assert r.headers["content-type"] == "application/problem+json"
    problem = r.json()
    assert problem["status"] == expected and problem["type"].startswith("https://")
    assert named in r.text, problem
    assert await _counts(db) == before, "bad input stored something"
    async with db.connect() as conn:
        assert await conn.scalar(text("SELECT name FROM teams WHERE id = :t"), {"t": rows["team"]}) == "Renamed"


async def test_query_nul_names_the_parameter(client):
    r = await client.get("/v1/tickets", params={"status": "open", "channel": "a\x00"}, headers=identity_headers(AGENT))
    assert r.status_code == 422
    assert [e["field"] for e in r.json()["errors"]] == ["query.channel"]


async def test_lone_surrogate_names_the_field(client):
    r = await client.post("/v1/tickets", headers={**identity_headers(CHANNEL), "Content-Type": "application/json"},
                          content=b'{"subject": "x", "requester": {"email": "a@b.co"}, "custom_fields": {"k": "\\ud800"}}')
    assert r.status_code == 422
    assert "custom_fields.k" in r.text and "surrogate" in r.text


async def test_edges_that_fit_are_accepted(client, rows):
    """The bounds are the columns' own: int32 positions and int64 cursors at the limit work."""
    at_max = await client.post("/v1/statuses", json={"key": "at_max", "label": "x", "category": "pending",
                                                     "position": INT32_MAX}, headers=identity_headers(ADMIN))
    assert at_max.status_code == 201, at_max.text
    at_min = await client.patch(f"/v1/statuses/{rows['status']}", json={"position": -(2**31)},
                                headers=identity_headers(ADMIN))
    assert at_min.status_code == 200, at_min.text
    audit = await client.get(f"/v1/tickets/{rows['ticket']}/audit", params={"cursor": str(INT64_MAX)},
                             headers=identity_headers(AGENT))
    assert audit.status_code == 200 and audit.json()["items"] == []
    paired = await client.post("/v1/tickets", json={**BODY, "subject": "emoji \U0001F600 好"},
                               headers=identity_headers(CHANNEL))  # a surrogate *pair* is fine
    assert paired.status_code == 201 and paired.json()["subject"] == "emoji \U0001F600 好"
    listed = await client.get("/v1/tickets", params={"created_after": "2000-01-01T00:00:00+14:00"},
                              headers=identity_headers(AGENT))
    assert listed.status_code == 200


async def test_renaming_a_team_to_its_own_name_is_not_a_conflict(client, rows):
    r = await client.put(f"/v1/teams/{rows['team']}", json={"name": "Renamed", "strategy": "manual",
                                                             "accept_timeout_s": None, "required_skills": [],
                                                             "members": []}, headers=identity_headers(ADMIN))
    assert r.status_code == 200, r.text


# --- attachments: the stored content type and file name end up in response headers ----------

NASTY_TYPES = ["图片/png", "text/plain\r\nSet-Cookie: a=b", "text/html\nX-Injected: 1", "\u00e9t\u00e9/x", "a b/c",
               "application/pdf; name=\"x\r\ny\""]


@pytest.mark.parametrize("content_type", NASTY_TYPES)
async def test_nasty_content_type_is_stored_safe(client, rows, content_type):
    url = f"/v1/tickets/{rows['ticket']}/messages"
    posted = await client.post(url, json={"body": "see file", "attachments": [
        {"filename": "report.pdf", "content_type": content_type, "content_base64": base64.b64encode(b"%PDF").decode()}]},
        headers=identity_headers(AGENT))
    assert posted.status_code == 201, posted.text
    meta = posted.json()["attachments"][0]
    assert meta["content_type"] in ("application/pdf", "application/octet-stream"), meta
    got = await client.get(f"/v1/tickets/{rows['ticket']}/attachments/{meta['id']}", headers=identity_headers(AGENT))
    assert got.status_code == 200 and got.content == b"%PDF"
    assert got.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize(("stored_type", "stored_name"), [
    ("图片/png", "报价单.pdf"),
    ("text/plain\r\nSet-Cookie: a=b", 'evil".txt'),
    ("text/html\nX-Injected: 1", "line\r\nbreak.txt"),
    ("application/pdf", 'a\\b"c.pdf'),
])
async def test_download_sanitises_what_older_rows_hold(client, db, rows, stored_type, stored_name):
    """Rows written before upload-time sanitising (or by hand) must not break or inject headers."""
    url = f"/v1/tickets/{rows['ticket']}/messages"
    posted = await client.post(url, json={"body": "file", "attachments": [
        {"filename": "x.bin", "content_base64": base64.b64encode(b"data").decode()}]}, headers=identity_headers(AGENT))
    meta = posted.json()["attachments"][0]
    forged = {**meta, "content_type": stored_type, "filename": stored_name}
    async with db.begin() as conn:
        await conn.execute(text("UPDATE messages SET attachments = CAST(:a AS jsonb) WHERE id = :m"),
                           {"a": orjson.dumps([forged]).decode(), "m": posted.json()["id"]})
    got = await client.get(f"/v1/tickets/{rows['ticket']}/attachments/{meta['id']}", headers=identity_headers(AGENT))
    assert got.status_code == 200 and got.content == b"data"
    assert "set-cookie" not in got.headers and "x-injected" not in got.headers
    for name, value in got.headers.items():
        assert "\r" not in value and "\n" not in value, (name, value)
    disposition = got.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="')
    assert "filename*=UTF-8''" in disposition
    assert got.headers["x-attachment-content-type"].isascii()
    assert got.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize(("filename", "fallback", "encoded"), [
    ('say "hi".txt', 'say \\"hi\\".txt', "say%20%22hi%22.txt"),
    ("报价单.pdf", "___.pdf", "%E6%8A%A5%E4%BB%B7%E5%8D%95.pdf"),
    ("it's.txt", "it's.txt", "it%27s.txt"),
])
async def test_content_disposition_escapes_the_name(client, rows, filename, fallback, encoded):
    posted = await client.post(f"/v1/tickets/{rows['ticket']}/messages", json={"body": "f", "attachments": [
        {"filename": filename, "content_base64": base64.b64encode(b"x").decode()}]}, headers=identity_headers(AGENT))
    meta = posted.json()["attachments"][0]
    got = await client.get(f"/v1/tickets/{rows['ticket']}/attachments/{meta['id']}", headers=identity_headers(AGENT))
    assert got.headers["content-disposition"] == f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}"


async def test_unknown_ids_still_404(client):
    r = await client.get(f"/v1/tickets/{uuid.uuid4()}/audit", params={"cursor": "5"}, headers=identity_headers(AGENT))
    assert r.status_code == 404


# --- channel intake: NUL in third-party payloads ----------------------------------------------------
#
# E-mail (RFC 5322 forbids NUL, broken mailers still send it) and DingTalk carry text we cannot
# send back for correction: NUL is dropped from every text field of the parsed message, so the
# customer's message is kept instead of a 500 (or a 4xx that loses it). Our own JSON contracts
# (API, chat, phone, web form) keep refusing NUL with a 422.

def _key(kind: str) -> Principal:
    return Principal(kind="channel", id=f"{kind}-key", channel=kind)


_PLAIN = b"To: support@example.cn\r\nContent-Type: text/plain; charset=utf-8\r\n"
NUL_IN_CHANNELS = [
    ("email-message-id", "email", b"From: a@b.cn\r\nSubject: hi\r\nMessage-ID: <n\x001@x.cn>\r\n" + _PLAIN + b"\r\nbody\r\n"),
    ("email-from-address", "email", b"From: a\x00@b.cn\r\nSubject: hi\r\nMessage-ID: <n2@x.cn>\r\n" + _PLAIN + b"\r\nbody\r\n"),
    ("email-in-reply-to", "email", b"From: a@b.cn\r\nSubject: hi\r\nMessage-ID: <n3@x.cn>\r\nIn-Reply-To: <x\x00y@z>\r\n"
     + _PLAIN + b"\r\nbody\r\n"),
    ("email-cc", "email", b"From: a@b.cn\r\nCc: c\x00@d.cn\r\nSubject: hi\r\nMessage-ID: <n4@x.cn>\r\n" + _PLAIN
     + b"\r\nbody\r\n"),
    ("email-html-body", "email", b"From: a@b.cn\r\nSubject: hi\r\nMessage-ID: <n5@x.cn>\r\nTo: s@x.cn\r\n"
     b"Content-Type: text/html; charset=utf-8\r\n\r\n<p>a\x00b</p>\r\n"),
    ("email-quoted-printable-body", "email", b"From: a@b.cn\r\nSubject: hi\r\nMessage-ID: <n6@x.cn>\r\nTo: s@x.cn\r\n"
     b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\na=00b\r\n"),
    ("email-plain-body", "email", b"From: a@b.cn\r\nSubject: hi\r\nMessage-ID: <n7@x.cn>\r\n" + _PLAIN + b"\r\nab\x00cd\r\n"),
    ("email-nul-in-charset", "email", b"From: a@b.cn\r\nSubject: hi\r\nMessage-ID: <n8@x.cn>\r\nTo: s@x.cn\r\n"
     b"Content-Type: text/plain; charset=\x00ISO-8859-1\r\n\r\nR\xe9sum\xe9\r\n"),
    ("dingtalk-text-and-nick", "dingtalk", orjson.dumps({
        "msgtype": "text", "text": {"content": "打印机\u0000坏了"}, "msgId": "nul-1", "conversationType": "1",
        "conversationId": "cid-nul", "senderId": "s-1", "senderNick": "王\u0000五"})),
]


@pytest.mark.parametrize(("kind", "payload"), [c[1:] for c in NUL_IN_CHANNELS], ids=[c[0] for c in NUL_IN_CHANNELS])
async def test_nul_in_a_channel_message_is_dropped_not_a_500(client, db, kind, payload):
    ctype = {"email": "message/rfc822", "dingtalk": "application/json"}[kind]
    headers = {**identity_headers(_key(kind)), "Content-Type": ctype}
    first = await client.post(f"/v1/channels/{kind}/inbound", content=payload, headers=headers)
    assert first.status_code == 201, first.text
    again = await client.post(f"/v1/channels/{kind}/inbound", content=payload, headers=headers)
    assert again.status_code == 200 and again.json()["ticket_id"] == first.json()["ticket_id"]  # still exactly once
    async with db.connect() as conn:
        stored = await conn.scalar(text(
            "SELECT concat_ws('|', t.subject, t.requester::text, m.body_text, m.body_html, m.external_id, "
            "m.metadata::text, d.external_id) FROM tickets t JOIN messages m ON m.ticket_id = t.id "
            "JOIN channel_deliveries d ON d.ticket_id = t.id WHERE t.id = :t"), {"t": first.json()["ticket_id"]})
    assert stored and "\x00" not in stored and "\\u0000" not in stored
