"""Long-poll waiters of chat visitors, woken by PostgreSQL NOTIFY.

A visitor's ``GET .../messages?wait=`` with nothing new parks on an ``asyncio.Event`` here
instead of polling the database. Migration 0009's trigger sends ``NOTIFY chat_messages,
'<conversation key>'`` when a public message of a chat ticket commits, on whichever replica
wrote it; one LISTEN connection per process sets the events of that conversation's waiters,
which then read once. While the LISTEN connection is down (database restart), waiters fall
back to reading every ``poll_s``, so a reply is late, never lost.

The number of parked requests per process is bounded (``max_waiters``): each one holds a
socket, a task and, through the gateway, an upstream connection; past the bound a visitor
is told 503 with ``Retry-After`` rather than the process running out of any of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
from prometheus_client import Counter, Gauge

from helpdesk_common.problems import Problem

log = logging.getLogger(__name__)

CHANNEL = "chat_messages"
VISITOR_WAITERS = Gauge("ticket_visitor_waiters", "Chat visitors' long-polls parked in this process")
VISITOR_WAITERS_REFUSED = Counter("ticket_visitor_waiters_refused_total",
                                  "Chat visitors' long-polls refused because the process had its maximum parked")


class ConversationWaiters:
    def __init__(self, *, dsn: str | None, max_waiters: int, channel: str = CHANNEL) -> None:
        self._dsn = dsn
        self._channel = channel
        self.max_waiters = max(0, max_waiters)
        self._waiters: dict[str, set[asyncio.Event]] = {}
        self._count = 0
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        #: True while the LISTEN connection is up (waiters then need no fallback reads)
        self.listening = False

    @property
    def count(self) -> int:
        return self._count

    @contextlib.asynccontextmanager
    async def waiting(self, conversation_key: str) -> AsyncIterator[asyncio.Event]:
        """An event set when the conversation may have something new; 503 past the bound."""
        if self._count >= self.max_waiters:
            VISITOR_WAITERS_REFUSED.inc()
            raise Problem(503, "busy", "Busy", "Too many visitors are waiting; retry in a moment.",
                          headers={"Retry-After": "2"})
        event = asyncio.Event()
        self._waiters.setdefault(conversation_key, set()).add(event)
        self._count += 1
        VISITOR_WAITERS.inc()
        try:
            yield event
        finally:
            self._count -= 1
            VISITOR_WAITERS.dec()
            waiters = self._waiters.get(conversation_key)
            if waiters is not None:
                waiters.discard(event)
                if not waiters:
                    del self._waiters[conversation_key]

    def wake(self, conversation_key: str) -> None:
        for event in self._waiters.get(conversation_key, ()):
            event.set()

    def wake_all(self) -> None:
        for waiters in self._waiters.values():
            for event in waiters:
                event.set()

    def _on_notify(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        self.wake(payload)

    async def start(self) -> None:
        if self._dsn is not None:
            self._task = asyncio.create_task(self._listen_loop(), name="visitor-listen")

    async def stop(self) -> None:
        self._closing = True
        self.wake_all()  # parked requests answer what they have rather than hold the shutdown
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _listen_loop(self) -> None:
        """One dedicated connection; reconnects with backoff and wakes everyone after a gap
        (a message may have committed while nobody listened)."""
        backoff = 0.2
        while not self._closing:
            conn = None
            try:
                conn = await asyncpg.connect(self._dsn, timeout=5)
                lost = asyncio.Event()
                conn.add_termination_listener(lambda _c: lost.set())
                await conn.add_listener(self._channel, self._on_notify)
                self.listening = True
                self.wake_all()
                backoff = 0.2
                while not lost.is_set():
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(15):
                            await lost.wait()
                    if not lost.is_set():  # a half-open socket only shows when used
                        async with asyncio.timeout(5):
                            await conn.fetchval("SELECT 1")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("visitor LISTEN connection lost", extra={"error": repr(exc)})
            finally:
                self.listening = False
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(conn.close(), 2)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 5.0)
