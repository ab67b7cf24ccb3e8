"""Data subject requests on the real database and broker: an erasure runs through the event loop
(worker -> privacy.erasure_requested -> customer-svc's own anonymisation -> acknowledgement ->
completed), leaves no trace of the person in any column of customer-svc's database (the
reusable scanner) and keeps the request as its audit; idempotency, suspend/resume, roles, export."""

import uuid

import pytest

from customer_svc.privacy import rules
from helpdesk_common import erasure
from helpdesk_common.identity import Principal
from helpdesk_common.pii_scan import scan_database
from helpdesk_common.testing import identity_headers, running_app, service_env, wait_for

ADMIN = identity_headers(Principal(kind="user", id="u1", role="admin"))
SUPERVISOR = identity_headers(Principal(kind="user", id="u3", role="supervisor"))

NAME, EMAIL, PHONE, OPENID = "王小明", "xiaoming.wang@example.cn", "+8613812345678", "oWx_privacy_openid_01"


@pytest.fixture
async def svc(infra, customer_db, monkeypatch):
    topics = service_env(monkeypatch, infra, "CUSTOMER_", customer_db)
    from helpdesk_common.pii_crypto import new_settings

    for key, value in new_settings("CUSTOMER_").items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("CUSTOMER_CONSUMER_RETRY_BASE_S", "0.05")
    monkeypatch.setenv("CUSTOMER_PRIVACY_SERVICES", "customer-svc")
    # the default log step (auto): DeleteRecords, and on the embedded broker, which cannot, retention
    monkeypatch.setenv("CUSTOMER_PRIVACY_POLL_INTERVAL_S", "0.2")
    from customer_svc.privacy.settings import get_privacy_settings

    get_privacy_settings.cache_clear()
    from customer_svc.config import Settings
    from customer_svc.main import create_app

    async with running_app(create_app(Settings())) as client:
        client.topics = topics
        yield client
    get_privacy_settings.cache_clear()


async def _person(svc) -> str:
    r = await svc.post("/v1/customers", json={"name": NAME, "notes": f"VIP, call {PHONE}", "identities": [
        {"kind": "email", "value": EMAIL}, {"kind": "phone", "value": PHONE},
        {"kind": "wechat_openid", "value": OPENID}]}, headers=SUPERVISOR)
    assert r.status_code == 201, r.text
    cid = r.json()["id"]
    order = {"external_id": "SO-PRIV-1", "ordered_at": "2026-11-01T10:00:00+08:00", "amount": "12.5",
             "currency": "CNY", "status": "paid",
             "items": [{"sku": "A-1", "name": f"gift for {NAME}", "quantity": 1, "unit_price": "12.5"}]}
    r = await svc.post(f"/v1/customers/{cid}/orders", json=order, headers=SUPERVISOR)
    assert r.status_code == 201, r.text
    return cid


