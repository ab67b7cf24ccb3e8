"""The dispatcher: sends due deliveries through the channel adapters and records what happened.

One loop per replica. Each turn it claims due rows (``repository.claim_due``: ``FOR UPDATE SKIP
LOCKED`` and a lease, committed at once), sends each *outside* any transaction through the
adapter of its channel, then records, in one transaction, the attempt, the row's new status,
for a reply the ``delivery.*`` event for ticket-svc (outbox), and for a webhook what the answer
means for its subscription (``failing_since``; disabled after a 410 or 5 days of failures, with
``webhook.disabled``). Several replicas are safe: a row is claimed by
one of them, and a claim expires only after ``NOTIFY_DISPATCHER_LEASE_S``.

**A crash between send and record resends, with the same id.** If the process dies after the
provider accepted a message and before the record commits, the row stays ``sending`` until its
lease expires; then any dispatcher claims it again and sends it again, carrying the same delivery
id (the e-mail's ``Message-ID`` from ticket-svc, a webhook's ``webhook-id``) so the receiver, or a
person, can recognise the duplicate. Delivery is at least once, exactly once in normal operation.

Limits, per replica: ``NOTIFY_DISPATCHER_CONCURRENCY`` sends in flight in all, at most
``NOTIFY_DESTINATION_CONCURRENCY`` per destination (one SMTP server, one WeChat app...), and a
token bucket per destination (``NOTIFY_DESTINATION_RATE_PER_S``, ``NOTIFY_DESTINATION_BURST``). A
row whose destination is over its rate for more than a couple of seconds is given back (no
attempt counted) with ``next_attempt_at`` at the time a token will be there.

Most rows are never claimed here: while this dispatcher has room, the consumer of its process
inserts the rows it queues already claimed and hands them over once its transaction has
committed (handoff.py), which spares each delivery the claim's transaction. A row inserted
``queued`` (no room, held for a restricted customer, queued by the API or another replica, a due
retry) is sent within about a second: the consumer wakes the dispatcher of its process right
after it queued one (``wake_all``), a dispatcher that was full looks again as its sends finish,
and every dispatcher also polls (``NOTIFY_DISPATCHER_POLL_INTERVAL_S``).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

from helpdesk_common.outbox import enqueue_raw

from ..channels.base import Adapter, Attachment, OutboundMessage, SendResult
from . import repository, service
from .handoff import RUNNING, wake_all  # noqa: F401  (wake_all: the API wakes the dispatchers after a retry)

log = logging.getLogger(__name__)

DELIVERIES = Counter("notify_deliveries_total", "Delivery attempts by channel, kind and outcome",
                     ["channel", "kind", "outcome"])
ATTEMPT_SECONDS = Histogram("notify_delivery_attempt_seconds", "Time of one delivery attempt (the adapter's send)",
                            ["channel"], buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60))
BACKLOG = Gauge("notify_delivery_backlog", "Deliveries queued or in flight (all replicas)")

#: a row the consumer's transaction held for more than this share of its lease is given back
_MAX_HELD_SHARE = 0.1
#: rows a dispatcher takes from its consumer: this many times its concurrency (sends, rows
#: waiting for a send slot, reservations)
_HANDOFF_FACTOR = 4
#: a destination this far over its rate gives the row back instead of holding its lease
_MAX_RATE_WAIT_S = 2.0
_BACKLOG_EVERY_S = 5.0
_MAX_ERROR = 500

AttachmentFetcher = Callable[[Mapping[str, Any]], Awaitable[Attachment]]


class TokenBucket:
    """``rate`` tokens a second, at most ``burst`` saved up."""

    def __init__(self, rate: float, burst: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.tokens = float(burst)
        self._clock = clock
        self._at = clock()

    def reserve(self) -> float:
        """Take a token; the seconds to wait before using it (0: now). The token is taken even
        when the caller must wait, so waiting callers queue up in order."""
        now = self._clock()
        self.tokens = min(self.burst, self.tokens + (now - self._at) * self.rate)
        self._at = now
        self.tokens -= 1.0
        return 0.0 if self.tokens >= 0 else -self.tokens / self.rate

    def give_back(self) -> None:
        self.tokens = min(self.burst, self.tokens + 1.0)


class Destination:
    def __init__(self, *, concurrency: int, rate: float, burst: int) -> None:
        self.slots = asyncio.Semaphore(concurrency)
        self.bucket = TokenBucket(rate, burst)


#: deliveries whose payload is a message (a reply's fields), sent by a channel adapter
MESSAGE_KINDS = ("reply", "notification", "survey", "confirmation")
#: the ones nobody wrote by hand: e-mail says ``Auto-Submitted: auto-generated``
AUTOMATIC_KINDS = ("notification", "survey", "confirmation")


def reply_message(row: Mapping[str, Any], attachments: list[Attachment]) -> OutboundMessage:
    """What an adapter sends for a reply row (its payload is ``TicketReplyRequestedData``); a
    notification's, a survey's and a confirmation request's payloads have the same fields."""
    payload = row["payload"]
    recipient = payload.get("recipient") or {}
    return OutboundMessage(
        delivery_id=row["id"], channel=row["channel"], route=payload.get("route") or {},
        body_text=payload.get("body_text") or "", body_html=payload.get("body_html"),
        subject=payload.get("subject"), language=payload.get("language"), attachments=tuple(attachments),
        email_message_id=payload.get("email_message_id"), in_reply_to=payload.get("in_reply_to"),
        references=tuple(payload.get("references") or ()), automatic=row["kind"] in AUTOMATIC_KINDS,
        extra={"number": payload.get("number"), "recipient_email": recipient.get("email"),
               "ticket_id": payload.get("ticket_id"), "author_name": payload.get("author_name")},
    )


