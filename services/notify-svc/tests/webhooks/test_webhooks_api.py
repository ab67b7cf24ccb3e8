"""Webhook subscriptions through the service's API, on a real PostgreSQL."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from helpdesk_common.identity import Principal
from helpdesk_common.testing import identity_headers

pytestmark = pytest.mark.timeout(120)

ADMIN = identity_headers(Principal(kind="user", id=str(uuid.uuid4()), role="admin"))
SUPERVISOR = identity_headers(Principal(kind="user", id=str(uuid.uuid4()), role="supervisor"))
AGENT = identity_headers(Principal(kind="user", id=str(uuid.uuid4()), role="agent"))
CHANNEL = identity_headers(Principal(kind="channel", id=str(uuid.uuid4()), channel="api"))
PROBLEM = "application/problem+json"
GOOD = {"url": "https://hooks.example.com/in", "event_types": ["ticket.created"], "description": "CRM"}


async def _create(api, body=None, headers=None):
    answer = await api.post("/v1/webhooks", json=body or GOOD, headers=headers or ADMIN)
    assert answer.status_code == 201, answer.text
    return answer.json()


def _problem(answer, status: int, kind: str) -> dict:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith(PROBLEM)
    body = answer.json()
    assert body["type"].endswith("/" + kind) and body["status"] == status
    return body


async def test_create_shows_the_secret_once(api, db, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    created = await _create(api)
    secret = created["secret"]
    assert secret.startswith("whsec_")
    assert created["url"] == GOOD["url"] and created["event_types"] == ["ticket.created"]
    assert created["enabled"] is True and created["description"] == "CRM" and created["version"] == 1
    assert created["failing_since"] is None and created["disabled_reason"] is None

    one = await api.get(f"/v1/webhooks/{created['id']}", headers=ADMIN)
    listed = await api.get("/v1/webhooks", headers=ADMIN)
    patched = await api.patch(f"/v1/webhooks/{created['id']}", json={"description": "x"}, headers=ADMIN)
    for answer in (one, listed, patched):
        assert answer.status_code == 200
        assert secret not in answer.text and "secret\"" not in answer.text.replace("previous_secret", "")
    assert one.json()["id"] == created["id"] and one.headers["etag"] == 'W/"1"'
    assert listed.json()["items"][0]["id"] == created["id"] and listed.json()["next_cursor"] is None
    # never stored in clear, never logged
    async with db.connect() as conn:
        stored = (await conn.execute(text("SELECT secret_encrypted FROM webhook_subscriptions"))).scalar_one()
    assert secret.encode() not in bytes(stored) and secret[6:].encode() not in bytes(stored)
    assert secret not in caplog.text


async def test_the_stored_secret_decrypts_to_the_one_shown(api, db, secret_key) -> None:
    from notify_svc.webhooks import service
    from notify_svc.webhooks.crypto import SecretBox

    created = await _create(api)
    async with db.connect() as conn:
        row = (await conn.execute(text("SELECT * FROM webhook_subscriptions"))).mappings().one()
    box = SecretBox.from_setting(secret_key)
    assert service.signing_secrets(row, box) == [created["secret"]]
    from notify_svc.webhooks.crypto import generate_key
    with pytest.raises(ValueError):
        SecretBox.from_setting(generate_key()).decrypt(row["secret_encrypted"], owner=row["id"])
    with pytest.raises(ValueError):  # bound to its row
        box.decrypt(row["secret_encrypted"], owner=uuid.uuid4())


@pytest.mark.parametrize("headers", [AGENT, SUPERVISOR, CHANNEL])
async def test_only_admins(api, headers) -> None:
    created = await _create(api)
    wid = created["id"]
    for answer in (await api.post("/v1/webhooks", json=GOOD, headers=headers),
                   await api.get("/v1/webhooks", headers=headers),
                   await api.get(f"/v1/webhooks/{wid}", headers=headers),
                   await api.patch(f"/v1/webhooks/{wid}", json={"enabled": False}, headers=headers),
                   await api.delete(f"/v1/webhooks/{wid}", headers=headers),
                   await api.post(f"/v1/webhooks/{wid}/rotate-secret", headers=headers),
                   await api.get(f"/v1/webhooks/{wid}/deliveries", headers=headers),
                   await api.get(f"/v1/webhooks/{wid}/deliveries/{uuid.uuid4()}", headers=headers),
                   await api.post(f"/v1/webhooks/{wid}/deliveries/{uuid.uuid4()}/replay", headers=headers)):
        _problem(answer, 403, "forbidden")


async def test_no_identity_is_401(api) -> None:
    _problem(await api.get("/v1/webhooks"), 401, "unauthorized")
    _problem(await api.post("/v1/webhooks", json=GOOD, headers={"x-internal-identity": "forged"}), 401,
             "unauthorized")


@pytest.mark.parametrize("url", [
    "ftp://hooks.example.com/in", "file:///etc/passwd", "http://localhost:8080/in", "http://[::1]/in",
    "http://127.0.0.2:9000/in", "http://[::ffff:127.0.0.1]/in", "http://169.254.169.254/latest/meta-data",
    "http://10.0.0.5/in", "http://2130706434/in", "http://user:pw@hooks.example.com/", "not a url"])
async def test_refused_urls_are_422_naming_url(api, url) -> None:
    body = _problem(await api.post("/v1/webhooks", json={**GOOD, "url": url}, headers=ADMIN), 422,
                    "validation-error")
    assert [e["field"] for e in body["errors"]] == ["body.url"]
    assert (await api.get("/v1/webhooks", headers=ADMIN)).json()["items"] == []


async def test_an_allow_listed_loopback_url_is_accepted(api) -> None:
    created = await _create(api, {**GOOD, "url": "http://127.0.0.1:9999/hook"})
    assert created["url"] == "http://127.0.0.1:9999/hook"


@pytest.mark.parametrize(("body", "field"), [
    ({**GOOD, "event_types": ["ticket.exploded"]}, "body.event_types.0"),
    ({**GOOD, "event_types": []}, "body.event_types"),
    ({**GOOD, "event_types": "ticket.created"}, "body.event_types"),
    ({"event_types": ["ticket.created"]}, "body.url"),
    ({**GOOD, "url": 5}, "body.url"),
    ({**GOOD, "description": "x" * 501}, "body.description"),
    ({**GOOD, "secret": "whsec_mine"}, "body.secret"),
    ({**GOOD, "url": "https://a.example/\u0000"}, "body"),
])
async def test_bad_bodies_are_422(api, body, field) -> None:
    problem = _problem(await api.post("/v1/webhooks", json=body, headers=ADMIN), 422, "validation-error")
    assert any(e["field"].startswith(field) for e in problem["errors"]), problem


@pytest.mark.parametrize("event_type", ["survey.delivery_requested", "ticket.reply_requested"])
async def test_bearer_carrying_types_cannot_be_subscribed(api, event_type) -> None:
    """A survey delivery request carries the signed answer link, a reply request session-webhook
    and attachment capability URLs: a subscriber would receive what lets it act as the customer
    or read their files. Refused on create and on PATCH, and absent from the document's enum."""
    problem = _problem(await api.post("/v1/webhooks", json={**GOOD, "event_types": ["ticket.created", event_type]},
                                      headers=ADMIN), 422, "validation-error")
    assert any(e["field"] == "body.event_types.1" for e in problem["errors"]), problem
    wid = (await _create(api))["id"]
    _problem(await api.patch(f"/v1/webhooks/{wid}", json={"event_types": [event_type]}, headers=ADMIN), 422,
             "validation-error")
    assert (await api.get(f"/v1/webhooks/{wid}", headers=ADMIN)).json()["event_types"] == ["ticket.created"]
    doc = (await api.get("/openapi.json")).json()
    offered = set()
    for schema in doc["components"]["schemas"].values():
        items = schema.get("properties", {}).get("event_types", {})
        for variant in [items, *items.get("anyOf", [])]:
            offered |= set(variant.get("items", {}).get("enum", []))
    assert "ticket.created" in offered and event_type not in offered


