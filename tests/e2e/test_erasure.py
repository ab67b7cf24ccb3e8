"""Erasure end to end (issue 15, Done when): a customer with tickets on three channels (an e-mail
with an attachment, WeChat, the API), orders, a survey answer, a webhook delivery and e-mail
deliveries is erased through ``POST /v1/privacy/requests``; every service acknowledges, and then a
scan of every table of every service database (every text, json, array, tsvector and bytea
column) finds none of the person's e-mail, phone, name or openid, the audit keeps the request
without them, and the records the broker still holds are scanned too (``helpdesk_common.pii_scan``).

The broker: before the erasure a record naming the person that no consumer can decode is put
on the tickets topic, so that every consumer dead-letters a copy of it (the purge must reach the
DLQs too). On Apache Kafka the request's event-log step deletes the records below every consumer
group's committed offsets (``log: "purged"``) and the scan of every topic, ``__consumer_offsets``
included, must find nothing: ``make test`` runs this file a second time with
``E2E_BROKER=apache-kafka`` (a 1-node KRaft cluster, tests/e2e/conftest.py), where it passes. The
embedded broker (tansu 0.6, memory storage, the suite's first run) cannot delete records
(docs/security.md "Erasure"): there the request completes as ``log: "retention-only"`` and the
records naming the person stay until the broker restarts, which this test reports as an expected
failure naming the leak, never as a pass.
"""

from __future__ import annotations

import email.message
import email.policy
import time
import uuid

import pytest
from aiokafka import AIOKafkaProducer

from helpdesk_common import erasure, events
from helpdesk_common.devstack import SERVICES
from helpdesk_common.pii_crypto import Keyring
from helpdesk_common.pii_scan import scan_broker, scan_database

from .conftest import WEBHOOK_RECEIVER_HOST, eventually
from .test_outbound_chat_channels import _xml
from .test_surveys import CSAT_SUBJECTS, _link_of, _one_survey_mail, survey_settings  # noqa: F401  (fixture)
from .test_ticket_access import new_agent
from .test_webhooks import Receiver, subscribe, unsubscribe, until_live

pytestmark = pytest.mark.timeout(600)


def _mail_with_attachment(*, sender: str, name: str, phone: str) -> bytes:
    mail = email.message.EmailMessage(policy=email.policy.SMTP)
    mail["From"] = f"{name} <{sender}>"
    mail["To"] = "support@example.com"
    mail["Subject"] = "发票抬头错了 / wrong invoice title"
    mail["Message-ID"] = f"<{uuid.uuid4()}@mail.example.com>"
    mail["Date"] = "Mon, 30 Nov 2026 09:30:00 +0800"
    mail.set_content(f"您好，我是{name}，电话 {phone}。发票抬头错了，附件是扫描件。\n")
    mail.add_attachment(f"Invoice for {name}, {sender}, {phone}\n".encode(), maintype="text", subtype="plain",
                        filename="invoice-scan.txt")
    return mail.as_bytes()


