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

from helpdesk_common.consumer import compose_handlers as compose

Handler = Callable[[Any, Any], Awaitable[None]]

__all__ = ["EventRouting", "compose"]


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