async def test_malformed_json_is_400(api) -> None:
    _problem(await api.post("/v1/webhooks", content=b"{", headers={**ADMIN, "content-type": "application/json"}),
             400, "malformed-json")


async def test_duplicate_event_types_are_kept_once(api) -> None:
    created = await _create(api, {**GOOD, "event_types": ["ticket.created", "ticket.created", "sla.breached"]})
    assert created["event_types"] == ["ticket.created", "sla.breached"]


async def test_patch(api) -> None:
    wid = (await _create(api))["id"]
    answer = await api.patch(f"/v1/webhooks/{wid}", json={"enabled": False}, headers=ADMIN)
    assert answer.status_code == 200
    assert answer.json()["enabled"] is False and answer.json()["disabled_reason"] == "disabled by an admin"
    assert answer.headers["etag"] == 'W/"2"'
    answer = await api.patch(f"/v1/webhooks/{wid}", json={"enabled": True, "url": "https://other.example/x",
                                                          "event_types": ["sla.breached"]}, headers=ADMIN)
    assert answer.json()["enabled"] is True and answer.json()["disabled_reason"] is None
    assert answer.json()["url"] == "https://other.example/x" and answer.json()["event_types"] == ["sla.breached"]
    problem = _problem(await api.patch(f"/v1/webhooks/{wid}", json={"url": "http://localhost/x"}, headers=ADMIN),
                       422, "validation-error")
    assert problem["errors"][0]["field"] == "body.url"
    _problem(await api.patch(f"/v1/webhooks/{wid}", json={"url": None}, headers=ADMIN), 422, "validation-error")
    _problem(await api.patch(f"/v1/webhooks/{wid}", json={"event_types": ["nope"]}, headers=ADMIN), 422,
             "validation-error")
    _problem(await api.patch(f"/v1/webhooks/{wid}", json={"enabled": False}, headers={**ADMIN, "If-Match": 'W/"1"'}),
             412, "version-conflict")
    ok = await api.patch(f"/v1/webhooks/{wid}", json={"description": "d"}, headers={**ADMIN, "If-Match": 'W/"3"'})
    assert ok.status_code == 200 and ok.json()["version"] == 4
    _problem(await api.patch(f"/v1/webhooks/{uuid.uuid4()}", json={"enabled": False}, headers=ADMIN), 404,
             "not-found")


