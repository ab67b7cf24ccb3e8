"""Pure delivery rules: backoff, the state after an attempt, the token bucket, channel choice."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from notify_svc.deliveries import service
from notify_svc.deliveries.dispatcher import TokenBucket, reply_message
from notify_svc.webhooks import schedule

SETTINGS = SimpleNamespace(reply_backoff_base_s=60.0, reply_backoff_cap_s=21_600.0, reply_max_attempts=8,
                           wechat_app_id="wx-default", wecom_corp_id="corp", dingtalk_app_key="ding")
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


@given(attempt=st.integers(1, 60), draw=st.floats(0, 1, exclude_max=True))
def test_backoff_is_full_jitter_within_the_exponential_ceiling(attempt, draw) -> None:
    delay = service.backoff_s(attempt, base_s=60, cap_s=21_600, draw=lambda: draw)
    ceiling = min(21_600, 60 * 4 ** (attempt - 1))
    assert 1.0 <= delay <= max(1.0, ceiling)


def test_eight_attempts_span_at_most_about_a_day() -> None:
    worst = sum(service.backoff_s(n, base_s=60, cap_s=21_600, draw=lambda: 0.9999) for n in range(1, 8))
    assert 12 * 3600 < worst < 24 * 3600


@pytest.mark.parametrize(("kind", "outcome", "attempt", "status", "retry"), [
    ("reply", "sent", 1, "sent", False),
    ("reply", "permanent", 1, "failed", False),
    ("reply", "undeliverable", 1, "undeliverable", False),
    ("reply", "transient", 1, "queued", True),
    ("reply", "transient", 7, "queued", True),
    ("reply", "transient", 8, "failed", False),  # the budget is used up: dead, retryable by hand
    ("webhook", "transient", 1, "queued", True),
    ("webhook", "permanent", 3, "failed", False),
])
def test_after_attempt(kind, outcome, attempt, status, retry) -> None:
    got, next_at = service.after_attempt(kind=kind, outcome=outcome, attempt=attempt, max_attempts=8,
                                         retry_after=None, now=NOW, settings=SETTINGS, draw=lambda: 0.5)
    assert got == status
    assert (next_at is not None) == retry
    if retry:
        assert next_at > NOW


def test_retry_after_lengthens_the_wait_up_to_the_cap() -> None:
    _, next_at = service.after_attempt(kind="reply", outcome="transient", attempt=1, max_attempts=8,
                                       retry_after=600, now=NOW, settings=SETTINGS, draw=lambda: 0.0)
    assert next_at == NOW + timedelta(seconds=600)
    _, capped = service.after_attempt(kind="reply", outcome="transient", attempt=1, max_attempts=8,
                                      retry_after=10**9, now=NOW, settings=SETTINGS, draw=lambda: 0.0)
    assert capped == NOW + timedelta(seconds=21_600)


def test_webhooks_follow_the_standard_webhooks_schedule() -> None:
    _, next_at = service.after_attempt(kind="webhook", outcome="transient", attempt=2, max_attempts=8,
                                       retry_after=None, now=NOW, settings=SETTINGS, draw=lambda: 0.0)
    assert next_at == NOW + timedelta(seconds=schedule.RETRY_SCHEDULE_S[2])


def test_token_bucket() -> None:
    clock = [0.0]
    bucket = TokenBucket(2.0, 3, clock=lambda: clock[0])
    assert [bucket.reserve() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.reserve() == pytest.approx(0.5)  # the 4th waits for half a second's refill
    assert bucket.reserve() == pytest.approx(1.0)
    clock[0] = 10.0
    assert bucket.reserve() == 0.0  # refilled, up to the burst


@pytest.mark.parametrize(("channel", "email", "route", "expected"), [
    ("email", "a@x.test", {}, "email"),
    ("web", "a@x.test", {}, "email"),
    ("phone", None, {"to": "b@x.test"}, "email"),
    ("phone", None, {}, "phone"),  # no address: stays on its channel, undeliverable there
    ("wechat", "a@x.test", {"openid": "o"}, "wechat"),
])
def test_answer_channel(channel, email, route, expected) -> None:
    assert service.answer_channel(channel, recipient_email=email, route=route) == expected


def test_destinations() -> None:
    assert service.destination_of("email", {}, settings=SETTINGS) == "smtp"
    assert service.destination_of("wechat", {"app_id": "wx1"}, settings=SETTINGS) == "wechat:wx1"
    assert service.destination_of("wechat", {}, settings=SETTINGS) == "wechat:wx-default"
    assert service.destination_of("dingtalk", {}, settings=SETTINGS) == "dingtalk:ding"


def test_reply_message_from_a_row() -> None:
    delivery_id = uuid.uuid4()
    row = {"id": delivery_id, "kind": "reply", "channel": "email", "payload": {
        "subject": "Hi", "number": 3, "body_text": "text", "route": {"to": ["a@x.test"]},
        "recipient": {"email": "a@x.test"}, "email_message_id": "<m@x>", "in_reply_to": "<c@x>",
        "references": ["<c@x>"]}}
    message = reply_message(row, [])
    assert message.delivery_id == delivery_id and message.extra["number"] == 3
    assert message.email_message_id == "<m@x>" and message.references == ("<c@x>",)
    assert message.automatic is False


@pytest.mark.parametrize(("url", "refused"), [
    ("http://127.0.0.1:8080/hook", False),
    ("http://[::1]/hook", True),  # not in the allow-list below
    ("http://8.8.8.8/hook", True),  # public: never in a closed stack
    ("https://example.com/hook", True),  # a name would need DNS
    ("ftp://127.0.0.1/", True),
])
def test_allowlist_only_egress(url, refused) -> None:
    from notify_svc.deliveries.webhook_sender import allowlist_only_refusal
    from notify_svc.egress import parse_allow_networks

    assert (allowlist_only_refusal(url, parse_allow_networks("127.0.0.1/32")) is not None) is refused


@pytest.mark.parametrize(("kind", "event_type", "offered"), [
    ("reply", "delivery.succeeded", True),
    ("notification", "delivery.failed", True),
    ("webhook", "delivery.succeeded", False),  # a webhook reporting on itself would never end
    ("webhook", "delivery.deferred", False),
])
def test_which_delivery_reports_are_offered_to_webhooks(kind, event_type, offered) -> None:
    from helpdesk_common import events

    data = events.DeliveryStatusData(delivery_id=uuid.uuid4(), kind=kind, channel="email", status="sent",
                                     attempts=1, at=NOW)
    cls = {"delivery.succeeded": events.DeliverySucceeded, "delivery.failed": events.DeliveryFailed,
           "delivery.deferred": events.DeliveryDeferred}[event_type]
    assert service.offered_to_webhooks(cls(source="notify-svc", subject="x", data=data)) is offered


async def test_webhook_routing_narrows_the_handlers_in_place() -> None:
    from notify_svc.deliveries import handlers as delivery_handlers

    routing = delivery_handlers.WebhookRouting()
    held = routing.handlers  # what the consumer holds
    assert "ticket.created" in held and "ticket.reply_requested" not in held  # everything, before a refresh

    class Conn:
        def __init__(self, types):
            self.types = types

        async def fetch(self, sql):
            return [{"t": t} for t in self.types]

    await routing.refresh(Conn({"ticket.created", "sla.breached", "ticket.reply_requested", "no.such"}))
    assert routing.handlers is held and set(held) == {"ticket.created", "sla.breached"}
    await routing.refresh(Conn(set()))
    assert held == {}


@pytest.mark.parametrize(("kind", "outcome", "code", "verdict"), [
    ("webhook", "sent", "204", "success"),
    ("webhook", "transient", "500", "failure"),
    ("webhook", "transient", "302", "failure"),  # redirects are never followed
    ("webhook", "transient", "network", "failure"),  # no answer, a timeout
    ("webhook", "permanent", "refused", "failure"),  # the egress policy refused the address
    ("webhook", "permanent", "410", "gone"),
    ("webhook", "undeliverable", None, None),  # the subscription is gone or disabled: nothing tried
    ("webhook", "transient", None, None),  # no key to sign with, an internal error
    ("reply", "transient", "500", None),
    ("notification", "sent", None, None),
])
def test_endpoint_verdict(kind, outcome, code, verdict) -> None:
    assert service.endpoint_verdict(kind=kind, outcome=outcome, code=code) == verdict


@pytest.mark.parametrize(("status", "enabled", "expected"), [
    ("queued", True, "queued"),
    ("queued", False, "undeliverable"),
    ("queued", None, "undeliverable"),  # deleted
    ("failed", False, "failed"),  # a dead delivery keeps its own reason (the 410 that disabled it)
    ("sent", False, "sent"),
])
def test_a_delivery_of_a_disabled_subscription_waits_for_nothing(status, enabled, expected) -> None:
    next_at = NOW if status == "queued" else None
    got, got_next, reason = service.settle_for_subscription(status, next_at, "the receiver answered 500",
                                                            subscription_enabled=enabled)
    assert got == expected
    if expected == "undeliverable":
        assert got_next is None and reason in ("the webhook subscription is disabled",
                                               "the webhook subscription was deleted")
    else:
        assert (got_next, reason) == (next_at, "the receiver answered 500")


def test_only_replies_report_their_outcome() -> None:
    assert [k for k in ("reply", "notification", "webhook") if service.reports_status(k)] == ["reply"]


@pytest.mark.parametrize(("attempt", "max_attempts", "budget", "made"), [
    (1, 8, 8, 1), (7, 8, 8, 7),
    (9, 16, 8, 1),  # the first attempt after a manual retry or a replay of an 8-attempt row
    (10, 16, 8, 2),
    (3, 3, 8, 3),  # the budget setting was raised since the row was queued
    (5, 10, 3, 5),  # ... or lowered: queued with 10, never retried
])
def test_attempts_are_counted_from_the_start_of_their_budget(attempt, max_attempts, budget, made) -> None:
    assert service.attempts_in_budget(attempt, max_attempts=max_attempts, budget=budget) == made


def test_after_a_replay_the_webhook_schedule_starts_again() -> None:
    # 8 attempts used up, then a replay (max_attempts 16): its first retry waits 5 s, not 10 h
    _, next_at = service.after_attempt(kind="webhook", outcome="transient", attempt=9, max_attempts=16,
                                       retry_after=None, now=NOW, settings=SETTINGS, draw=lambda: 0.0)
    assert next_at == NOW + timedelta(seconds=5)
    _, next_at = service.after_attempt(kind="reply", outcome="transient", attempt=9, max_attempts=16,
                                       retry_after=None, now=NOW, settings=SETTINGS, draw=lambda: 0.5)
    assert next_at == NOW + timedelta(seconds=30)  # half of the first ceiling (60 s)


def test_the_disabled_event_carries_the_host_never_the_url() -> None:
    from helpdesk_common import events
    from notify_svc.webhooks import service as webhooks

    subscription_id = uuid.uuid4()
    event = webhooks.disabled_event(subscription_id=subscription_id, cause="failing", at=NOW,
                                    url="https://hooks.example.com:8443/in/tok_secret?key=also-secret",
                                    failing_since=NOW - timedelta(days=5))
    raw = events.encode(event)
    assert b"tok_secret" not in raw and b"also-secret" not in raw and b"8443" not in raw
    assert events.decode(raw) == event
    assert (event.subject, event.data.url_host, event.data.cause) == (str(subscription_id), "hooks.example.com",
                                                                      "failing")
    assert events.TOPIC_BY_TYPE[event.type] == events.DELIVERIES_TOPIC
    assert event.data.reason.startswith("failing since 2026-11-25T12:00:00Z")
    assert webhooks.url_host("http://[2001:db8::1]:80/x") == "2001:db8::1"
    assert webhooks.url_host("http://[not an address/") == "unknown"
