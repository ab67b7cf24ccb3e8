"""Bad input on sla-svc's API: a 4xx problem+json each time, never a 500 (issue 9, "Medium 5").

Forged keyset cursors (a policy position that is not an int or beyond the column, a calendar
date that overflows in UTC), NUL in the query string, datetimes that overflow once converted to
UTC, lone surrogates and NaN in policy conditions.
"""

from __future__ import annotations

import base64
import json
import uuid

import pytest

from helpdesk_common.identity import Principal
from helpdesk_common.testing import identity_headers

ADMIN = identity_headers(Principal(kind="user", id="admin", role="admin"))
AGENT = identity_headers(Principal(kind="user", id="agent", role="agent"))
PROBLEM = "application/problem+json"

POLICY = {"name": "VIP", "targets": {"first_response": {"minutes": 30}}}
CALENDAR = {"name": "24x7", "timezone": "UTC", "weekly_hours": {d: [["00:00", "24:00"]] for d in
                                                                ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}}


def cursor(first: object) -> str:
    """A cursor as the API encodes them, around a forged first element."""
    return base64.urlsafe_b64encode(json.dumps([first, str(uuid.uuid4())]).encode()).decode().rstrip("=")


def _raw(body: str) -> dict:
    return {"content": body.encode(), "headers": {"Content-Type": "application/json"}}


#: (id, method, url, request kwargs, expected status, what the answer names)
CASES = [
    ("policies-cursor-nul", "GET", "/v1/sla/policies?cursor=%00", {}, 422, "query.cursor"),
    ("policies-cursor-position-text", "GET", f"/v1/sla/policies?cursor={cursor('abc')}", {}, 400, "invalid-cursor"),
    ("policies-cursor-position-null", "GET", f"/v1/sla/policies?cursor={cursor(None)}", {}, 400, "invalid-cursor"),
    ("policies-cursor-position-list", "GET", f"/v1/sla/policies?cursor={cursor([1])}", {}, 400, "invalid-cursor"),
    ("policies-cursor-position-beyond-int32", "GET", f"/v1/sla/policies?cursor={cursor(2**31)}", {}, 400,
     "invalid-cursor"),
    ("policies-cursor-position-beyond-int64", "GET", f"/v1/sla/policies?cursor={cursor(10**20)}", {}, 400,
     "invalid-cursor"),
    ("policies-cursor-too-long", "GET", "/v1/sla/policies?cursor=" + "A" * 600, {}, 422, "query.cursor"),
    ("calendars-cursor-overflows-utc", "GET", f"/v1/sla/calendars?cursor={cursor('9999-12-31T23:00:00-14:00')}",
     {}, 400, "invalid-cursor"),
    ("calendars-cursor-nul", "GET", "/v1/sla/calendars?cursor=a%00", {}, 422, "query.cursor"),
    ("compliance-from-underflows-utc", "GET",
     "/v1/sla/compliance?from=0001-01-01T00:00:00%2B14:00&to=2026-01-01T00:00:00Z", {}, 422, "query.from"),
    ("compliance-to-overflows-utc", "GET",
     "/v1/sla/compliance?from=2026-01-01T00:00:00Z&to=9999-12-31T23:00:00-14:00", {}, 422, "query.to"),
    ("due-past-year-9999", "POST", "/v1/sla/calendars/{calendar}/due",
     {"json": {"start": "9999-12-31T23:00:00Z", "minutes": 600}}, 422, "due"),
    ("due-start-overflows-utc", "POST", "/v1/sla/calendars/{calendar}/due",
     {"json": {"start": "9999-12-31T23:00:00-14:00", "minutes": 1}}, 422, "start"),
    ("policy-condition-lone-surrogate", "POST", "/v1/sla/policies",
     _raw('{"name": "x", "targets": {"first_response": {"minutes": 5}}, '
          '"conditions": {"custom_fields": {"k": ["\\ud800"]}}}'), 422, "surrogate"),
    ("policy-condition-nan", "POST", "/v1/sla/policies",
     _raw('{"name": "x", "targets": {"first_response": {"minutes": 5}}, '
          '"conditions": {"custom_fields": {"k": [NaN]}}}'), 422, "NaN"),
    ("policy-condition-int-beyond-64-bits", "POST", "/v1/sla/policies",
     {"json": {**POLICY, "conditions": {"custom_fields": {"k": [2**70]}}}}, 422, "custom_fields"),
    ("policy-position-beyond-int32", "POST", "/v1/sla/policies",
     {"json": {**POLICY, "position": 2**31}}, 422, "position"),
]


@pytest.fixture
async def calendar(api):
    r = await api.post("/v1/sla/calendars", json=CALENDAR, headers=ADMIN)
    assert r.status_code == 201, r.text
    return r.json()["id"]


@pytest.mark.parametrize(("method", "url", "kwargs", "expected", "named"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
async def test_bad_input_is_a_4xx_problem(api, db, calendar, method, url, kwargs, expected, named):
    from sqlalchemy import text

    kwargs = dict(kwargs)
    headers = {**ADMIN, **kwargs.pop("headers", {})}
    r = await api.request(method, url.format(calendar=calendar), headers=headers, **kwargs)
    assert r.status_code == expected, r.text
    assert r.headers["content-type"] == PROBLEM
    assert r.json()["status"] == expected
    assert named in r.text, r.text
    async with db.connect() as conn:
        assert await conn.scalar(text("SELECT count(*) FROM policies")) == 0


async def test_good_cursors_and_dates_still_work(api, calendar):
    for n in range(3):
        assert (await api.post("/v1/sla/policies", json={**POLICY, "name": f"p{n}"}, headers=ADMIN)).status_code == 201
    first = (await api.get("/v1/sla/policies", params={"limit": 2}, headers=AGENT)).json()
    rest = (await api.get("/v1/sla/policies", params={"limit": 2, "cursor": first["next_cursor"]}, headers=AGENT))
    assert rest.status_code == 200 and len(first["items"]) + len(rest.json()["items"]) == 3
    r = await api.get("/v1/sla/compliance", params={"from": "2026-01-01T00:00:00+08:00", "to": "2026-02-01T00:00:00Z"},
                      headers=AGENT)
    assert r.status_code == 200, r.text