async def test_delete(api) -> None:
    wid = (await _create(api))["id"]
    _problem(await api.delete(f"/v1/webhooks/{wid}", headers={**ADMIN, "If-Match": 'W/"7"'}), 412,
             "version-conflict")
    assert (await api.delete(f"/v1/webhooks/{wid}", headers=ADMIN)).status_code == 204
    _problem(await api.get(f"/v1/webhooks/{wid}", headers=ADMIN), 404, "not-found")
    _problem(await api.delete(f"/v1/webhooks/{wid}", headers=ADMIN), 404, "not-found")
    _problem(await api.get("/v1/webhooks/not-a-uuid", headers=ADMIN), 404, "not-found")


async def test_rotation_keeps_the_old_secret_for_a_day(api, db, secret_key) -> None:
    from standardwebhooks.webhooks import Webhook

    from notify_svc.webhooks import service, signing
    from notify_svc.webhooks.crypto import SecretBox

    created = await _create(api)
    wid, old = created["id"], created["secret"]
    answer = await api.post(f"/v1/webhooks/{wid}/rotate-secret", headers=ADMIN)
    assert answer.status_code == 200 and answer.headers["cache-control"] == "no-store"
    rotated = answer.json()
    new = rotated["secret"]
    assert new.startswith("whsec_") and new != old
    expires = datetime.fromisoformat(rotated["previous_secret_expires_at"])
    assert timedelta(hours=23, minutes=59) < expires - datetime.now(UTC) <= timedelta(hours=24)
    got = (await api.get(f"/v1/webhooks/{wid}", headers=ADMIN)).text
    assert new not in got and old not in got

    async with db.connect() as conn:
        row = (await conn.execute(text("SELECT * FROM webhook_subscriptions"))).mappings().one()
    box = SecretBox.from_setting(secret_key)
    secrets = service.signing_secrets(row, box)
    assert secrets == [new, old]
    body = b'{"type":"ticket.created"}'
    headers = signing.webhook_headers(secrets, msg_id="msg_1", body=body)
    Webhook(new).verify(body, headers)   # receivers that already switched
    Webhook(old).verify(body, headers)   # receivers that have not yet
    # a day later only the new one signs
    assert service.signing_secrets(row, box, now=expires + timedelta(seconds=1)) == [new]

    _problem(await api.post(f"/v1/webhooks/{uuid.uuid4()}/rotate-secret", headers=ADMIN), 404, "not-found")
    _problem(await api.post(f"/v1/webhooks/{wid}/rotate-secret", headers={**ADMIN, "If-Match": 'W/"1"'}), 412,
             "version-conflict")