async def test_erasure_leaves_nothing_and_keeps_the_audit(svc, customer_db):
    cid = await _person(svc)
    other = await svc.post("/v1/customers", json={"name": "李四", "identities": [
        {"kind": "email", "value": "li.si@example.cn"}]}, headers=SUPERVISOR)
    assert other.status_code == 201, other.text
    # before: the scanner finds the person (it can fail)
    assert await scan_database(customer_db, [EMAIL, OPENID, NAME])

    # an export's bundle (the person's data, kept a day for download) goes with the erasure
    export = await svc.post("/v1/privacy/requests", json={"customer_id": cid, "kind": "export"}, headers=ADMIN)
    assert (await svc.get(f"/v1/privacy/requests/{export.json()['id']}/bundle", headers=ADMIN)).status_code == 200
    r = await svc.post("/v1/privacy/requests", json={"customer_id": cid, "kind": "erase"}, headers=ADMIN)
    assert r.status_code == 202, r.text
    request_id = r.json()["id"]
    assert r.json()["state"] in ("pending", "in_progress")
    again = await svc.post("/v1/privacy/requests", json={"customer_id": cid, "kind": "erase"}, headers=ADMIN)
    assert again.status_code == 202 and again.json()["id"] == request_id

    async def completed():
        got = (await svc.get(f"/v1/privacy/requests/{request_id}", headers=ADMIN)).json()
        return got if got["state"] == "completed" else None

    done = await wait_for(completed, timeout=30)
    assert done["services"]["customer-svc"]["state"] == "completed"
    # "purged" on Kafka; the embedded tansu closes the connection on DeleteRecords (not implemented)
    assert done["log"] in ("purged", "retention-only")
    assert [a["action"] for a in done["audit"]] == ["created", "started", "completed"]
    assert done["audit"][-1]["detail"] == {"log": done["log"]}

    needles = erasure.needles(name=NAME, identities=[("email", EMAIL), ("phone", PHONE), ("wechat_openid", OPENID)])
    # the outbox rows published before the erasure are purged once sent; wait for the relay
    leftovers = await scan_database(customer_db, needles)
    if leftovers:
        await wait_for(lambda: _none_left(customer_db, needles), timeout=10, interval=0.5)
        leftovers = await scan_database(customer_db, needles)
    assert leftovers == [], "\n".join(map(str, leftovers))

    tomb = (await svc.get(f"/v1/customers/{cid}", headers=ADMIN)).json()
    assert tomb["name"] == erasure.ERASED_NAME and tomb["identities"] == []
    # the other customer is untouched
    assert (await svc.get(f"/v1/customers/{other.json()['id']}", headers=ADMIN)).json()["name"] == "李四"
    # a new request after completion is a new request
    listed = (await svc.get("/v1/privacy/requests", params={"state": "completed"}, headers=ADMIN)).json()
    assert {i["id"]: i["kind"] for i in listed["items"]} == {request_id: "erase", export.json()["id"]: "export"}


async def _none_left(url, needles):
    return not await scan_database(url, needles)


async def test_roles_suspend_resume_and_bad_input(svc, customer_db):
    cid = await _person(svc)
    assert (await svc.post("/v1/privacy/requests", json={"customer_id": cid, "kind": "erase"},
                           headers=SUPERVISOR)).status_code == 403
    assert (await svc.get("/v1/privacy/requests", headers=SUPERVISOR)).status_code == 403
    missing = await svc.post("/v1/privacy/requests", json={"customer_id": str(uuid.uuid4()), "kind": "export"},
                             headers=ADMIN)
    assert missing.status_code == 404 and missing.headers["content-type"].startswith("application/problem+json")
    bad = await svc.post("/v1/privacy/requests", json={"customer_id": cid, "kind": "forget"}, headers=ADMIN)
    assert bad.status_code == 422
    assert (await svc.get(f"/v1/privacy/requests/{uuid.uuid4()}", headers=ADMIN)).status_code == 404

    export = await svc.post("/v1/privacy/requests", json={"customer_id": cid, "kind": "export"}, headers=ADMIN,
                            )
    assert export.status_code == 202, export.text
    rid = export.json()["id"]
    held = await svc.post(f"/v1/privacy/requests/{rid}/suspend", json={"reason": "legal hold"}, headers=ADMIN)
    assert held.status_code == 200 and held.json()["state"] == "suspended", held.text
    assert (await svc.get(f"/v1/privacy/requests/{rid}/bundle", headers=ADMIN)).status_code == 409
    assert (await svc.post(f"/v1/privacy/requests/{rid}/suspend", headers=ADMIN)).status_code == 409
    resumed = await svc.post(f"/v1/privacy/requests/{rid}/resume", headers=ADMIN)
    assert resumed.status_code == 200 and resumed.json()["state"] == "pending"
    # notify-svc is told: held while suspended, released on resume
    from helpdesk_common import events as contracts
    from helpdesk_common.db import create_raw_pool

    pool = await create_raw_pool(customer_db, size=1)
    try:
        async with pool.acquire() as conn:
            told = [contracts.decode(r["payload"]).data.restricted for r in await conn.fetch(
                "SELECT payload FROM outbox WHERE event_type = 'customer.restricted' AND key = $1 ORDER BY seq", cid)]
    finally:
        await pool.close()
    assert told == [True, False]

    bundle = await svc.get(f"/v1/privacy/requests/{rid}/bundle", headers=ADMIN)
    assert bundle.status_code == 200, bundle.text
    mine = bundle.json()["services"]["customer-svc"]
    assert mine["customers"][0]["name"] == NAME
    assert {i["value"] for i in mine["identities"]} >= {EMAIL, OPENID}
    assert mine["orders"][0]["external_id"] == "SO-PRIV-1"
    detail = (await svc.get(f"/v1/privacy/requests/{rid}", headers=ADMIN)).json()
    assert detail["state"] == "completed" and detail["bundle_ready"] is True
    assert [a["action"] for a in detail["audit"]] == ["created", "suspended", "resumed", "exported"]


