"""The two one-write protocols ``bench/http_writes.py`` compares with uvicorn's httptools
protocol (an experiment of round 19, left out of the services: both cost more CPU per request).

- ``HeldHeadProtocol``: a response cycle whose ``send`` keeps the head uvicorn writes for
  ``http.response.start`` and writes it with the first body chunk (uvicorn's own ``send`` runs
  with the cycle's transport swapped for the two calls; a chunked or HEAD answer is not held);
- ``CoalescingHttpToolsProtocol``: every ``write`` of one event-loop pass joined and written at
  the pass's end (``loop.call_soon``); closing writes what is held first.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle


class _Holding:
    """Stands in for the transport while uvicorn writes a head: keeps it."""

    __slots__ = ("transport", "data")

    def __init__(self, transport: Any) -> None:
        self.transport, self.data = transport, None

    def write(self, data: bytes) -> None:
        self.data = data

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)


class _Prefixing:
    """Stands in for the transport while uvicorn writes a body: the held head goes first."""

    __slots__ = ("transport", "head")

    def __init__(self, transport: Any, head: bytes) -> None:
        self.transport, self.head = transport, head

    def write(self, data: bytes) -> None:
        head, self.head = self.head, None
        self.transport.write(head + data if head else data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)


class _HeldHeadCycle(RequestResponseCycle):
    _head: bytes | None = None

    async def send(self, message: Any) -> None:
        if self.flow.write_paused and not self.disconnected:
            await self.flow.drain()  # before the swaps: uvicorn's send then never waits inside them
        if message["type"] == "http.response.start":
            if self.response_started or self.scope["method"] == "HEAD":
                await super().send(message)
                return
            real = self.transport
            holding = self.transport = _Holding(real)
            try:
                await super().send(message)
            finally:
                self.transport = real
            if self.chunked_encoding:
                if holding.data:
                    real.write(holding.data)
            else:
                self._head = holding.data
            return
        head, self._head = self._head, None
        if head is None:
            await super().send(message)
            return
        real = self.transport
        self.transport = _Prefixing(real, head)
        try:
            await super().send(message)
        finally:
            self.transport = real


class HeldHeadProtocol(HttpToolsProtocol):
    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        self.cycle.__class__ = _HeldHeadCycle  # before its task first runs and binds send


class CoalescingTransport:
    """A transport whose writes in one pass of the loop reach the socket as one write."""

    __slots__ = ("_transport", "_loop", "_held")

    def __init__(self, transport: Any, loop: asyncio.AbstractEventLoop) -> None:
        self._transport, self._loop, self._held = transport, loop, None

    def write(self, data: bytes) -> None:
        if not data:
            return
        if self._held is None:
            self._held = [data]
            self._loop.call_soon(self.flush)
        else:
            self._held.append(data)

    def flush(self) -> None:
        held, self._held = self._held, None
        if held and not self._transport.is_closing():
            self._transport.write(held[0] if len(held) == 1 else b"".join(held))

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    def connection_made(self, transport: Any) -> None:  # type: ignore[override]
        super().connection_made(CoalescingTransport(transport, self.loop))  # type: ignore[arg-type]