async def test_idempotent_create_never_shows_the_secret_again(api) -> None:
    headers = {**ADMIN, "Idempotency-Key": "create-1"}
    first = await api.post("/v1/webhooks", json=GOOD, headers=headers)
    again = await api.post("/v1/webhooks", json=GOOD, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["id"] == first.json()["id"] and "secret" not in again.json()
    assert first.json()["secret"] not in again.text
    assert len((await api.get("/v1/webhooks", headers=ADMIN)).json()["items"]) == 1
    _problem(await api.post("/v1/webhooks", json={**GOOD, "description": "other"}, headers=headers), 422,
             "idempotency-key-reused")


async def test_list_pages(api) -> None:
    ids = [(await _create(api))["id"] for _ in range(5)]
    seen, cursor = [], None
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        answer = (await api.get("/v1/webhooks", params=params, headers=ADMIN)).json()
        seen += [item["id"] for item in answer["items"]]
        cursor = answer["next_cursor"]
        if not cursor:
            break
    assert seen == list(reversed(ids))
    _problem(await api.get("/v1/webhooks", params={"cursor": "garbage"}, headers=ADMIN), 400, "invalid-cursor")
    _problem(await api.get("/v1/webhooks", params={"limit": 1000}, headers=ADMIN), 422, "validation-error")


async def test_without_a_secret_key_creation_is_503(infra, notify_db, monkeypatch) -> None:
    from helpdesk_common.testing import running_app, service_env

    service_env(monkeypatch, infra, "NOTIFY_", notify_db)
    monkeypatch.setenv("NOTIFY_CONSUMERS_ENABLED", "false")
    monkeypatch.setenv("NOTIFY_RELAY_ENABLED", "false")
    monkeypatch.delenv("NOTIFY_SECRET_KEY", raising=False)
    from notify_svc.config import Settings
    from notify_svc.main import create_app

    async with running_app(create_app(Settings())) as client:
        body = _problem(await client.post("/v1/webhooks", json=GOOD, headers=ADMIN), 503,
                        "webhooks-not-configured")
        assert "NOTIFY_SECRET_KEY" in body["detail"]
        assert (await client.get("/v1/webhooks", headers=ADMIN)).status_code == 200


@pytest.mark.parametrize("value", ["short", "!!!!", "a" * 44])
def test_a_malformed_secret_key_stops_the_service(monkeypatch, value) -> None:
    from notify_svc.config import Settings

    monkeypatch.setenv("NOTIFY_SECRET_KEY", value)
    with pytest.raises(ValueError):
        Settings()


def test_key_rotation_of_the_encryption_key() -> None:
    from notify_svc.webhooks.crypto import SecretBox, generate_key

    old_key, new_key = generate_key(), generate_key()
    owner = uuid.uuid4()
    blob = SecretBox.from_setting(old_key).encrypt("whsec_x", owner=owner)
    both = SecretBox.from_setting(f"{new_key},{old_key}")
    assert both.decrypt(blob, owner=owner) == "whsec_x"
    fresh = both.encrypt("whsec_y", owner=owner)  # the first key encrypts
    assert SecretBox.from_setting(new_key).decrypt(fresh, owner=owner) == "whsec_y"
    with pytest.raises(ValueError, match="no longer configured"):
        SecretBox.from_setting(new_key).decrypt(blob, owner=owner)


async def test_the_document_declares_the_routes(api) -> None:
    doc = (await api.get("/openapi.json")).json()
    assert {"/v1/webhooks", "/v1/webhooks/{subscription_id}", "/v1/webhooks/{subscription_id}/rotate-secret"} \
        <= set(doc["paths"])
    assert "503" in doc["paths"]["/v1/webhooks"]["post"]["responses"]
    log = "/v1/webhooks/{subscription_id}/deliveries"
    assert {log, log + "/{delivery_id}", log + "/{delivery_id}/replay"} <= set(doc["paths"])
    replay = doc["paths"][log + "/{delivery_id}/replay"]["post"]
    assert {"202", "403", "404", "409"} <= set(replay["responses"]) and "200" not in replay["responses"]
    assert "webhook-disabled" in replay["responses"]["409"]["description"]
    assert "Idempotency-Key" in {p["name"] for p in replay["parameters"]}
    assert {"404", "400", "422"} <= set(doc["paths"][log]["get"]["responses"])


async def _queue(db, subscription_id: str, status: str) -> str:
    delivery_id = str(uuid.uuid4())
    async with db.begin() as conn:
        await conn.execute(text(
            "INSERT INTO deliveries (id, kind, channel, destination, dedupe_key, payload, max_attempts, status, "
            "subscription_id, next_attempt_at) VALUES (:id, 'webhook', 'webhook', 'webhook:x', :key, '{}', 8, :s, "
            ":sub, now() + interval '1 hour')"), {"id": delivery_id, "key": delivery_id, "s": status, "sub": subscription_id})
    return delivery_id


async def _statuses(db, *ids: str) -> list[tuple[str, str | None]]:
    async with db.connect() as conn:
        rows = {str(r.id): (r.status, r.reason) for r in (await conn.execute(text(
            "SELECT id, status, reason FROM deliveries"))).all()}
    return [rows[i] for i in ids]


async def test_disabling_or_deleting_ends_the_queued_deliveries(api, db) -> None:
    """Queued deliveries would otherwise wait for their next attempt (up to 10 h) to find out."""
    disabled, deleted, kept = [await _create(api) for _ in range(3)]
    waiting = await _queue(db, disabled["id"], "queued")
    dead = await _queue(db, disabled["id"], "failed")
    in_flight = await _queue(db, disabled["id"], "sending")  # its own record settles it
    orphan = await _queue(db, deleted["id"], "queued")
    other = await _queue(db, kept["id"], "queued")
    assert (await api.patch(f"/v1/webhooks/{disabled['id']}", json={"enabled": False}, headers=ADMIN)).status_code == 200
    assert (await api.delete(f"/v1/webhooks/{deleted['id']}", headers=ADMIN)).status_code == 204
    assert await _statuses(db, waiting, dead, in_flight, orphan, other) == [
        ("undeliverable", "the webhook subscription is disabled"), ("failed", None), ("sending", None),
        ("undeliverable", "the webhook subscription was deleted"), ("queued", None)]
    # the disable by an admin is announced like an automatic one
    async with db.connect() as conn:
        announced = (await conn.execute(text(
            "SELECT key, topic FROM outbox WHERE event_type = 'webhook.disabled'"))).all()
    assert [(r.key, r.topic) for r in announced] == [(disabled["id"], "deliveries.events")]
