"""The trigger and automation admin API on the real database: CRUD, ETags, order, 422 per field,
who may do what; automation writes wake the schedulers (pg_notify in the transaction)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg

from helpdesk_common.identity import Principal
from helpdesk_common.testing import identity_headers

ADMIN = Principal(kind="user", id="u-admin", role="admin")
SUPERVISOR = Principal(kind="user", id="u-sup", role="supervisor")
AGENT = Principal(kind="user", id="u-agent", role="agent")
CHANNEL = Principal(kind="channel", id="key-1", channel="web")

TRIGGER = {
    "name": "紧急工单加标签 / tag urgent tickets",
    "description": "urgent → tag",
    "conditions": {"all": [{"field": "priority", "op": "changed_to", "value": "urgent"}]},
    "actions": [{"type": "add_tags", "tags": ["hot"]}],
}
AUTOMATION = {
    "name": "Close solved tickets after 4 days",
    "conditions": {"all": [{"field": "status", "op": "eq", "value": "solved"},
                           {"field": "hours_since.solved", "op": "gte", "value": 96}]},
    "actions": [{"type": "set_field", "field": "status", "value": "closed"}],
}


def as_(principal: Principal, **extra: str) -> dict[str, str]:
    return {**identity_headers(principal), **extra}


def fields(response: Any) -> set[tuple[str, str]]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    return {(e["field"], e["code"]) for e in response.json()["errors"]}


async def test_triggers_are_created_read_replaced_and_deleted_with_etags(client: Any) -> None:
    created = await client.post("/v1/triggers", json=TRIGGER, headers=as_(ADMIN))
    assert created.status_code == 201, created.text
    body = created.json()
    assert created.headers["etag"] == 'W/"1"' and body["version"] == 1
    assert (body["name"], body["description"], body["position"], body["active"]) == (
        TRIGGER["name"], "urgent → tag", 0, True)
    assert body["created_by"] == body["updated_by"] == "user:u-admin"
    assert body["actions"] == [{"type": "add_tags", "tags": ["hot"]}]
    url = f"/v1/triggers/{body['id']}"

    for reader in (ADMIN, SUPERVISOR, AGENT):
        one = await client.get(url, headers=as_(reader))
        assert one.status_code == 200 and one.json() == body and one.headers["etag"] == 'W/"1"'
    listed = await client.get("/v1/triggers", headers=as_(AGENT))
    assert listed.json() == {"items": [body], "next_cursor": None}

    renamed = {**TRIGGER, "name": "Tag urgent tickets", "active": False}
    stale = await client.put(url, json=renamed, headers=as_(ADMIN, **{"If-Match": 'W/"7"'}))
    assert stale.status_code == 412 and stale.json()["current_version"] == 1
    replaced = await client.put(url, json=renamed, headers=as_(ADMIN, **{"If-Match": 'W/"1"'}))
    assert replaced.status_code == 200, replaced.text
    assert (replaced.json()["version"], replaced.json()["name"], replaced.json()["active"]) == (2, "Tag urgent tickets",
                                                                                                 False)
    assert replaced.headers["etag"] == 'W/"2"' and replaced.json()["created_at"] == body["created_at"]

    assert (await client.delete(url, headers=as_(ADMIN, **{"If-Match": 'W/"1"'}))).status_code == 412
    assert (await client.delete(url, headers=as_(ADMIN, **{"If-Match": 'W/"2"'}))).status_code == 204
    assert (await client.get(url, headers=as_(ADMIN))).status_code == 404
    assert (await client.put(url, json=TRIGGER, headers=as_(ADMIN))).status_code == 404
    assert (await client.delete(url, headers=as_(ADMIN))).status_code == 404


async def test_only_admins_write_and_channel_keys_read_nothing(client: Any) -> None:
    for path, body in (("/v1/triggers", TRIGGER), ("/v1/automations", AUTOMATION)):
        for writer in (SUPERVISOR, AGENT, CHANNEL):
            assert (await client.post(path, json=body, headers=as_(writer))).status_code == 403
        assert (await client.get(path, headers=as_(CHANNEL))).status_code == 403
        made = (await client.post(path, json=body, headers=as_(ADMIN))).json()
        for writer in (SUPERVISOR, AGENT):
            assert (await client.put(f"{path}/{made['id']}", json=body, headers=as_(writer))).status_code == 403
            assert (await client.delete(f"{path}/{made['id']}", headers=as_(writer))).status_code == 403
            assert (await client.put(f"{path}/order", json={"ids": [made["id"]]},
                                     headers=as_(writer))).status_code == 403
        assert (await client.get(f"{path}/{made['id']}", headers=as_(CHANNEL))).status_code == 403


async def test_invalid_rules_are_422_naming_the_field_and_store_nothing(client: Any) -> None:
    unknown_action = await client.post("/v1/triggers", json={**TRIGGER, "actions": [{"type": "send_sms"}]},
                                       headers=as_(ADMIN))
    assert fields(unknown_action) == {("body.actions.0", "unknown_action")}
    assert "set_field" in unknown_action.json()["errors"][0]["message"]
    bad_value = await client.post("/v1/triggers", json={
        **TRIGGER, "actions": [{"type": "add_tags", "tags": ["ok"]},
                               {"type": "set_field", "field": "priority", "value": "asap"}]}, headers=as_(ADMIN))
    assert fields(bad_value) == {("body.actions.1.set_field.value", "invalid_value")}
    bad_condition = await client.post("/v1/triggers", json={
        **TRIGGER, "conditions": {"all": [{"field": "mood", "op": "eq", "value": "sad"}],
                                  "any": [{"field": "update.event", "op": "changed"}]}}, headers=as_(ADMIN))
    assert fields(bad_condition) == {("body.conditions.all.0.field", "unknown_field"),
                                     ("body.conditions.any.0.op", "op_not_allowed")}
    no_team = str(uuid.uuid4())
    missing_team = await client.post("/v1/triggers", json={
        **TRIGGER, "actions": [{"type": "assign", "team_id": no_team}]}, headers=as_(ADMIN))
    assert fields(missing_team) == {("body.actions.0.assign.team_id", "not_found")}
    no_time = await client.post("/v1/automations", json={**AUTOMATION, "conditions": {"all": [
        {"field": "status", "op": "eq", "value": "solved"}]}}, headers=as_(ADMIN))
    assert fields(no_time) == {("body.conditions.all", "invalid_condition")}
    change_op = await client.post("/v1/automations", json={**AUTOMATION, "conditions": {"all": [
        *AUTOMATION["conditions"]["all"], {"field": "priority", "op": "changed", "value": True}]}}, headers=as_(ADMIN))
    assert fields(change_op) == {("body.conditions.all.2.op", "op_not_allowed")}
    huge = await client.post("/v1/triggers", json={**TRIGGER, "actions": [
        {"type": "call_webhook", "webhook_id": str(uuid.uuid4()), "payload": {"amount": 2**70}}]}, headers=as_(ADMIN))
    assert fields(huge) == {("body.actions.0.call_webhook.payload", "invalid_value")}
    unknown_member = await client.post("/v1/triggers", json={**TRIGGER, "colour": "red"}, headers=as_(ADMIN))
    assert unknown_member.status_code == 422
    for path in ("/v1/triggers", "/v1/automations"):
        assert (await client.get(path, headers=as_(ADMIN))).json()["items"] == []


async def test_order_is_the_whole_list_and_new_rules_go_last(client: Any) -> None:
    ids = []
    for n in range(3):
        made = await client.post("/v1/triggers", json={**TRIGGER, "name": f"rule {n}"}, headers=as_(ADMIN))
        ids.append(made.json()["id"])
    listed = (await client.get("/v1/triggers", headers=as_(AGENT))).json()["items"]
    assert [r["id"] for r in listed] == ids and [r["position"] for r in listed] == [0, 10, 20]

    wanted = [ids[2], ids[0], ids[1]]
    ordered = await client.put("/v1/triggers/order", json={"ids": wanted}, headers=as_(ADMIN))
    assert ordered.status_code == 200, ordered.text
    assert [r["id"] for r in ordered.json()["items"]] == wanted
    assert [r["id"] for r in (await client.get("/v1/triggers", headers=as_(AGENT))).json()["items"]] == wanted
    # the rules whose position moved have a new version (their ETag changed)
    versions = {r["id"]: r["version"] for r in ordered.json()["items"]}
    assert versions == {ids[2]: 2, ids[0]: 2, ids[1]: 2}

    stranger = str(uuid.uuid4())
    refused = await client.put("/v1/triggers/order", json={"ids": [ids[0], ids[0], stranger]}, headers=as_(ADMIN))
    assert fields(refused) == {("body.ids.1", "cross_field"), ("body.ids.2", "not_found"), ("body.ids", "cross_field")}
    assert [r["id"] for r in (await client.get("/v1/triggers", headers=as_(AGENT))).json()["items"]] == wanted

    placed = await client.post("/v1/triggers", json={**TRIGGER, "name": "first", "position": 0}, headers=as_(ADMIN))
    assert placed.json()["position"] == 0
    # equal positions run in id order, as the pure core orders them
    listed = (await client.get("/v1/triggers", headers=as_(AGENT))).json()["items"]
    assert [r["id"] for r in listed][:2] == sorted([ids[2], placed.json()["id"]])


async def test_automation_writes_wake_the_schedulers(client: Any, ticket_db: str) -> None:
    heard: asyncio.Queue[str] = asyncio.Queue()
    listener = await asyncpg.connect(ticket_db.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await listener.add_listener("ticket_automations_changed", lambda *args: heard.put_nowait(args[2]))
        made = await client.post("/v1/automations", json=AUTOMATION, headers=as_(ADMIN))
        assert made.status_code == 201, made.text
        assert (await asyncio.wait_for(heard.get(), 10)) == "ticket_automations_changed"
        url = f"/v1/automations/{made.json()['id']}"
        assert (await client.put(url, json={**AUTOMATION, "active": False}, headers=as_(ADMIN))).status_code == 200
        await asyncio.wait_for(heard.get(), 10)
        assert (await client.put("/v1/automations/order", json={"ids": [made.json()["id"]]},
                                 headers=as_(ADMIN))).status_code == 200
        await asyncio.wait_for(heard.get(), 10)
        assert (await client.delete(url, headers=as_(ADMIN))).status_code == 204
        await asyncio.wait_for(heard.get(), 10)
        # a refused write notifies nobody (the notification is part of the rolled-back transaction)
        assert (await client.post("/v1/automations", json={**AUTOMATION, "actions": []},
                                  headers=as_(ADMIN))).status_code == 422
        await client.post("/v1/triggers", json=TRIGGER, headers=as_(ADMIN))
        await asyncio.sleep(0.3)
        assert heard.empty()
    finally:
        await listener.close()


async def test_a_dry_run_refuses_what_no_ticket_could_hold(client: Any) -> None:
    made = await client.post("/v1/tickets", json={"subject": "s", "requester": {"email": "a@example.com"}},
                             headers=as_(CHANNEL))
    assert made.status_code == 201, made.text
    for bad, field in (({"custom_fields": {"n": 2**70}}, "body.changes.custom_fields"),
                       ({"custom_fields": {"n": {"deep": [1]}}}, "body.changes.custom_fields"),
                       ({"priority": "asap"}, "body.changes.priority"),
                       ({"status": "new"}, "body.changes.status")):
        refused = await client.post("/v1/rules/dry-run", json={"ticket_id": made.json()["id"], "changes": bad},
                                    headers=as_(ADMIN))
        assert refused.status_code == 422, (bad, refused.text)
        assert [e["field"] for e in refused.json()["errors"]] == [field]


async def test_a_create_retried_with_its_idempotency_key_makes_one_rule(client: Any) -> None:
    for path, body in (("/v1/triggers", TRIGGER), ("/v1/automations", AUTOMATION)):
        key = {"Idempotency-Key": f"create-{path}"}
        first = await client.post(path, json=body, headers=as_(ADMIN, **key))
        again = await client.post(path, json=body, headers=as_(ADMIN, **key))
        assert first.status_code == again.status_code == 201, again.text
        assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
        assert again.headers["etag"] == first.headers["etag"]
        assert len((await client.get(path, headers=as_(ADMIN))).json()["items"]) == 1
        other = await client.post(path, json={**body, "name": "another"}, headers=as_(ADMIN, **key))
        assert other.status_code == 422 and other.json()["type"].endswith("idempotency-key-reused")


async def test_the_order_path_is_no_rule_id(client: Any) -> None:
    """``/order`` takes PUT only: other methods are 405, never read as a rule id."""
    for path in ("/v1/triggers/order", "/v1/automations/order"):
        for method in ("GET", "DELETE", "POST"):
            answer = await client.request(method, path, headers=as_(ADMIN))
            assert answer.status_code == 405, (method, path, answer.text)
    assert (await client.get("/v1/triggers/not-a-rule", headers=as_(ADMIN))).status_code == 404
    doc = (await client.get("/openapi.json")).json()
    assert "/v1/triggers/{rule_id}" in doc["paths"] and "/v1/automations/{rule_id}" in doc["paths"]