async def test_an_erased_customer_is_nowhere(gw, stack, smtp_sink, admin_headers, key_headers, email_key_headers,
                                             channel_key_headers, survey_settings):  # noqa: F811
    token = uuid.uuid4().hex[:8]
    name = f"Ouyang Erasure{token}"
    address = f"ouyang.{token}@example.cn"
    phone = f"+86139{int(token, 16) % 10**8:08d}"
    openid = f"o_erase_{token}"
    await survey_settings(csat_enabled=True, csat_delay_minutes=0, nps_enabled=False)

    created = await gw.post("/v1/customers", headers=admin_headers, json={
        "name": name, "notes": f"prefers calls on {phone}", "identities": [
            {"kind": "email", "value": address}, {"kind": "phone", "value": phone},
            {"kind": "wechat_openid", "value": openid}]})
    assert created.status_code == 201, created.text
    customer_id = created.json()["id"]
    order = await gw.post(f"/v1/customers/{customer_id}/orders", headers=admin_headers, json={
        "external_id": f"SO-{token}", "ordered_at": "2026-11-01T10:00:00+08:00", "amount": "88.00", "currency": "CNY",
        "status": "paid", "items": [{"sku": "TEA-1", "name": "乌龙茶", "quantity": 1, "unit_price": "88.00"}]})
    assert order.status_code == 201, order.text

    async with Receiver(WEBHOOK_RECEIVER_HOST) as receiver:
        subscription = await subscribe(gw, admin_headers, receiver.url("/hooks/erasure"), ["ticket.created"])
        try:
            await until_live(gw, key_headers, receiver)
            # 1. the API (web form): a ticket whose ticket.created reaches the webhook with the requester
            api = await gw.post("/v1/tickets", headers=key_headers, json={
                "subject": f"Refund for {name}", "description": f"Please call {phone}",
                "requester": {"name": name, "email": address, "phone": phone}})
            assert api.status_code == 201, api.text
            api_ticket = api.json()["id"]
            await eventually(lambda: _first(receiver.events(api_ticket, "ticket.created")), timeout=60)
        finally:
            await unsubscribe(gw, admin_headers, subscription)

    # 2. WeChat, from the customer's openid
    wechat = await gw.post("/v1/channels/wechat/inbound", headers={**channel_key_headers["wechat"],
                                                                   "Content-Type": "application/xml"},
                           content=_xml(openid, "gh_e2e_service", f"我是{name}，订单什么时候到？", str(time.time_ns())))
    assert wechat.status_code == 201, wechat.text
    # 3. e-mail with an attachment; an agent answers (an e-mail delivery) and solves it (the survey)
    opened = await gw.post("/v1/channels/email/inbound", headers={**email_key_headers, "Content-Type": "message/rfc822"},
                           content=_mail_with_attachment(sender=address, name=name, phone=phone))
    assert opened.status_code == 201, opened.text
    mail_ticket = opened.json()["ticket_id"]
    tickets = [api_ticket, wechat.json()["ticket_id"], mail_ticket]

    async def linked():
        found = [(await gw.get(f"/v1/tickets/{t}", headers=admin_headers)).json().get("customer_id") for t in tickets]
        return found if found == [customer_id] * 3 else None

    await eventually(linked, timeout=60)
    agent_id, agent = await new_agent(gw, admin_headers, f"erasure-agent-{token}")
    assert (await gw.patch(f"/v1/tickets/{mail_ticket}", json={"assignee_id": agent_id},
                           headers=admin_headers)).status_code == 200
    replied = await gw.post(f"/v1/tickets/{mail_ticket}/messages", headers=agent,
                            json={"body": f"{name}，您好：新发票已寄出 / sent again to {address}"})
    assert replied.status_code == 201, replied.text
    assert (await gw.patch(f"/v1/tickets/{mail_ticket}", json={"status": "solved"}, headers=agent)).status_code == 200
    link = _link_of(await _one_survey_mail(smtp_sink, address, CSAT_SUBJECTS), stack.creds["gateway_url"])
    answered = await gw.post(link.removeprefix(stack.creds["gateway_url"]),
                             json={"rating": 2, "comment": f"{name} here: call me on {phone}"})
    assert answered.status_code in (200, 201), answered.text

    async def rated():
        return (await gw.get(f"/v1/tickets/{mail_ticket}", headers=admin_headers)).json()["csat"]

    await eventually(rated, timeout=60)
    deliveries = (await gw.get("/v1/deliveries", params={"ticket_id": mail_ticket, "limit": 100},
                               headers=admin_headers)).json()["items"]
    assert {d["kind"] for d in deliveries} >= {"survey"}, deliveries

    needles = erasure.needles(name=name, identities=[("email", address), ("phone", phone),
                                                     ("wechat_openid", openid)])
    # a record naming the person that no consumer can read: every consumer of the tickets topic
    # dead-letters a copy of it to the topic's DLQ, which the purge must reach too
    bootstrap = stack.broker.bootstrap if stack.broker else stack.config.kafka_bootstrap
    dlq = events.dlq_topic(events.TICKETS_TOPIC)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(events.TICKETS_TOPIC, f"not an event: {name} <{address}> {phone}".encode())
    finally:
        await producer.stop()
    await eventually(lambda: scan_broker(bootstrap, needles, topic_prefix=dlq), timeout=60, interval=1)
    databases = {svc.name: stack.database_url(svc.name) for svc in SERVICES}
    # the services that encrypt personal data: their ciphertext is opened and scanned too, so what
    # is encrypted but not erased is found (helpdesk_common.pii_scan)
    keyrings = {"customer-svc": Keyring.from_settings(stack.secrets["customer_pii_keys"]),
                "ticket-svc": Keyring.from_settings(stack.secrets["ticket_pii_keys"])}
    before = [f for name_, url in databases.items()
              for f in await scan_database(url, needles, label=name_, keyring=keyrings.get(name_))]
    assert {f.where for f in before} >= {"ticket-svc.tickets.requester (decrypted)"}, before
    assert {f.where.split(".")[0] for f in before} >= {"customer-svc", "ticket-svc", "notify-svc"}, before

    # the request: admins only, idempotent while open
    body = {"customer_id": customer_id, "kind": "erase"}
    assert (await gw.post("/v1/privacy/requests", json=body, headers=agent)).status_code == 403
    started = time.monotonic()
    asked = await gw.post("/v1/privacy/requests", json=body, headers=admin_headers)
    assert asked.status_code == 202, asked.text
    request_id = asked.json()["id"]
    again = await gw.post("/v1/privacy/requests", json=body, headers=admin_headers)
    assert again.status_code == 202 and again.json()["id"] == request_id

    async def completed():
        found = (await gw.get(f"/v1/privacy/requests/{request_id}", headers=admin_headers)).json()
        return found if found["state"] == "completed" else None

    done = await eventually(completed, timeout=180, interval=1)
    took = time.monotonic() - started
    assert {n for n, s in done["services"].items() if not n.startswith("_") and s["state"] == "completed"} == {
        "customer-svc", "ticket-svc", "notify-svc", "kb-svc", "analytics-svc", "sla-svc", "gateway"}

    # every column of every table of every service: nothing (published outbox rows are purged in
    # the same transactions; rows the relays were still sending are published, then purged by a
    # redelivery-proof second look: give the relays a moment)
    async def clean():
        found = [f for name_, url in databases.items()
                 for f in await scan_database(url, needles, label=name_, keyring=keyrings.get(name_))]
        return found

    scan_started = time.monotonic()
    leftovers = await clean()
    scan_took = time.monotonic() - scan_started
    print(f"erasure: completed {took:.1f} s after the request (log: {done['log']}); "
          f"scan of {len(databases)} databases: {scan_took:.1f} s; needles: {len(needles)}")
    if leftovers:
        await eventually(lambda: _none(clean), timeout=20, interval=1)
        leftovers = await clean()
    assert leftovers == [], "\n".join(map(str, leftovers))

    # the shells stay, with a tombstone requester; the audit keeps the request, without the person
    shell = (await gw.get(f"/v1/tickets/{mail_ticket}", headers=admin_headers)).json()
    assert shell["status"] == "solved" and shell["requester"]["name"] == erasure.ERASED_NAME
    tomb = (await gw.get(f"/v1/customers/{customer_id}", headers=admin_headers)).json()
    assert tomb["name"] == erasure.ERASED_NAME and tomb["identities"] == []
    audit = await gw.get(f"/v1/privacy/requests/{request_id}", headers=admin_headers)
    assert [a["action"] for a in audit.json()["audit"]] == ["created", "started", "completed"]
    assert not any(n.lower() in audit.text.lower() for n in needles)

    # the event log
    read: dict[str, int] = {}
    held = await scan_broker(bootstrap, needles, counts=read)
    print(f"erasure: records on the broker naming the person: {len({f.where for f in held})} of "
          f"{sum(read.values())} read ({len(held)} needles found, on "
          f"{sorted({f.where.split(' partition')[0] for f in held})}); read per topic: {read}")
    if done["log"] == "retention-only" and held:
        pytest.xfail(f"the embedded broker still holds {len({f.where for f in held})} records naming the person "
                     f"(tansu 0.6 has no DeleteRecords; they go with topic retention or a broker restart), "
                     f"e.g. {held[0]}")
    assert held == [], "\n".join(map(str, held[:20]))