class AttachmentError(Exception):
    """An attachment could not be fetched from ticket-svc (retried: ticket-svc may be down)."""


class AttachmentUnavailable(Exception):
    """An attachment that can never be fetched (no capability URL: ticket-svc has no
    TICKET_ATTACHMENT_URL_KEY): the reply fails rather than going out without its file."""


def ticket_attachment_fetcher(base_url: str, *, max_bytes: int, timeout_s: float = 30.0
                              ) -> tuple[AttachmentFetcher, Callable[[], Awaitable[None]]]:
    """(fetch, close): fetch one attachment of a reply from ticket-svc (``base_url + url``; the
    URL carries ticket-svc's capability token for that file), at most ``max_bytes``. Internal
    traffic to our own service, not through the egress policy."""
    import aiohttp

    session: aiohttp.ClientSession | None = None

    async def fetch(ref: Mapping[str, Any]) -> Attachment:
        nonlocal session
        url = ref.get("url")
        if not isinstance(url, str) or not url.startswith("/"):
            raise AttachmentUnavailable(f"attachment {ref.get('filename')!r} has no URL on ticket-svc "
                                        "(is TICKET_ATTACHMENT_URL_KEY configured?)")
        if session is None or session.closed:
            session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_s))
        try:
            async with session.get(base_url.rstrip("/") + url, allow_redirects=False) as response:
                if response.status != 200:
                    raise AttachmentError(f"ticket-svc answered {response.status} for attachment "
                                          f"{ref.get('filename')!r}")
                content = await response.content.read(max_bytes + 1)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise AttachmentError(f"cannot fetch attachment {ref.get('filename')!r}: {type(exc).__name__}") from exc
        if len(content) > max_bytes:
            raise AttachmentError(f"attachment {ref.get('filename')!r} is larger than {max_bytes} bytes")
        return Attachment(filename=str(ref.get("filename") or "attachment"),
                          content_type=str(ref.get("content_type") or "application/octet-stream"), content=content)

    async def close() -> None:
        if session is not None:
            await session.close()

    return fetch, close


