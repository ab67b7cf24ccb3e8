"""Webhooks end to end, through the gateway, against receivers on loopback (docs/webhooks.md).

An admin subscribes a URL through the gateway; a channel opens a ticket; notify-svc posts the
ticket's CloudEvent, signed by the Standard Webhooks scheme, to a receiver on the one address the
test stack allow-lists (conftest.WEBHOOK_RECEIVER_HOST, 127.0.0.8/32), and the reference library
``standardwebhooks`` verifies it. The refusals are shown on the running stack as well: every other
loopback target (127.0.0.1 where the stack itself listens, 127.0.0.2, ``localhost``, ``[::1]``,
legacy numeric forms), other schemes, names that resolve to a refused address (decided at
delivery, against a DNS server of the test's own), and redirects, which are never followed.

No packet leaves 127.0.0.0/8 (and ::1): receivers listen on loopback addresses only, the only DNS
server asked is the test's own on 127.0.0.1, and the stack's notify-svc reaches only literal
allow-listed addresses except while the DNS test runs (see ``notify_with_local_dns``).

Timing: notify-svc's consumer offers an event type to webhooks once its periodic read of the
subscriptions (NOTIFY_WEBHOOK_TYPES_REFRESH_S, 2 s) has seen a subscriber, so each test first
opens probe tickets until one reaches its receiver (``until_live``) instead of sleeping.
"""

from __future__ import annotations

import ipaddress
import json
import socket
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

import pytest
from aiohttp import web
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from .conftest import REPO, WEBHOOK_RECEIVER_HOST, eventually

pytestmark = pytest.mark.timeout(240)

#: loopback addresses that are not allow-listed: listeners there must get nothing
OTHER_LOOPBACK = "127.0.0.9"


# ---- receivers and helpers --------------------------------------------------------------------------

@dataclass(frozen=True)
class Received:
    path: str
    #: header names lower-cased
    headers: dict[str, str]
    #: the exact bytes received (what the signature covers)
    body: bytes

    @property
    def event(self) -> dict:
        return json.loads(self.body)


