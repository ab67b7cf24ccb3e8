"""A background step every few seconds for the life of a service (``ServiceParts.lifespan_hooks``).

Re-offers, sweeps and index passes all need the same loop: sleep an interval, run the step, log
a failure and go on (a database hiccup must not end the loop), stop cleanly when the app does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

log = logging.getLogger(__name__)


def periodic(name: str, interval_s: float, step: Callable[[Any], Awaitable[None]]):  # type: ignore[no-untyped-def]
    """A lifespan hook running ``await step(app)`` every ``interval_s`` seconds, the first time
    after one interval; ``interval_s <= 0`` runs nothing. A failing step is logged (with
    ``name``) and the loop goes on."""

    @contextlib.asynccontextmanager
    async def hook(app: Any) -> AsyncIterator[None]:
        if interval_s <= 0:
            yield
            return

        async def run() -> None:
            while True:
                await asyncio.sleep(interval_s)
                try:
                    await step(app)
                except asyncio.CancelledError:
                    raise
                except Exception:  # keep the loop alive across database hiccups
                    log.exception("%s failed", name)

        task = asyncio.create_task(run(), name=name)
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    return hook
