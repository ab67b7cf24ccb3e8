"""Policies and calendars API: roles, validation as a user would send it, versions, cursors,
and due-time computation (a calendar with no working time is a 422, never a hang)."""

from __future__ import annotations

import uuid

import pytest

from helpdesk_common.identity import Principal
from helpdesk_common.testing import identity_headers

ADMIN = identity_headers(Principal(kind="user", id="admin", role="admin"))
SUPERVISOR = identity_headers(Principal(kind="user", id="sup", role="supervisor"))
AGENT = identity_headers(Principal(kind="user", id="agent", role="agent"))
CHANNEL = identity_headers(Principal(kind="channel", id="k", channel="api"))
PROBLEM = "application/problem+json"

CN_OFFICE = {
    "name": "上海办公室", "timezone": "Asia/Shanghai",
    "weekly_hours": {d: [["09:00", "12:00"], ["13:00", "18:00"]] for d in ("mon", "tue", "wed", "thu", "fri")},
    "holiday_country": "CN", "holiday_subdivision": None, "extra_holidays": [], "extra_working_days": [],
}


async def test_calendar_crud_and_due(api):
    r = await api.post("/v1/sla/calendars", json=CN_OFFICE, headers=ADMIN)
    assert r.status_code == 201, r.text
    cal = r.json()
    assert cal["name"] == "上海办公室" and cal["version"] == 1 and r.headers["etag"] == 'W/"1"'
    assert (await api.get(f"/v1/sla/calendars/{cal['id']}", headers=AGENT)).json()["weekly_hours"] == cal[
        "weekly_hours"]
    # 2026-09-30 (Wed) 17:00 Shanghai + 120 business minutes: 1 h that day, then the National Day holidays
    # (Oct 1-7 closed in 2026) and the next working day's first hour
    r = await api.post(f"/v1/sla/calendars/{cal['id']}/due", json={"start": "2026-09-30T17:00:00+08:00",
                                                                   "minutes": 120}, headers=AGENT)
    assert r.status_code == 200, r.text
    assert r.json()["due_at"].endswith("Z")
    assert r.json()["due_at"] > "2026-10-07T00:00:00Z"
    r = await api.put(f"/v1/sla/calendars/{cal['id']}", json={**CN_OFFICE, "name": "Shanghai"},
                      headers={**ADMIN, "If-Match": 'W/"7"'})
    assert r.status_code == 412 and r.headers["content-type"] == PROBLEM
    r = await api.put(f"/v1/sla/calendars/{cal['id']}", json={**CN_OFFICE, "name": "Shanghai"},
                      headers={**ADMIN, "If-Match": 'W/"1"'})
    assert r.status_code == 200 and r.json()["version"] == 2 and r.json()["name"] == "Shanghai"
    page = (await api.get("/v1/sla/calendars", params={"limit": 1}, headers=AGENT)).json()
    assert [c["id"] for c in page["items"]] == [cal["id"]] and page["next_cursor"] is None


async def test_due_on_a_calendar_without_working_time_is_a_422_not_a_hang(api):
    r = await api.post("/v1/sla/calendars", json={"name": "never", "timezone": "UTC"}, headers=ADMIN)
    assert r.status_code == 201, r.text
    r = await api.post(f"/v1/sla/calendars/{r.json()['id']}/due", json={"start": "2026-01-01T00:00:00Z",
                                                                          "minutes": 1}, headers=AGENT)
    assert r.status_code == 422 and r.headers["content-type"] == PROBLEM
    assert r.json()["type"].endswith("/no-working-time")


@pytest.mark.parametrize("body", [
    {**CN_OFFICE, "timezone": "Mars/Olympus"},
    {**CN_OFFICE, "weekly_hours": {"mon": [["18:00", "09:00"]]}},
    {**CN_OFFICE, "unknown": 1},
    {**CN_OFFICE, "name": "a\u0000b"},
    {**CN_OFFICE, "holiday_country": "XX"},
])
async def test_bad_calendars_are_422(api, body):
    r = await api.post("/v1/sla/calendars", json=body, headers=ADMIN)
    assert r.status_code == 422 and r.headers["content-type"] == PROBLEM


async def test_roles(api):
    body = {"name": "p", "targets": {"first_response": {"minutes": 10}}}
    for headers in (SUPERVISOR, AGENT, CHANNEL):
        for method, path, payload in (("post", "/v1/sla/policies", body), ("post", "/v1/sla/calendars", CN_OFFICE)):
            r = await api.request(method, path, json=payload, headers=headers)
            assert r.status_code == 403 and r.headers["content-type"] == PROBLEM
    for path in ("/v1/sla/policies", "/v1/sla/calendars", f"/v1/sla/tickets/{uuid.uuid4()}",
                 "/v1/sla/compliance?from=2026-01-01T00:00:00Z&to=2026-02-01T00:00:00Z"):
        assert (await api.get(path, headers=CHANNEL)).status_code == 403
        # a ticket's SLA for an agent asks ticket-svc first (test_ticket_access.py)
        reader = SUPERVISOR if "/tickets/" in path else AGENT
        assert (await api.get(path, headers=reader)).status_code == 200
        assert (await api.get(path)).status_code == 401


