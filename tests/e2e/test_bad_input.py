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