@pytest.mark.parametrize(("kind", "state", "action", "expected"), [
    ("erase", "pending", "suspend", "suspended"),
    ("erase", "suspended", "resume", "pending"),
    ("erase", "in_progress", "suspend", None),  # the event is out: nothing can call it back
    ("erase", "completed", "suspend", None),
    ("export", "in_progress", "suspend", "suspended"),
    ("export", "pending", "resume", None),
])
def test_transitions(kind, state, action, expected):
    if expected is None:
        with pytest.raises(rules.TransitionRefused):
            rules.transition(kind=kind, state=state, action=action)
    else:
        assert rules.transition(kind=kind, state=state, action=action) == expected


def test_acknowledgements_complete_only_when_all_expected_answered():
    services = rules.initial_services(["customer-svc", "ticket-svc"])
    one = rules.acknowledge(services, service="customer-svc", at="t1")
    assert rules.next_state_after_ack(state="in_progress", services=one, expected=["customer-svc", "ticket-svc"]) \
        == "in_progress"
    both = rules.acknowledge(one, service="ticket-svc", at="t2")
    assert rules.next_state_after_ack(state="in_progress", services=both, expected=["customer-svc", "ticket-svc"]) \
        == "completed"
    # a redelivered acknowledgement keeps the first time
    assert rules.acknowledge(both, service="ticket-svc", at="t3")["ticket-svc"]["at"] == "t2"


async def test_a_restricted_customer_gets_no_survey(svc, customer_db):
    """While an erasure is asked (or a request suspended) the customer's data is restricted: a due
    survey is skipped, nothing is sent."""
    from customer_svc.privacy import repository as privacy_repository
    from customer_svc.surveys import service as surveys
    from helpdesk_common.db import create_raw_pool

    cid = uuid.UUID(await _person(svc))
    pool = await create_raw_pool(customer_db, size=1)
    try:
        async with pool.acquire() as conn, conn.transaction():
            await privacy_repository.set_restricted(conn, cid, True)
            survey_id = uuid.uuid4()
            await conn.execute("INSERT INTO surveys (id, kind, customer_id, status, send_at, channel) "
                               "VALUES ($1, 'nps', $2, 'scheduled', now() - interval '1 minute', 'email')",
                               survey_id, cid)
            await surveys.send_due(conn, key=b"k" * 32, base_url="https://help.example.com", ttl_s=3600, limit=10)
            status = await conn.fetchval("SELECT status FROM surveys WHERE id = $1", survey_id)
            sent = await conn.fetchval("SELECT count(*) FROM outbox WHERE event_type = 'survey.delivery_requested' "
                                       "AND key = $1", str(survey_id))
    finally:
        await pool.close()
    assert (status, sent) == ("skipped", 0)