class Receiver:
    """An HTTP server on one loopback address (a port the kernel picks) that records every
    request and answers ``status``, with ``location`` for a redirect."""

    def __init__(self, host: str, *, status: int = 204, location: str | None = None) -> None:
        self.host = host
        self.status = status
        self.location = location
        self.requests: list[Received] = []
        self.port = 0
        self._runner: web.AppRunner | None = None

    async def _record(self, request: web.Request) -> web.Response:
        self.requests.append(Received(request.path_qs, {k.lower(): v for k, v in request.headers.items()},
                                      await request.read()))
        return web.Response(status=self.status, headers={"Location": self.location} if self.location else None)

    async def __aenter__(self) -> Receiver:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._record)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, 0).start()
        self.port = self._runner.addresses[0][1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._runner.cleanup()  # type: ignore[union-attr]

    def url(self, path: str = "/hook", *, host: str | None = None) -> str:
        name = host or self.host
        return f"http://{f'[{name}]' if ':' in name else name}:{self.port}{path}"

    def events(self, ticket_id: str, event_type: str) -> list[Received]:
        found = []
        for request in self.requests:
            try:
                event = request.event
            except ValueError:
                continue
            if event.get("type") == event_type and (event.get("data") or {}).get("ticket_id") == ticket_id:
                found.append(request)
        return found


async def _ready(value):
    return value


async def open_ticket(gw, key_headers, subject: str) -> str:
    body = {"subject": subject, "description": "Webhook test / 网络钩子测试",
            "requester": {"name": "Han Meimei", "email": f"hook.{uuid.uuid4().hex[:10]}@example.com"},
            "priority": "normal"}
    created = await gw.post("/v1/tickets", json=body, headers=key_headers)
    assert created.status_code == 201, created.text
    return created.json()["id"]


async def subscribe(gw, admin_headers, url: str, event_types: list[str]) -> dict:
    created = await gw.post("/v1/webhooks", headers=admin_headers,
                            json={"url": url, "event_types": event_types, "description": "e2e receiver"})
    assert created.status_code == 201, created.text
    return created.json()


async def unsubscribe(gw, admin_headers, *subscriptions: dict) -> None:
    """So that later tests' tickets queue nothing for receivers that are gone."""
    for subscription in subscriptions:
        gone = await gw.delete(f"/v1/webhooks/{subscription['id']}", headers=admin_headers)
        assert gone.status_code in (204, 404), gone.text


async def until_live(gw, key_headers, receiver: Receiver, *, timeout: float = 120.0) -> None:
    """Open probe tickets until one's ``ticket.created`` reaches ``receiver``: from then on the
    consumer offers ``ticket.created`` to webhooks, so every later ticket reaches every
    subscription to it (module docstring, "Timing")."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        probe = await open_ticket(gw, key_headers, "probe")
        try:
            await eventually(lambda: _ready(receiver.events(probe, "ticket.created")), timeout=8)
            return
        except AssertionError:
            continue
    raise AssertionError(f"no probe ticket reached {receiver.url()} within {timeout}s")


async def webhook_deliveries(gw, admin_headers, subscription_id: str, ticket_id: str) -> list[dict]:
    answer = await gw.get("/v1/deliveries", headers=admin_headers,
                          params={"subscription_id": subscription_id, "ticket_id": ticket_id, "kind": "webhook"})
    assert answer.status_code == 200, answer.text
    return answer.json()["items"]


def signed_at(secret: str, received: Received, timestamp: int) -> dict[str, str]:
    """``received``'s headers re-signed with ``secret`` for another timestamp: what notify-svc
    would have sent at that time, so a refusal of it can only be about the time."""
    signature = Webhook(secret).sign(received.headers["webhook-id"], datetime.fromtimestamp(timestamp, UTC),
                                     received.body.decode())
    return {**received.headers, "webhook-timestamp": str(timestamp), "webhook-signature": signature}


# ---- the signed delivery ----------------------------------------------------------------------------

async def test_an_allow_listed_receiver_gets_signed_ticket_events_that_standardwebhooks_verifies(
        gw, admin_headers, key_headers):
    async with Receiver(WEBHOOK_RECEIVER_HOST) as receiver:
        subscription = await subscribe(gw, admin_headers, receiver.url("/hooks/helpdesk"),
                                       ["ticket.created", "ticket.status_changed"])
        secret = subscription["secret"]
        assert secret.startswith("whsec_")
        try:
            await until_live(gw, key_headers, receiver)
            ticket_id = await open_ticket(gw, key_headers, "Webhook 工单 / ticket for the receiver")
            [received] = await eventually(lambda: _ready(receiver.events(ticket_id, "ticket.created")), timeout=60)

            headers = received.headers
            assert received.path == "/hooks/helpdesk"
            assert headers["content-type"] == "application/cloudevents+json"
            assert {"webhook-id", "webhook-timestamp", "webhook-signature"} <= headers.keys()
            assert abs(time.time() - int(headers["webhook-timestamp"])) < 120
            assert headers["webhook-signature"].startswith("v1,") and " " not in headers["webhook-signature"]

            webhook = Webhook(secret)
            event = webhook.verify(received.body, headers)  # raises unless signed with the secret and recent
            ticket = (await gw.get(f"/v1/tickets/{ticket_id}", headers=key_headers)).json()
            assert event["specversion"] == "1.0" and event["type"] == "ticket.created"
            assert event["source"] == "ticket-svc" and event["subject"] == ticket_id
            assert uuid.UUID(event["id"]) and event["time"]
            assert event["data"]["ticket_id"] == ticket_id
            assert event["data"]["subject"] == ticket["subject"] == "Webhook 工单 / ticket for the receiver"
            assert event["data"]["number"] == ticket["number"]

            # a body changed in any way fails: the signature covers the exact bytes
            for tampered in (received.body.replace(b"ticket.created", b"ticket.deleted"), received.body + b" ",
                             received.body.replace(ticket_id.encode(), str(uuid.uuid4()).encode())):
                with pytest.raises(WebhookVerificationError, match="No matching signature"):
                    webhook.verify(tampered, headers)
            with pytest.raises(WebhookVerificationError, match="No matching signature"):
                Webhook("whsec_" + "QUJD" * 8).verify(received.body, headers)  # another secret

            # the same request, captured and sent 6 minutes later: re-signing it with the secret
            # reproduces notify-svc's signature exactly, so what fails is the age, not the signature
            stamp = int(headers["webhook-timestamp"])
            assert signed_at(secret, received, stamp)["webhook-signature"] == headers["webhook-signature"]
            with pytest.raises(WebhookVerificationError, match="too old"):
                webhook.verify(received.body, signed_at(secret, received, int(time.time()) - 6 * 60))
            assert webhook.verify(received.body, signed_at(secret, received, int(time.time()) - 4 * 60)) == event

            # the second subscribed type
            changed = await gw.patch(f"/v1/tickets/{ticket_id}", json={"status": "pending"}, headers=admin_headers)
            assert changed.status_code == 200, changed.text

            async def to_pending():
                return [r for r in receiver.events(ticket_id, "ticket.status_changed")
                        if r.event["data"]["to_status"] == "pending"]

            [status_changed] = await eventually(to_pending, timeout=60)
            assert webhook.verify(status_changed.body, status_changed.headers)["subject"] == ticket_id
            assert status_changed.headers["webhook-id"] != headers["webhook-id"]  # one id per delivery

            # nothing of another type, and every request signed
            assert {r.event["type"] for r in receiver.requests} <= {"ticket.created", "ticket.status_changed"}
            for request in receiver.requests:
                webhook.verify(request.body, request.headers)

            # notify-svc's record, through the gateway: the webhook-id is the delivery's id
            wanted = {headers["webhook-id"], status_changed.headers["webhook-id"]}

            async def sent():
                items = await webhook_deliveries(gw, admin_headers, subscription["id"], ticket_id)
                records = {d["id"]: d for d in items if d["status"] == "sent"}
                return records if wanted <= records.keys() else None

            record = (await eventually(sent, timeout=60))[headers["webhook-id"]]
            assert (record["channel"], record["attempts"], record["event_id"]) == ("webhook", 1, event["id"])
        finally:
            await unsubscribe(gw, admin_headers, subscription)


async def test_after_a_rotation_both_secrets_sign(gw, admin_headers, key_headers):
    async with Receiver(WEBHOOK_RECEIVER_HOST) as receiver:
        subscription = await subscribe(gw, admin_headers, receiver.url(), ["ticket.created"])
        old_secret = subscription["secret"]
        try:
            await until_live(gw, key_headers, receiver)
            rotated = await gw.post(f"/v1/webhooks/{subscription['id']}/rotate-secret", headers=admin_headers)
            assert rotated.status_code == 200, rotated.text
            assert rotated.headers["cache-control"] == "no-store"
            new_secret = rotated.json()["secret"]
            assert new_secret.startswith("whsec_") and new_secret != old_secret
            expires = datetime.fromisoformat(rotated.json()["previous_secret_expires_at"])
            assert 23 * 3600 < (expires - datetime.now(UTC)).total_seconds() <= 24 * 3600

            ticket_id = await open_ticket(gw, key_headers, "after the rotation")
            [received] = await eventually(lambda: _ready(receiver.events(ticket_id, "ticket.created")), timeout=60)
            signatures = received.headers["webhook-signature"].split(" ")
            assert len(signatures) == 2

            # a receiver still on the old secret and one already on the new one both accept it
            assert Webhook(old_secret).verify(received.body, received.headers)["data"]["ticket_id"] == ticket_id
            assert Webhook(new_secret).verify(received.body, received.headers)["data"]["ticket_id"] == ticket_id
            # one signature per secret, each verifiable on its own with its secret only
            stamp = int(received.headers["webhook-timestamp"])
            by_new = signed_at(new_secret, received, stamp)
            by_old = signed_at(old_secret, received, stamp)
            assert set(signatures) == {by_new["webhook-signature"], by_old["webhook-signature"]}
            Webhook(new_secret).verify(received.body, by_new)
            Webhook(old_secret).verify(received.body, by_old)
            with pytest.raises(WebhookVerificationError):
                Webhook(new_secret).verify(received.body, by_old)
        finally:
            await unsubscribe(gw, admin_headers, subscription)


# ---- the delivery log and replays ------------------------------------------------------------------

async def test_the_delivery_log_shows_attempts_and_a_replay_resends_with_the_same_webhook_id(
        gw, admin_headers, key_headers):
    async with Receiver(WEBHOOK_RECEIVER_HOST) as receiver:
        subscription = await subscribe(gw, admin_headers, receiver.url(), ["ticket.created"])
        base = f"/v1/webhooks/{subscription['id']}/deliveries"
        try:
            await until_live(gw, key_headers, receiver)
            ticket_id = await open_ticket(gw, key_headers, "replay me")
            [first] = await eventually(lambda: _ready(receiver.events(ticket_id, "ticket.created")), timeout=60)
            delivery_id = first.headers["webhook-id"]

            async def logged(attempts: int):
                listed = await gw.get(base, headers=admin_headers, params={"limit": 100})
                assert listed.status_code == 200, listed.text
                items = listed.json()["items"]
                assert {d["subscription_id"] for d in items} == {subscription["id"]}  # this subscription's only
                found = [d for d in items if d["id"] == delivery_id]
                return found[0] if found and found[0]["status"] == "sent" and found[0]["attempts"] == attempts else None

            entry = await eventually(lambda: logged(1), timeout=60)
            assert (entry["ticket_id"], entry["kind"]) == (ticket_id, "webhook")
            detail = await gw.get(f"{base}/{delivery_id}", headers=admin_headers)
            assert detail.status_code == 200, detail.text
            assert [(a["number"], a["outcome"], a["code"], a["trigger"]) for a in detail.json()["attempts_log"]] == [
                (1, "sent", "204", "schedule")]

            replay = await gw.post(f"{base}/{delivery_id}/replay", headers={**admin_headers, "Idempotency-Key": "r-1"})
            assert replay.status_code == 202, replay.text
            assert replay.json()["id"] == delivery_id and replay.json()["status"] in ("queued", "sending", "sent")
            again_received = await eventually(
                lambda: _ready(receiver.events(ticket_id, "ticket.created")[1:]), timeout=60)
            [again] = again_received
            assert again.headers["webhook-id"] == delivery_id  # receivers drop it if they have it
            assert again.body == first.body
            assert int(again.headers["webhook-timestamp"]) >= int(first.headers["webhook-timestamp"])
            Webhook(subscription["secret"]).verify(again.body, again.headers)  # signed anew, and recent

            repeated = await gw.post(f"{base}/{delivery_id}/replay", headers={**admin_headers, "Idempotency-Key": "r-1"})
            assert repeated.status_code == 202 and repeated.headers["idempotent-replayed"] == "true"

            await eventually(lambda: logged(2), timeout=60)
            detail = (await gw.get(f"{base}/{delivery_id}", headers=admin_headers)).json()
            assert [(a["number"], a["outcome"], a["code"], a["trigger"]) for a in detail["attempts_log"]] == [
                (1, "sent", "204", "schedule"), (2, "sent", "204", "replay")]
            assert detail["replays"] == 1
            assert len(receiver.events(ticket_id, "ticket.created")) == 2  # the repeated key sent nothing

            unknown = await gw.get(f"/v1/webhooks/{uuid.uuid4()}/deliveries", headers=admin_headers)
            assert unknown.status_code == 404 and unknown.headers["content-type"].startswith("application/problem+json")
            elsewhere = await gw.get(f"{base}/{uuid.uuid4()}", headers=admin_headers)
            assert elsewhere.status_code == 404
        finally:
            await unsubscribe(gw, admin_headers, subscription)


# ---- refusals decided when subscribing ----------------------------------------------------------

REFUSED_URLS = [
    ("http://127.0.0.2:{port}/hook", "127.0.0.2: loopback address"),
    ("http://127.0.0.1:{gateway}/v1/tickets", "127.0.0.1: loopback address"),  # the stack's own gateway
    ("http://localhost:{port}/hook", "localhost names are refused"),
    ("http://LocalHost.:{port}/hook", "localhost names are refused"),
    ("http://[::1]:{port}/hook", "::1: loopback address"),
    ("http://[::ffff:127.0.0.8]:{port}/hook", "IPv4-mapped"),  # the allow-listed address, in another form
    ("http://2130706433/hook", "127.0.0.1: loopback address"),
    ("http://0x7f.1/hook", "127.0.0.1: loopback address"),
    ("http://0177.0.0.1:{port}/hook", "127.0.0.1: loopback address"),
    ("http://169.254.169.254/latest/meta-data/", "169.254.169.254: link-local"),
    ("ftp://127.0.0.8:{port}/hook", "scheme 'ftp' is not allowed"),
    ("file:///etc/passwd", "scheme 'file' is not allowed"),
    ("gopher://127.0.0.8:{port}/_", "scheme 'gopher' is not allowed"),
    ("http://user:secret@127.0.0.8:{port}/hook", "credentials"),
]


def _assert_url_refused(answer, reason: str) -> None:
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    problem = answer.json()
    assert problem["status"] == 422 and problem["type"] and problem["title"]
    [error] = problem["errors"]
    assert error["field"] == "body.url" and error["code"] == "url_refused"
    assert reason in error["message"], error


@pytest.mark.parametrize(("template", "reason"), REFUSED_URLS, ids=[u for u, _ in REFUSED_URLS])
async def test_refused_targets_are_422_on_create_and_on_change(gw, admin_headers, stack, template, reason):
    url = template.format(port=47_123, gateway=stack.port_of("gateway"))
    created = await gw.post("/v1/webhooks", headers=admin_headers, json={"url": url, "event_types": ["ticket.created"]})
    _assert_url_refused(created, reason)

    subscription = await subscribe(gw, admin_headers, f"http://{WEBHOOK_RECEIVER_HOST}:47123/hook", ["ticket.created"])
    try:
        changed = await gw.patch(f"/v1/webhooks/{subscription['id']}", headers=admin_headers, json={"url": url})
        _assert_url_refused(changed, reason)
        kept = (await gw.get(f"/v1/webhooks/{subscription['id']}", headers=admin_headers)).json()
        assert (kept["url"], kept["version"]) == (subscription["url"], subscription["version"])
    finally:
        await unsubscribe(gw, admin_headers, subscription)


# ---- refusals decided at delivery: names ------------------------------------------------------------

def _local_dns_module():
    """services/notify-svc/tests/local_dns.py, loaded by path (not an importable package)."""
    import importlib.util
    import sys

    name = "helpdesk_e2e_local_dns"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, REPO / "services/notify-svc/tests/local_dns.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


async def _subscriptions(gw, admin_headers) -> list[dict]:
    found, cursor = [], None
    while True:
        params = {"limit": 100, **({"cursor": cursor} if cursor else {})}
        page = await gw.get("/v1/webhooks", headers=admin_headers, params=params)
        assert page.status_code == 200, page.text
        found += page.json()["items"]
        cursor = page.json()["next_cursor"]
        if not cursor:
            return found


@pytest.fixture
async def only_loopback_literals(gw, admin_headers):
    """Fails unless every enabled subscription names a name or a loopback address (see below)."""
    outside = [s["url"] for s in await _subscriptions(gw, admin_headers)
               if s["enabled"] and _literal_outside_loopback(s["url"])]
    if outside:
        pytest.fail(f"enabled subscriptions would be posted to outside 127.0.0.0/8 without the allow-list-only "
                    f"setting: {outside}")


@pytest.fixture
def notify_with_local_dns(stack, only_loopback_literals):
    """notify-svc restarted to resolve webhook host names through a DNS server of the test's own
    on 127.0.0.1 (NOTIFY_EGRESS_NAMESERVERS), with NOTIFY_EGRESS_ALLOWLIST_ONLY off: that
    closed-stack setting refuses every name before any lookup, which would hide the check under
    test. Nothing leaves 127.0.0.0/8 meanwhile: every name is asked of the local server only
    (unknown names are NXDOMAIN), and no enabled subscription names a literal address outside
    loopback (``only_loopback_literals``). Back to the stack's settings afterwards.

    A sync fixture on purpose: the stack's children die with the thread that started them
    (PR_SET_PDEATHSIG), so they must be started from the main thread, not an executor's."""
    dns = _local_dns_module().LocalDNS().start()

    def restart(extra_env: dict[str, str] | None) -> None:
        stack.stop_service("notify-svc")
        stack.start_service("notify-svc", extra_env=extra_env)
        stack.wait_service("notify-svc")

    try:
        restart({"NOTIFY_EGRESS_ALLOWLIST_ONLY": "false", "NOTIFY_EGRESS_NAMESERVERS": dns.nameserver})
        yield dns
    finally:
        restart(None)
        dns.stop()


def _literal_outside_loopback(url: str) -> bool:
    host = (urlsplit(url).hostname or "").strip("[]")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        try:  # legacy numeric forms (134744072, 0x8.8.8.8): the HTTP client connects to them as addresses
            address = ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return False  # a name: asked of the local DNS server only, while the fixture runs
    return not address.is_loopback


@pytest.mark.timeout(360)
async def test_a_name_resolving_to_a_refused_address_is_refused_at_delivery(
        gw, admin_headers, key_headers, notify_with_local_dns):
    """Names pass when subscribing (DNS can change after) and are checked at each delivery, every
    address the local DNS server answers. A listener waits behind each refused address, so
    what is shown is the refusal, not a missing server; a name resolving to the allow-listed
    address is delivered, so the names are indeed looked up there."""
    dns = notify_with_local_dns
    async with (Receiver(WEBHOOK_RECEIVER_HOST) as allowed, Receiver("127.0.0.1") as on_127_0_0_1,
                Receiver(OTHER_LOOPBACK) as on_other, Receiver("::1") as on_v6):
        dns.set("hooks.example.test", [WEBHOOK_RECEIVER_HOST])
        dns.set("evil.example.test", ["127.0.0.1"])
        dns.set("sneaky.example.test", [OTHER_LOOPBACK])
        dns.set("six.example.test", ["::1"])
        cases = {  # receiver, name, the reason the delivery must give
            "127.0.0.1": (on_127_0_0_1, "evil.example.test",
                          "evil.example.test resolves to 127.0.0.1: loopback address"),
            OTHER_LOOPBACK: (on_other, "sneaky.example.test",
                             f"sneaky.example.test resolves to {OTHER_LOOPBACK}: loopback address"),
            "::1": (on_v6, "six.example.test", "six.example.test resolves to ::1: loopback address"),
        }
        good = await subscribe(gw, admin_headers, allowed.url(host="hooks.example.test"), ["ticket.created"])
        refused = {key: await subscribe(gw, admin_headers, receiver.url(host=name), ["ticket.created"])
                   for key, (receiver, name, _) in cases.items()}
        try:
            await until_live(gw, key_headers, allowed)
            ticket_id = await open_ticket(gw, key_headers, "名字解析 / name resolution")
            [received] = await eventually(lambda: _ready(allowed.events(ticket_id, "ticket.created")), timeout=60)
            assert received.headers["host"] == f"hooks.example.test:{allowed.port}"  # the name, connected by address
            Webhook(good["secret"]).verify(received.body, received.headers)

            for key, (receiver, name, reason) in cases.items():
                async def refused_delivery(subscription=refused[key]):
                    items = await webhook_deliveries(gw, admin_headers, subscription["id"], ticket_id)
                    return items if items and items[0]["status"] in ("failed", "undeliverable") else None

                [delivery] = await eventually(refused_delivery, timeout=60)
                assert delivery["status"] == "failed" and delivery["attempts"] == 1, delivery
                assert delivery["reason"] == f"refused by the egress policy: {reason}", delivery
                assert receiver.requests == [], f"{key} got a request"
                assert (name, "A") in dns.queries or (name, "AAAA") in dns.queries
            # the lookups went to the local server: these names exist nowhere else
            assert {"hooks.example.test", "evil.example.test", "sneaky.example.test",
                    "six.example.test"} <= {name for name, _ in dns.queries}
        finally:
            await unsubscribe(gw, admin_headers, good, *refused.values())


# ---- refusals decided at delivery: redirects --------------------------------------------------------

@pytest.mark.parametrize("status", [302, 307])
async def test_a_redirect_to_a_refused_address_is_not_followed(gw, admin_headers, key_headers, status):
    async with Receiver(OTHER_LOOPBACK) as target:
        async with Receiver(WEBHOOK_RECEIVER_HOST, status=status, location=target.url("/stolen")) as redirector:
            subscription = await subscribe(gw, admin_headers, redirector.url(), ["ticket.created"])
            try:
                await until_live(gw, key_headers, redirector)
                ticket_id = await open_ticket(gw, key_headers, f"redirect {status}")

                async def attempted():
                    items = await webhook_deliveries(gw, admin_headers, subscription["id"], ticket_id)
                    return items if items and items[0]["attempts"] >= 1 and items[0]["last_code"] else None

                [delivery] = await eventually(attempted, timeout=60)
                assert redirector.events(ticket_id, "ticket.created")
                assert delivery["status"] != "sent" and delivery["last_code"] == str(status), delivery
                assert delivery["reason"] == f"redirect ({status}) not followed", delivery
                detail = (await gw.get(f"/v1/deliveries/{delivery['id']}", headers=admin_headers)).json()
                first = detail["attempts_log"][0]
                assert (first["outcome"], first["code"], first["error"]) == (
                    "transient", str(status), f"redirect ({status}) not followed")
                assert target.requests == []
            finally:
                await unsubscribe(gw, admin_headers, subscription)
        assert target.requests == []
