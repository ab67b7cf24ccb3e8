"""notify-svc SIGKILLed in the middle of 500 e-mail replies: every reply still reaches the
customer, and the only harm is duplicates that carry the same Message-ID.

The promise measured (docs/deliveries.md "A crash between send and record resends, with the same
id"): a dispatcher that dies after the SMTP server accepted a message and before its record
committed leaves the row ``sending``; once its lease expires another dispatcher sends it again
with the Message-ID ticket-svc minted for that reply. So: at least once, and a duplicate is
recognisable as one. The test prints ``delivered D/500, duplicates N`` (capture disabled, so it
shows in ``make test``); docs/deliveries.md "Measured" quotes it.

notify-svc runs here with a 10 s lease (NOTIFY_DISPATCHER_LEASE_S) instead of 120 s, so the
killed replica's claims come back within the test's time; afterwards it is restarted with the
stack's own settings, healthy for the tests that follow."""

from __future__ import annotations

import asyncio
import email.parser
import email.policy
import json
import time
import uuid
from collections import Counter, defaultdict

import pytest

from .test_outbound_email import customer_mail

pytestmark = pytest.mark.timeout(300)

REPLIES = 500
TICKETS = 10
POST_CONCURRENCY = 16
#: SIGKILL once this many of our replies arrived (deliveries are then in full flow)
KILL_AFTER = 120
BOUND_S = 180.0
LEASE_ENV = {"NOTIFY_DISPATCHER_LEASE_S": "10"}

_headers_only = email.parser.BytesHeaderParser(policy=email.policy.default)


@pytest.fixture
def short_lease_notify(stack):
    """notify-svc restarted with a short lease; back to the stack's settings afterwards, whatever
    happened (it may be dead: the test kills it)."""
    stack.stop_service("notify-svc")
    stack.start_service("notify-svc", extra_env=LEASE_ENV)
    stack.wait_service("notify-svc")
    try:
        yield
    finally:
        stack.stop_service("notify-svc")
        stack.start_services(["notify-svc"])


def _received(sink, senders: set[str]) -> list[str]:
    """The Message-IDs (without angle brackets) of the replies sent to ``senders``, one per mail
    received, duplicates included; automatic notifications (acknowledgements) left out."""
    ids = []
    for rcpts, raw in list(sink.messages):
        if not senders.intersection(rcpts):
            continue
        headers = _headers_only.parsebytes(raw)
        if headers["Auto-Submitted"] is not None:
            continue
        ids.append(str(headers["Message-ID"]).strip().strip("<>"))
    return ids


async def test_sigkill_mid_burst_delivers_every_reply_with_duplicates_of_the_same_id(
        gw, stack, smtp_sink, email_key_headers, admin_headers, sql, report, short_lease_notify):
    started = time.monotonic()
    run = uuid.uuid4().hex[:8]
    senders = [f"crash.{run}.{i}@example.com" for i in range(TICKETS)]
    headers = {**email_key_headers, "Content-Type": "message/rfc822"}
    tickets = []
    for i, sender in enumerate(senders):
        r = await gw.post("/v1/channels/email/inbound", headers=headers, content=customer_mail(
            f"{uuid.uuid4()}@mail.example.com", sender, subject=f"Crash test {run} #{i}", body="请尽快回复。"))
        assert r.status_code == 201, r.text
        tickets.append(r.json()["ticket_id"])

    # 500 public replies, 16 at a time; a 429 of the gateway's per-user limit is waited out
    message_ids: list[str] = []
    limit = asyncio.Semaphore(POST_CONCURRENCY)

    async def post(n: int) -> None:
        ticket_id = tickets[n % TICKETS]
        async with limit:
            while True:
                r = await gw.post(f"/v1/tickets/{ticket_id}/messages", headers=admin_headers,
                                  json={"body": f"第 {n} 条回复 / reply {n} ({run})"})
                if r.status_code != 429:
                    break
                await asyncio.sleep(min(5.0, float(r.headers.get("retry-after") or 1)))
            assert r.status_code == 201, r.text
            message_ids.append(r.json()["id"])

    posting = asyncio.gather(*(post(n) for n in range(REPLIES)))
    sender_set = set(senders)
    try:
        while len(_received(smtp_sink, sender_set)) < KILL_AFTER:
            assert time.monotonic() - started < BOUND_S, "deliveries never got going"
            await asyncio.sleep(0.1)
        stack.stop_service("notify-svc", kill=True)  # SIGKILL: no graceful hand-back of claims
        killed_at = len(_received(smtp_sink, sender_set))
    finally:
        await posting  # replies posted while notify-svc is down wait in ticket-svc's outbox / Kafka
    assert len(message_ids) == REPLIES
    stack.start_service("notify-svc", extra_env=LEASE_ENV)
    stack.wait_service("notify-svc")

    # the Message-ID ticket-svc minted for each reply: what must arrive
    rows = await sql("ticket-svc", "SELECT json_object_agg(id::text, email_message_id) FROM messages "
                                   "WHERE id::text = ANY(:ids)", ids=message_ids)
    rows = json.loads(rows) if isinstance(rows, str) else rows  # asyncpg hands json over as text
    expected = {str(v).strip("<>") for v in (rows or {}).values() if v}
    assert len(expected) == REPLIES, len(expected)

    while not expected.issubset(_received(smtp_sink, sender_set)):
        assert time.monotonic() - started < BOUND_S, (
            f"{len(expected - set(_received(smtp_sink, sender_set)))} replies not delivered in {BOUND_S:.0f} s")
        await asyncio.sleep(0.5)

    received = _received(smtp_sink, sender_set)
    counts = Counter(received)
    assert set(counts) == expected  # nothing but our replies, each at least once
    duplicates = sum(c - 1 for c in counts.values())
    # a duplicate is the same mail again: same Message-ID and the same reply text
    bodies: dict[str, set[str]] = defaultdict(set)
    for rcpts, raw in list(smtp_sink.messages):
        if sender_set.intersection(rcpts):
            parsed = email.message_from_bytes(raw, policy=email.policy.default)
            if parsed["Auto-Submitted"] is None:
                bodies[str(parsed["Message-ID"]).strip("<>")].add(parsed.get_body(("plain",)).get_content())
    assert all(len(texts) == 1 for texts in bodies.values())

    # every delivery recorded as sent in the end; the ones the killed replica had claimed show a
    # second attempt (claimed again once their lease expired)
    async def unsettled() -> int:
        return await sql("notify-svc", "SELECT count(*) FROM deliveries WHERE kind = 'reply' "
                                       "AND message_id::text = ANY(:ids) AND status <> 'sent'", ids=message_ids)

    while await unsettled():
        assert time.monotonic() - started < BOUND_S, "deliveries not all recorded as sent"
        await asyncio.sleep(0.5)
    reclaimed = await sql("notify-svc", "SELECT count(*) FROM deliveries WHERE kind = 'reply' "
                                        "AND message_id::text = ANY(:ids) AND attempts > 1", ids=message_ids)

    report(f"[notify-svc SIGKILL after {killed_at} replies arrived] delivered {len(counts)}/{REPLIES}, "
          f"duplicates {duplicates} ({sum(1 for c in counts.values() if c > 1)} replies sent twice or more; "
          f"{reclaimed} claims of the killed process re-sent after the lease), "
          f"{time.monotonic() - started:.1f} s")