async def _first(items):
    return items[0] if items else None


async def _none(scan):
    return not await scan()


async def test_an_export_bundles_what_every_service_holds(gw, admin_headers, key_headers):
    token = uuid.uuid4().hex[:8]
    address = f"export.{token}@example.cn"
    created = await gw.post("/v1/customers", headers=admin_headers, json={
        "name": f"Export {token}", "identities": [{"kind": "email", "value": address}]})
    assert created.status_code == 201, created.text
    customer_id = created.json()["id"]
    ticket = await gw.post("/v1/tickets", headers=key_headers, json={
        "subject": f"Export me {token}", "requester": {"name": f"Export {token}", "email": address}})
    assert ticket.status_code == 201, ticket.text

    async def linked():
        found = (await gw.get(f"/v1/tickets/{ticket.json()['id']}", headers=admin_headers)).json()
        return found.get("customer_id") == customer_id

    await eventually(linked, timeout=60)
    asked = await gw.post("/v1/privacy/requests", json={"customer_id": customer_id, "kind": "export"},
                          headers=admin_headers)
    assert asked.status_code == 202, asked.text
    bundle = await gw.get(f"/v1/privacy/requests/{asked.json()['id']}/bundle", headers=admin_headers)
    assert bundle.status_code == 200, bundle.text
    assert bundle.headers["cache-control"] == "no-store"
    services = bundle.json()["services"]
    assert bundle.json()["complete"] is True, {k: v for k, v in services.items() if "error" in v}
    assert services["customer-svc"]["identities"][0]["value"] == address
    assert [t["subject"] for t in services["ticket-svc"]["tickets"]] == [f"Export me {token}"]
    assert set(services) == {"customer-svc", "ticket-svc", "notify-svc", "kb-svc", "analytics-svc"}
    detail = (await gw.get(f"/v1/privacy/requests/{asked.json()['id']}", headers=admin_headers)).json()
    assert detail["state"] == "completed" and [a["action"] for a in detail["audit"]] == ["created", "exported"]
