"""One webhook attempt against receivers on 127.0.0.1 (allow-listed): signed CloudEvents that
the ``standardwebhooks`` reference library verifies, and the classification of answers.
No packet leaves 127.0.0.0/8."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

import pytest
from aiohttp import web
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from helpdesk_common.events import Requester, TicketCreated, TicketCreatedData, encode
from notify_svc.egress import Egress, parse_allow_networks
from notify_svc.webhooks import signing
from notify_svc.webhooks.delivery import attempt, retry_after_s

pytestmark = pytest.mark.timeout(120)  # a hang guard: property tests of 300 examples take 30 s and more on a loaded 2-core runner


def _event() -> bytes:
    return encode(TicketCreated(source="ticket-svc", subject=str(uuid.uuid4()), data=TicketCreatedData(
        ticket_id=uuid.uuid4(), subject="打印机坏了 / printer broken", status="new", priority="normal",
        requester=Requester(name="张三", email="zhang@example.com"), created_by="channel:x",
        created_at=datetime.now(UTC), number=42)))


class Receiver:
    def __init__(self, status: int = 204, headers: dict[str, str] | None = None) -> None:
        self.status, self.headers = status, headers or {}
        self.got: list[tuple[dict[str, str], bytes]] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.got.append((dict(request.headers), await request.read()))
        return web.Response(status=self.status, headers=self.headers, body=b"internal details")

    async def __aenter__(self) -> Receiver:
        app = web.Application()
        app.router.add_post("/hook", self.handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/hook"
        return self

    async def __aexit__(self, *exc) -> None:
        await self._runner.cleanup()


@pytest.fixture
async def egress():
    client = Egress(allow_networks=parse_allow_networks("127.0.0.1/32"), connect_timeout_s=2, total_timeout_s=5)
    yield client
    await client.close()


async def test_a_signed_ticket_created_event_verifies(egress) -> None:
    secret = signing.generate_secret()
    body = _event()
    async with Receiver() as receiver:
        result = await attempt(egress, url=receiver.url, secrets=[secret], msg_id="msg_0001", body=body)
    assert result.result.outcome == "sent" and result.status == 204 and not result.disable
    headers, received = receiver.got[0]
    assert received == body
    assert headers["Content-Type"] == "application/cloudevents+json"
    event = Webhook(secret).verify(received, headers)
    assert event["type"] == "ticket.created" and event["data"]["number"] == 42
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(received.replace("打印机".encode(), "扫描仪".encode()), headers)
    stale = dict(headers, **{"webhook-timestamp": str(int(time.time()) - 301)})
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(received, stale)


async def test_a_stale_signature_fails_verification(egress) -> None:
    secret = signing.generate_secret()
    async with Receiver() as receiver:
        await attempt(egress, url=receiver.url, secrets=[secret], msg_id="msg_2", body=_event(),
                      timestamp=int(time.time()) - 6 * 60)
    headers, received = receiver.got[0]
    with pytest.raises(WebhookVerificationError, match="too old"):
        Webhook(secret).verify(received, headers)


async def test_retries_carry_the_same_id(egress) -> None:
    secret, body = signing.generate_secret(), _event()
    async with Receiver(status=503) as receiver:
        for _ in range(2):
            await attempt(egress, url=receiver.url, secrets=[secret], msg_id="msg_same", body=body)
    assert [h["webhook-id"] for h, _ in receiver.got] == ["msg_same", "msg_same"]


@pytest.mark.parametrize(("status", "headers", "outcome", "disable", "retry_after", "reason"), [
    (200, {}, "sent", False, None, None),
    (302, {"Location": "http://127.0.0.1:1/internal"}, "transient", False, None, "redirect (302) not followed"),
    (410, {}, "permanent", True, None, "410 Gone"),
    (503, {"Retry-After": "120"}, "transient", False, 120.0, "answered 503"),
    (429, {}, "transient", False, None, "answered 429"),
    (400, {}, "transient", False, None, "answered 400"),
])
async def test_classification(egress, status, headers, outcome, disable, retry_after, reason) -> None:
    async with Receiver(status=status, headers=headers) as receiver:
        result = await attempt(egress, url=receiver.url, secrets=[signing.generate_secret()], msg_id="m",
                               body=b"{}")
    assert (result.result.outcome, result.disable, result.result.retry_after) == (outcome, disable, retry_after)
    assert result.result.code == str(status)
    if reason:
        assert reason in result.result.reason
    assert "internal details" not in (result.result.reason or "")


async def test_refused_destinations_are_permanent(egress) -> None:
    for url in ("http://127.0.0.2:9/hook", "http://localhost:9/hook", "http://[::1]:9/hook", "ftp://127.0.0.1/x"):
        result = await attempt(egress, url=url, secrets=[signing.generate_secret()], msg_id="m", body=b"{}")
        assert result.result.outcome == "permanent" and result.result.code == "refused", url


def test_retry_after_forms() -> None:
    now = 1_800_000_000.0
    assert retry_after_s("30", now=now) == 30
    assert retry_after_s(None) is None and retry_after_s("soon") is None and retry_after_s("-5") is None
    date = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(now + 90))
    assert retry_after_s(date, now=now) == 90
