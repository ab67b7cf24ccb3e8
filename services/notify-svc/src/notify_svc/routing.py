"""notify-svc's one consumer: every event type it acts on, routed to the domains that want it.

notify-svc used to run three consumer groups (notifications, reply deliveries, webhook fan-out).
Each group long-polls every partition of its topics many times a second, and the embedded
broker pays for every partition of every poll even when nothing happens: the three groups
together polled 120 partitions where one group over all topics polls 72, and an event that both
a notification rule and a webhook subscription wanted was fetched, parsed and recorded in the
inbox twice. One group does each event once, in one transaction: the notification projections
and rules first, then the reply delivery, then the webhook fan-out.

The handler map is the very dict the consumer holds, changed in place on ``refresh`` (one
synchronous clear-and-update: the consumer never sees it half-done). A type no domain wants is
skipped by the consumer without parsing the record or writing an inbox row.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

Handler = Callable[[Any, Any], Awaitable[None]]


def compose(*maps: Mapping[str, Handler]) -> dict[str, Handler]:
    """One handler per event type, running every map's handler of that type in order (pure)."""
    chains: dict[str, list[Handler]] = {}
    for handlers in maps:
        for event_type, handler in handlers.items():
            chains.setdefault(event_type, []).append(handler)
    return {event_type: chain[0] if len(chain) == 1 else _chained(tuple(chain))
            for event_type, chain in chains.items()}


def _chained(chain: tuple[Handler, ...]) -> Handler:
    async def run_all(conn: Any, event: Any) -> None:
        for handler in chain:
            await handler(conn, event)

    return run_all


class EventRouting:
    """The fixed handlers (notifications, reply deliveries) plus the webhook fan-out, whose
    types follow the enabled subscriptions (``webhooks.refresh``)."""

    def __init__(self, fixed: Mapping[str, Handler], webhooks: Any) -> None:
        self._fixed = dict(fixed)
        self._webhooks = webhooks
        self.handlers: dict[str, Handler] = {}
        self._rebuild()

    def _rebuild(self) -> None:
        merged = compose(self._fixed, self._webhooks.handlers)
        self.handlers.clear()
        self.handlers.update(merged)

    async def refresh(self, conn: Any) -> None:
        await self._webhooks.refresh(conn)
        self._rebuild()