class Dispatcher:
    def __init__(self, *, runtime: Any, settings: Any, adapters: Mapping[str, Adapter],
                 fetch_attachment: AttachmentFetcher | None = None) -> None:
        self._runtime = runtime
        self._settings = settings
        self._adapters = dict(adapters)
        self._fetch_attachment = fetch_attachment
        self._wakeup = asyncio.Event()
        self._stopping = False
        self._in_flight: set[asyncio.Task] = set()
        self._destinations: dict[str, Destination] = {}
        self._backlog_at = 0.0
        #: slots promised to rows a consumer transaction is claiming (handoff.py)
        self._reserved = 0
        #: rows handed over while every send slot was taken: (row, when claimed, monotonic)
        self._waiting: collections.deque[tuple[Any, float]] = collections.deque()
        #: due rows may be waiting for room: look again as soon as a send finishes
        self._behind = False

    # ---- control ---------------------------------------------------------------------------------
    def wake(self) -> None:
        self._behind = True
        self._wakeup.set()
        loop = asyncio.get_running_loop()
        # the row may not be committed yet: look again shortly after
        loop.call_later(0.05, self._wakeup.set)
        loop.call_later(0.3, self._wakeup.set)

    async def run(self) -> None:
        RUNNING.add(self)
        try:
            while not self._stopping:
                try:
                    claimed = await self._turn()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # the database is away: keep trying, quietly
                    log.warning("dispatcher turn failed", extra={"error": repr(exc)})
                    claimed = 0
                    await asyncio.sleep(1.0)
                await self._update_backlog()
                if claimed and self._room() > 0 and self._behind:
                    continue  # there may be more due rows
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), self._settings.dispatcher_poll_interval_s)
                self._wakeup.clear()
        finally:
            RUNNING.discard(self)

    async def stop(self, *, grace_s: float = 10.0) -> None:
        """Stop claiming; let the sends in flight finish and record (their leases would otherwise
        have to expire before anyone resent them), within ``grace_s``."""
        self._stopping = True
        self._wakeup.set()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace_s
        # rows a consumer transaction is still claiming come to ``start`` (and are given back)
        # when it ends, a moment from now; no new slot is reserved once stopping
        while self._reserved and loop.time() < deadline:
            await asyncio.sleep(0.01)
        while self._waiting:  # handed over, not started: back to the queue
            self._give_back_later(self._waiting.popleft()[0])
        if self._in_flight:
            await asyncio.wait(list(self._in_flight), timeout=max(0.0, deadline - loop.time()))
        for task in list(self._in_flight):
            task.cancel()
        await asyncio.gather(*self._in_flight, return_exceptions=True)

    # ---- rows claimed by the consumer (handoff.py) ------------------------------------------------
    def _room(self) -> int:
        """Send slots free for the claim: what handed-over rows hold or will hold is taken."""
        return (self._settings.dispatcher_concurrency - len(self._in_flight) - self._reserved
                - len(self._waiting))

    def reserve(self) -> float | None:
        """A slot for a row the consumer is about to insert claimed: the lease to give it, or
        None when this dispatcher already holds ``_HANDOFF_FACTOR`` times its concurrency in
        sends, rows waiting for a send slot and reservations (the row is queued and claimed
        later). A consumer transaction folds a whole fetched batch, often more events than the
        dispatcher has send slots: rows beyond them wait here, in order, for a slot."""
        held = len(self._in_flight) + self._reserved + len(self._waiting)
        if self._stopping or held >= self._settings.dispatcher_concurrency * _HANDOFF_FACTOR:
            self._behind = True
            return None
        self._reserved += 1
        return self._settings.dispatcher_lease_s

    def unreserve(self) -> None:
        self._reserved = max(0, self._reserved - 1)

    def start(self, row: Any, *, held_s: float = 0.0) -> None:
        """Send a row the consumer claimed ``held_s`` seconds ago (its transaction has committed)
        in its reserved slot; once stopping, or when the transaction held it for more than a
        tenth of its lease, give it back instead (queued, due now) for whichever dispatcher claims
        next: an attempt may take 0.8 of a lease (``_send``), and must end before the lease does,
        or another claim would send the message too. Measured on this process's clock."""
        self.unreserve()
        if self._stopping or held_s > self._settings.dispatcher_lease_s * _MAX_HELD_SHARE:
            self._give_back_later(row)
        elif len(self._in_flight) < self._settings.dispatcher_concurrency and not self._waiting:
            self._launch(row)
        else:
            self._waiting.append((row, time.monotonic() - held_s))

    def _give_back_later(self, row: Any) -> None:
        task = asyncio.create_task(self._give_back(row), name=f"delivery-back-{row['id']}")
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)

    def _start_waiting(self) -> None:
        """Start handed-over rows as send slots free up; one held past a tenth of its lease goes
        back to the queue (``start``)."""
        limit = self._settings.dispatcher_lease_s * _MAX_HELD_SHARE
        while self._waiting and len(self._in_flight) < self._settings.dispatcher_concurrency:
            row, claimed_at = self._waiting.popleft()
            if self._stopping or time.monotonic() - claimed_at > limit:
                self._give_back_later(row)
            else:
                self._launch(row)

    async def _give_back(self, row: Any) -> None:
        """Best effort: if the pool is closing, the row's lease expires and it is claimed then."""
        with contextlib.suppress(Exception):
            async with self._runtime.raw_transaction() as conn:
                await repository.release(conn, row["id"], attempt=row["attempts"], not_before=datetime.now(UTC))
            if not self._stopping:
                self.wake()

    # ---- one turn --------------------------------------------------------------------------------
    async def _turn(self) -> int:
        room = self._room()
        if room <= 0:
            return 0
        async with self._runtime.raw_transaction() as conn:
            rows = await repository.claim_due(conn, limit=room, lease_s=self._settings.dispatcher_lease_s)
        # a full claim may have left due rows behind; a partial one took every due row there was
        self._behind = len(rows) >= room
        for row in rows:
            self._launch(row)
        return len(rows)

    def _launch(self, row: Any) -> None:
        task = asyncio.create_task(self._deliver(row), name=f"delivery-{row['id']}")
        self._in_flight.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task) -> None:
        self._in_flight.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("delivery task failed", extra={"error": repr(task.exception())})
        self._start_waiting()
        if self._behind or self._stopping:
            self._wakeup.set()  # room for another claim

    def _destination(self, key: str) -> Destination:
        found = self._destinations.get(key)
        if found is None:
            found = Destination(concurrency=self._settings.destination_concurrency,
                                rate=self._settings.destination_rate_per_s, burst=self._settings.destination_burst)
            self._destinations[key] = found
        return found

    async def _deliver(self, row: Any) -> None:
        destination = self._destination(row["destination"])
        wait = destination.bucket.reserve()
        if wait > _MAX_RATE_WAIT_S:
            destination.bucket.give_back()
            async with self._runtime.raw_transaction() as conn:
                await repository.release(conn, row["id"], attempt=row["attempts"],
                                         not_before=datetime.now(UTC) + timedelta(seconds=wait))
            return
        if wait > 0:
            await asyncio.sleep(wait)
        async with destination.slots:
            started_at = datetime.now(UTC)
            started = time.perf_counter()
            result = await self._send(row)
            elapsed = time.perf_counter() - started
        ATTEMPT_SECONDS.labels(row["channel"]).observe(elapsed)
        DELIVERIES.labels(row["channel"], row["kind"], result.outcome).inc()
        await self._record(row, result, started_at=started_at, duration_ms=elapsed * 1000.0)

    async def _send(self, row: Any) -> SendResult:
        """One attempt; never raises (an adapter's bug is a transient failure, logged)."""
        adapter = self._adapters.get(row["channel"])
        if adapter is None:
            return SendResult("undeliverable", reason=f"no outbound adapter for the {row['channel']!r} channel")
        try:
            if row["kind"] in MESSAGE_KINDS:
                attachments: list[Attachment] = []
                refs = row["payload"].get("attachments") or []
                if refs and row["channel"] == "email":
                    if self._fetch_attachment is None:
                        return SendResult("permanent", reason="attachments cannot be fetched (no ticket-svc URL)")
                    try:
                        attachments = [await self._fetch_attachment(ref) for ref in refs]
                    except AttachmentError as exc:
                        return SendResult("transient", reason=str(exc)[:_MAX_ERROR])
                    except AttachmentUnavailable as exc:
                        return SendResult("permanent", reason=str(exc)[:_MAX_ERROR])
                message = reply_message(row, attachments)
            else:
                message = OutboundMessage(delivery_id=row["id"], channel=row["channel"], route=row["payload"],
                                          body_text="", extra={"subscription_id": row["subscription_id"]})
            timeout = max(1.0, self._settings.dispatcher_lease_s * 0.8)
            return await asyncio.wait_for(adapter.send(message), timeout)
        except TimeoutError:
            return SendResult("transient", reason="the attempt took too long")
        except Exception as exc:
            log.exception("adapter error", extra={"delivery_id": str(row["id"]), "channel": row["channel"]})
            return SendResult("transient", reason=f"internal error: {type(exc).__name__}")

    async def _record(self, row: Any, result: SendResult, *, started_at: datetime, duration_ms: float) -> None:
        now = datetime.now(UTC)
        status, next_at = service.after_attempt(
            kind=row["kind"], outcome=result.outcome, attempt=row["attempts"], max_attempts=row["max_attempts"],
            retry_after=result.retry_after, now=now, settings=self._settings)
        reason = result.reason
        if status == "failed" and result.outcome == "transient":
            reason = f"gave up after {row['attempts']} attempts: {result.reason or 'transient failure'}"
        reason = reason[:service.MAX_REASON] if reason else None
        verdict = service.endpoint_verdict(kind=row["kind"], outcome=result.outcome, code=result.code)
        outbox = self._runtime.parts.outbox
        endpoint = verdict is not None and row["subscription_id"] is not None
        reports = service.reports_status(row["kind"])  # the kind never changes
        async with self._runtime.raw_session() as conn:
            # the delivery's row and its attempt's log entry are one statement: alone, it needs
            # no transaction (a notification's attempt, the common case: BEGIN and COMMIT were
            # two of its three round trips); a webhook's endpoint record or a reply's status
            # event is written with it in one
            async with conn.transaction() if endpoint or reports else contextlib.nullcontext():
                if endpoint:
                    # the subscription before the delivery row: the lock order of every writer of both
                    enabled = await service.note_endpoint_attempt(conn, subscription_id=row["subscription_id"],
                                                                  verdict=verdict, at=started_at, now=now, outbox=outbox)
                    status, next_at, reason = service.settle_for_subscription(status, next_at, reason,
                                                                              subscription_enabled=enabled)
                updated = await repository.finish(
                    conn, row["id"], attempt=row["attempts"], status=status, next_attempt_at=next_at,
                    reason=None if status == "sent" else reason, code=result.code, provider_id=result.provider_id,
                    logged=repository.Attempt(started_at=started_at, duration_ms=duration_ms, outcome=result.outcome,
                                              code=result.code, error=(result.reason or "")[:_MAX_ERROR] or None,
                                              trigger=row["next_trigger"]))
                if updated is not None and reports:
                    await enqueue_raw(conn, outbox, service.status_event(updated))
        if updated is None:
            log.warning("a delivery's claim was taken over before its attempt was recorded",
                        extra={"delivery_id": str(row["id"])})

    async def _update_backlog(self) -> None:
        now = time.monotonic()
        if now - self._backlog_at < _BACKLOG_EVERY_S:
            return
        self._backlog_at = now
        with contextlib.suppress(Exception):
            async with self._runtime.raw_connection() as conn:
                BACKLOG.set(await repository.backlog(conn))
