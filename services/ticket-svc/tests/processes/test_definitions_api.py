"""The process-definition API on the real database: versions, ETags, deactivation, 422 per field."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from helpdesk_common.identity import Principal
from helpdesk_common.testing import identity_headers

ADMIN = Principal(kind="user", id="u-admin", role="admin")
SUPERVISOR = Principal(kind="user", id="u-sup", role="supervisor")
AGENT = Principal(kind="user", id="u-agent", role="agent")
CHANNEL = Principal(kind="channel", id="key-1", channel="web")

REFUND = {"steps": [
    {"key": "approval", "name": "主管审批", "kind": "approval",
     "when": {"conditions": [{"field": "custom_fields.refund_amount", "op": "gt", "value": 1000}]},
     "approvers": {"roles": ["supervisor"]}, "rule": "any", "on_reject": "close", "target_minutes": 240},
    {"key": "refund", "name": "Pay the refund", "kind": "task"},
    {"key": "confirm", "name": "Customer confirms", "kind": "customer_confirmation", "timeout_minutes": 2880},
]}


def as_(principal: Principal, **extra: str) -> dict[str, str]:
    return {**identity_headers(principal), **extra}


async def test_versions_are_numbered_immutable_and_readable_by_every_user(client: Any) -> None:
    first = await client.put("/v1/processes/refund", json=REFUND, headers=as_(ADMIN))
    assert first.status_code == 201, first.text
    assert first.headers["etag"] == 'W/"1"'
    body = first.json()
    assert body["version"] == 1 and body["active"] is True and body["created_by"] == ADMIN.ref
    assert body["steps"][2]["on_timeout"] == "close" and body["steps"][2]["via"] == "reply_or_link"
    assert body["steps"][0]["when"]["conditions"][0]["value"] == 1000

    shorter = {"steps": REFUND["steps"][1:]}
    second = await client.put("/v1/processes/refund", json=shorter, headers=as_(ADMIN, **{"If-Match": 'W/"1"'}))
    assert second.status_code == 200, second.text
    assert second.json()["version"] == 2 and second.headers["etag"] == 'W/"2"'

    for who in (ADMIN, SUPERVISOR, AGENT):
        current = await client.get("/v1/processes/refund", headers=as_(who))
        assert current.status_code == 200 and current.headers["etag"] == 'W/"2"'
        assert [s["key"] for s in current.json()["steps"]] == ["refund", "confirm"]
    old = await client.get("/v1/processes/refund/versions/1", headers=as_(AGENT))
    assert old.status_code == 200 and [s["key"] for s in old.json()["steps"]] == ["approval", "refund", "confirm"]
    missing = await client.get("/v1/processes/refund/versions/3", headers=as_(AGENT))
    assert missing.status_code == 404 and missing.headers["content-type"] == "application/problem+json"


async def test_only_admins_write_and_channel_keys_read_nothing(client: Any) -> None:
    for who in (SUPERVISOR, AGENT, CHANNEL):
        refused = await client.put("/v1/processes/refund", json=REFUND, headers=as_(who))
        assert refused.status_code == 403, who
    assert (await client.put("/v1/processes/refund", json=REFUND, headers=as_(ADMIN))).status_code == 201
    for who in (SUPERVISOR, AGENT):
        assert (await client.delete("/v1/processes/refund", headers=as_(who))).status_code == 403
    for path in ("/v1/processes", "/v1/processes/refund", "/v1/processes/refund/versions/1"):
        assert (await client.get(path, headers=as_(CHANNEL))).status_code == 403, path
        assert (await client.get(path)).status_code == 401, path


async def test_if_match_guards_saves_and_deactivations(client: Any) -> None:
    stale = await client.put("/v1/processes/refund", json=REFUND, headers=as_(ADMIN, **{"If-Match": 'W/"3"'}))
    assert stale.status_code == 412 and stale.json()["current_version"] == 0
    created = await client.put("/v1/processes/refund", json=REFUND, headers=as_(ADMIN, **{"If-Match": "0"}))
    assert created.status_code == 201
    again = await client.put("/v1/processes/refund", json=REFUND, headers=as_(ADMIN, **{"If-Match": "0"}))
    assert again.status_code == 412 and again.json()["current_version"] == 1
    refused = await client.delete("/v1/processes/refund", headers=as_(ADMIN, **{"If-Match": 'W/"7"'}))
    assert refused.status_code == 412
    assert (await client.get("/v1/processes/refund", headers=as_(AGENT))).status_code == 200  # nothing changed


async def test_deactivation_is_a_version_and_old_versions_stay(client: Any) -> None:
    assert (await client.put("/v1/processes/refund", json=REFUND, headers=as_(ADMIN))).status_code == 201
    gone = await client.delete("/v1/processes/refund", headers=as_(ADMIN, **{"If-Match": 'W/"1"'}))
    assert gone.status_code == 204 and gone.headers["etag"] == 'W/"2"'
    current = await client.get("/v1/processes/refund", headers=as_(AGENT))
    assert current.status_code == 404 and current.headers["content-type"] == "application/problem+json"
    assert (await client.delete("/v1/processes/refund", headers=as_(ADMIN))).status_code == 404
    tombstone = (await client.get("/v1/processes/refund/versions/2", headers=as_(AGENT))).json()
    assert tombstone["active"] is False and tombstone["steps"] == [] and tombstone["created_by"] == ADMIN.ref
    kept = (await client.get("/v1/processes/refund/versions/1", headers=as_(AGENT))).json()
    assert kept["active"] is True and len(kept["steps"]) == 3  # a running ticket still reads its version
    listed = (await client.get("/v1/processes", headers=as_(AGENT))).json()
    assert listed == {"items": [], "next_cursor": None}

    back = await client.put("/v1/processes/refund", json=REFUND, headers=as_(ADMIN, **{"If-Match": 'W/"2"'}))
    assert back.status_code == 200 and back.json()["version"] == 3
    assert (await client.get("/v1/processes/refund", headers=as_(AGENT))).json()["version"] == 3
    assert (await client.delete("/v1/processes/never", headers=as_(ADMIN))).status_code == 404


async def test_the_list_pages_through_current_processes_by_type(client: Any) -> None:
    for ticket_type in ("c_type", "a_type", "b_type", "d_type"):
        assert (await client.put(f"/v1/processes/{ticket_type}", json=REFUND, headers=as_(ADMIN))).status_code == 201
    assert (await client.put("/v1/processes/a_type", json=REFUND, headers=as_(ADMIN))).json()["version"] == 2
    assert (await client.delete("/v1/processes/c_type", headers=as_(ADMIN))).status_code == 204
    seen: list[tuple[str, int]] = []
    cursor = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = await client.get("/v1/processes", params=params, headers=as_(SUPERVISOR))
        assert page.status_code == 200, page.text
        seen += [(item["ticket_type"], item["version"]) for item in page.json()["items"]]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break
    assert seen == [("a_type", 2), ("b_type", 1), ("d_type", 1)]
    forged = await client.get("/v1/processes", params={"cursor": "AAAA"}, headers=as_(AGENT))
    assert forged.status_code == 400 and forged.json()["type"].endswith("/invalid-cursor")
    too_many = await client.get("/v1/processes", params={"limit": 101}, headers=as_(AGENT))
    assert too_many.status_code == 422


async def test_invalid_definitions_are_422_naming_each_field_and_store_nothing(client: Any) -> None:
    bad = {"steps": [
        {"key": "work", "name": "Work", "kind": "task"},
        {"key": "ok", "name": "Approve", "kind": "approval", "approvers": {"users": ["u1", "u2"]}, "rule": "n_of_m",
         "n": 3, "on_reject": {"return_to": "later"}},
        {"key": "work", "name": "Again", "kind": "task"},
    ]}
    refused = await client.put("/v1/processes/refund", json=bad, headers=as_(ADMIN))
    assert refused.status_code == 422 and refused.headers["content-type"] == "application/problem+json"
    errors = {(e["field"], e["code"]) for e in refused.json()["errors"]}
    assert errors == {("body.steps.2.task.key", "cross_field"), ("body.steps.1.approval.n", "cross_field"),
                      ("body.steps.1.approval.on_reject.return_to", "cross_field")}

    unknown_kind = await client.put("/v1/processes/refund", json={"steps": [{"key": "a", "name": "A", "kind": "vote"}]},
                                    headers=as_(ADMIN))
    assert unknown_kind.status_code == 422
    assert unknown_kind.json()["errors"][0]["field"] == "body.steps.0"
    extra = await client.put("/v1/processes/refund", json={"steps": [{"key": "a", "name": "A", "kind": "task",
                                                                      "approvers": {"users": ["u"]}}]},
                             headers=as_(ADMIN))
    assert extra.status_code == 422 and extra.json()["errors"][0]["field"] == "body.steps.0.task.approvers"
    condition = await client.put("/v1/processes/refund", json={"steps": [{"key": "a", "name": "A", "kind": "task", "when": {
        "conditions": [{"field": "custom_fields.refund_amount", "op": "gt", "value": 2**64}]}}]}, headers=as_(ADMIN))
    assert condition.status_code == 422
    assert condition.json()["errors"][0]["field"] == "body.steps.0.task.when.conditions.0.value"
    assert (await client.get("/v1/processes/refund", headers=as_(ADMIN))).status_code == 404


async def test_teams_must_exist_when_saved(client: Any) -> None:
    team = await client.post("/v1/teams", json={"name": "Finance"}, headers=as_(ADMIN))
    assert team.status_code == 201, team.text
    team_id, ghost = team.json()["id"], str(uuid.uuid4())
    body = {"steps": [
        {"key": "approve", "name": "Finance approves", "kind": "approval", "approvers": {"teams": [team_id, ghost]},
         "rule": "n_of_m", "n": 4},
        {"key": "sign", "name": "Sign", "kind": "countersign", "parties": [{"team": ghost}, {"team": team_id}],
         "order": "parallel"},
    ]}
    refused = await client.put("/v1/processes/contract", json=body, headers=as_(ADMIN))
    assert refused.status_code == 422
    assert {(e["field"], e["code"]) for e in refused.json()["errors"]} == {
        ("body.steps.0.approval.approvers.teams.1", "not_found"), ("body.steps.1.countersign.parties.0.team", "not_found")}
    body["steps"][0]["approvers"]["teams"] = [team_id]
    body["steps"][1]["parties"] = [{"team": team_id}, {"role": "supervisor"}]
    saved = await client.put("/v1/processes/contract", json=body, headers=as_(ADMIN))
    assert saved.status_code == 201, saved.text
    assert saved.json()["steps"][0]["n"] == 4  # with a team the count is known only when the step runs


async def test_concurrent_saves_get_consecutive_versions(client: Any) -> None:
    answers = await asyncio.gather(*(client.put("/v1/processes/refund", json=REFUND, headers=as_(ADMIN))
                                     for _ in range(6)))
    assert sorted(a.json()["version"] for a in answers) == [1, 2, 3, 4, 5, 6]
    racing = await asyncio.gather(*(client.put("/v1/processes/refund", json=REFUND,
                                               headers=as_(ADMIN, **{"If-Match": 'W/"6"'})) for _ in range(3)))
    assert sorted(a.status_code for a in racing) == [200, 412, 412]


async def test_bad_paths_are_422(client: Any) -> None:
    assert (await client.get("/v1/processes/a%20b", headers=as_(AGENT))).status_code == 422
    assert (await client.get("/v1/processes/" + "x" * 65, headers=as_(AGENT))).status_code == 422
    assert (await client.get("/v1/processes/refund/versions/0", headers=as_(AGENT))).status_code == 422
    assert (await client.get(f"/v1/processes/refund/versions/{2**63}", headers=as_(AGENT))).status_code == 422
