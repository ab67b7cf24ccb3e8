"""The ops listener: ``/metrics``, ``/healthz`` and ``/readyz`` on a port of their own.

The gateway's main port is the public one. Its counters name routes, principals' kinds, failure
rates and consumer lag, which tells an attacker what is used and when, so the gateway never answers
``/metrics`` there (a 404, as for any absent route) and Prometheus scrapes ``<PREFIX>OPS_PORT``
instead, a port the NetworkPolicy opens to the monitoring namespace only. The internal services may
use it too; without it they keep ``/metrics`` on their one port, behind the address check of
metrics_access.py.

It runs in the service's own process and event loop (a second uvicorn server started by the app's
lifespan), so it reads the very registry and runtime the main listener updates: one process, one
set of figures, two doors.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Iterator
from typing import Any

import uvicorn

log = logging.getLogger(__name__)


class _EmbeddedServer(uvicorn.Server):
    """A uvicorn server that leaves the process's signals alone: the main server owns them, and
    this one stops when the main app's lifespan ends."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class OpsListener:
    """Serves ``app`` (app.py builds it: the health router, the problem handlers and the main app's
    ``state``) on ``host:port``."""

    def __init__(self, *, app: Any, host: str, port: int) -> None:
        self.server = _EmbeddedServer(uvicorn.Config(
            app, host=host, port=port, lifespan="off", log_config=None, access_log=False,
            server_header=False, date_header=False,
        ))
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Bound here rather than by uvicorn, which answers a taken port with ``sys.exit`` from
        inside its task (a SystemExit the event loop re-raises): a taken or refused port is an
        ``OSError`` of the app's start-up instead, which fails it naming the address."""
        config = self.server.config
        family = socket.AF_INET6 if ":" in config.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((config.host, config.port))
            sock.listen(config.backlog)
        except OSError:
            sock.close()
            raise
        self._task = asyncio.create_task(self.server.serve(sockets=[sock]), name="ops-listener")
        while not self.server.started:
            if self._task.done():
                with contextlib.suppress(SystemExit):
                    self._task.result()
                raise RuntimeError(f"the ops listener did not start on {config.host}:{config.port}")
            await asyncio.sleep(0.01)
        log.info("ops listener started", extra={"port": self.server.config.port})

    async def stop(self) -> None:
        if self._task is None:
            return
        self.server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