async def test_policy_crud_order_and_cursor(api):
    ids = []
    for name, position in (("b", 20), ("a", 10), ("c", None)):
        body = {"name": name, "targets": {"resolution": {"minutes": 600}}}
        if position is not None:
            body["position"] = position
        r = await api.post("/v1/sla/policies", json=body, headers=ADMIN)
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    created = r.json()
    assert created["position"] == 30 and created["pause_statuses"] == ["pending", "on_hold"]
    assert created["warning_fractions"] == [0.5, 0.75, 0.9] and created["escalations"] == {}
    names, cursor = [], None
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (await api.get("/v1/sla/policies", params=params, headers=AGENT)).json()
        names += [p["name"] for p in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert names == ["a", "b", "c"]
    assert (await api.delete(f"/v1/sla/policies/{ids[0]}", headers=ADMIN)).status_code == 204
    assert (await api.get(f"/v1/sla/policies/{ids[0]}", headers=AGENT)).status_code == 404
    assert (await api.delete(f"/v1/sla/policies/{ids[0]}", headers=ADMIN)).status_code == 404
    assert (await api.get("/v1/sla/policies", params={"cursor": "%%%"}, headers=AGENT)).status_code == 400
    assert (await api.get("/v1/sla/policies", params={"limit": 1000}, headers=AGENT)).status_code == 422


@pytest.mark.parametrize(("body", "field"), [
    ({"name": "p", "targets": {}}, "targets"),
    ({"name": "p", "targets": {"first_response": {"minutes": 0}}}, "minutes"),
    ({"name": "p", "targets": {"first_response": {"minutes": "10"}}}, "minutes"),
    ({"name": "p", "targets": {"first_response": {"minutes": 2 ** 63}}}, "minutes"),
    ({"name": "p", "targets": {"first_reply": {"minutes": 10}}}, "targets"),
    ({"name": "p", "targets": {"resolution": {"minutes": 10, "calendar_id": str(uuid.uuid4())}}}, "resolution"),
    ({"name": "p", "targets": {"step:": {"minutes": 10}}}, "targets"),
    ({"name": "p", "targets": {"step:Approval": {"minutes": 10}}}, "targets"),
    ({"name": "p", "targets": {"step:" + "a" * 65: {"minutes": 10}}}, "targets"),
    ({"name": "p", "targets": {"resolution": {"minutes": 10}}, "escalations": {"step:x y": {"notify": ["s"]}}},
     "escalations"),
    ({"name": "p", "targets": {"resolution": {"minutes": 10, "time": "business",
                                              "calendar_id": str(uuid.uuid4())}}}, "calendar_id"),
    ({"name": "p", "targets": {"resolution": {"minutes": 10}}, "warning_fractions": [1.5]}, "warning_fractions"),
    ({"name": "p", "targets": {"resolution": {"minutes": 10}}, "pause_statuses": ["solved"]}, "pause_statuses"),
    ({"name": "p", "targets": {"resolution": {"minutes": 10}},
      "escalations": {"resolution": {"set_priority": "critical"}}}, "set_priority"),
    ({"name": "p", "targets": {"resolution": {"minutes": 10}}, "conditions": {"priority": ["asap"]}}, "priority"),
    ({"name": "p", "targets": {"resolution": {"minutes": 10}}, "colour": "red"}, "colour"),
])
async def test_bad_policies_are_422_with_the_field(api, body, field):
    r = await api.post("/v1/sla/policies", json=body, headers=ADMIN)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == PROBLEM
    assert any(field in e["field"] for e in r.json()["errors"]), r.json()


async def test_malformed_json_and_bad_queries(api):
    r = await api.post("/v1/sla/policies", content=b"{not json", headers={**ADMIN, "content-type": "application/json"})
    assert r.status_code == 400 and r.headers["content-type"] == PROBLEM
    r = await api.get("/v1/sla/compliance", params={"from": "2026-02-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"},
                      headers=AGENT)
    assert r.status_code == 422
    r = await api.get("/v1/sla/compliance", params={"from": "2026-01-01", "to": "2026-02-01T00:00:00Z"},
                      headers=AGENT)
    assert r.status_code == 422  # no offset: ambiguous
    assert (await api.get("/v1/sla/tickets/12345", headers=AGENT)).status_code == 422


async def test_idempotency_key_on_creates(api):
    body = {"name": "once", "targets": {"resolution": {"minutes": 60}}}
    headers = {**ADMIN, "Idempotency-Key": "k-1"}
    first = await api.post("/v1/sla/policies", json=body, headers=headers)
    again = await api.post("/v1/sla/policies", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    assert len((await api.get("/v1/sla/policies", headers=AGENT)).json()["items"]) == 1
    other = await api.post("/v1/sla/policies", json={**body, "name": "twice"}, headers=headers)
    assert other.status_code == 422 and other.json()["type"].endswith("/idempotency-key-reused")
    # the same key from another caller, or for a calendar, is another request
    admin2 = identity_headers(Principal(kind="user", id="admin2", role="admin"))
    assert (await api.post("/v1/sla/policies", json=body, headers={**admin2, "Idempotency-Key": "k-1"})).json()[
        "id"] != first.json()["id"]
    cal = await api.post("/v1/sla/calendars", json=CN_OFFICE, headers=headers)
    assert cal.status_code == 422  # k-1 is this admin's policy create
    cal = await api.post("/v1/sla/calendars", json=CN_OFFICE, headers={**ADMIN, "Idempotency-Key": "k-2"})
    again = await api.post("/v1/sla/calendars", json=CN_OFFICE, headers={**ADMIN, "Idempotency-Key": "k-2"})
    assert cal.status_code == again.status_code == 201 and cal.json() == again.json()
