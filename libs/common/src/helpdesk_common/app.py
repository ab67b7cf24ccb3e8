"""Service app factory: middleware, problem handlers, health/metrics, and the bus lifecycle.

Every service builds its FastAPI app here so they all behave alike: JSON logs with request
id, HTTP metrics by route template, body-size limit, RFC 9457 errors, ``/healthz``,
``/readyz`` (database and broker) and ``/metrics`` outside ``/v1`` (the gateway only
forwards ``/v1``), and a lifespan that starts and stops the outbox relay and consumers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response
from .responses import JSONBytesResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import Table, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from .consumer import ConsumerRunner, Handler
from .db import create_engine, create_raw_pool
from .identity import IdentityVerifier
from .kafka import broker_reachable
from .observability import BodySizeLimitMiddleware, RequestContextMiddleware, UrlNulMiddleware, configure_logging
from .outbox import OutboxRelay, set_max_event_bytes
from .problems import install_problem_handlers, problem_response
from .settings import ServiceSettings

log = logging.getLogger(__name__)


@dataclass
class ConsumerSpec:
    name: str
    topics: list[str]
    handlers: dict[str, Handler]
    #: handlers get a bare asyncpg connection (needs ServiceParts(raw_pool=True))
    raw: bool = False


@dataclass
class ServiceParts:
    """What a service plugs into the shared factory."""

    title: str
    routers: Sequence[APIRouter]
    outbox: Table | None = None
    inbox: Table | None = None
    consumers: Sequence[ConsumerSpec] = field(default_factory=list)
    uses_broker: bool = True
    openapi_url: str | None = "/openapi.json"
    raw_pool: bool = False  # an asyncpg pool for hot write paths (runtime.raw_transaction)
    lifespan_hooks: Sequence[Any] = field(default_factory=list)  # async (app) -> async context manager


class Runtime:
    """Per-process resources, reachable as ``request.app.state.runtime``."""

    def __init__(self, settings: ServiceSettings, parts: ServiceParts) -> None:
        self.settings = settings
        self.parts = parts
        self.engine: AsyncEngine = create_engine(
            settings.database_url, pool_size=settings.db_pool_size, max_overflow=settings.db_max_overflow,
            pool_timeout=settings.db_pool_timeout_s,
        )
        set_max_event_bytes(settings.event_max_bytes)
        self.relay: OutboxRelay | None = None
        if parts.outbox is not None and settings.relay_enabled:
            self.relay = OutboxRelay(engine=self.engine, table=parts.outbox, settings=settings)
        self.consumers: list[ConsumerRunner] = []
        if parts.inbox is not None and settings.consumers_enabled:
            for spec in parts.consumers:
                self.consumers.append(
                    ConsumerRunner(
                        name=spec.name,
                        topics=[settings.kafka_topic_prefix + t for t in spec.topics],
                        handlers=spec.handlers,
                        engine=self.engine,
                        inbox=parts.inbox,
                        settings=settings,
                        on_events_written=self.notify_relay,
                        raw_pool=(lambda: self.raw_pool) if spec.raw else None,
                    )
                )
        self.raw_pool: Any = None
        self._tasks: list[asyncio.Task] = []
        self._broker_ok: tuple[bool, float] = (False, 0.0)

    def notify_relay(self) -> None:
        if self.relay is not None:
            self.relay.notify()

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """One request, one transaction; wakes the relay after a commit."""
        async with self.engine.begin() as conn:
            yield conn
        self.notify_relay()

    @contextlib.asynccontextmanager
    async def raw_transaction(self) -> AsyncIterator[Any]:
        """A transaction on a bare asyncpg connection, for hot paths (intake): SQLAlchemy's
        async layer costs more CPU per statement than the database round trip."""
        assert self.raw_pool is not None, "ServiceParts(raw_pool=True) is required"
        async with self.raw_pool.acquire() as conn, conn.transaction():
            yield conn
        self.notify_relay()

    @contextlib.asynccontextmanager
    async def raw_connection(self) -> AsyncIterator[Any]:
        """A bare asyncpg connection without a transaction, for reads on the raw pool."""
        assert self.raw_pool is not None, "ServiceParts(raw_pool=True) is required"
        async with self.raw_pool.acquire() as conn:
            yield conn

    async def start(self) -> None:
        if self.parts.raw_pool:
            self.raw_pool = await create_raw_pool(self.settings.database_url, size=self.settings.db_raw_pool_size)
        if self.relay is not None:
            self._tasks.append(asyncio.create_task(self.relay.run(), name="outbox-relay"))
        for runner in self.consumers:
            self._tasks.append(asyncio.create_task(runner.run(), name=f"consumer-{runner.name}"))

    async def stop(self) -> None:
        """Cancel the loops first (a consumer may be mid-rebalance), then release clients."""
        for runner in self.consumers:
            runner.request_stop()
        if self.relay is not None:
            self.relay.request_stop()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await asyncio.gather(
            *(runner.stop() for runner in self.consumers),
            *([self.relay.stop()] if self.relay is not None else []),
            return_exceptions=True,
        )
        if self.raw_pool is not None:
            await self.raw_pool.close()
        await self.engine.dispose()

    async def broker_ok(self) -> bool:
        ok, checked_at = self._broker_ok
        if time.monotonic() - checked_at > 2.0:
            ok = await broker_reachable(self.settings)
            self._broker_ok = (ok, time.monotonic())
        return ok


def _health_router() -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/healthz")
    async def healthz() -> dict:
        return {"status": "ok"}

    @router.get("/readyz")
    async def readyz(request: Request) -> Response:
        runtime: Runtime = request.app.state.runtime
        checks: dict[str, str] = {}
        try:
            async with runtime.engine.connect() as conn:
                await asyncio.wait_for(conn.execute(text("SELECT 1")), 2)
            checks["database"] = "ok"
        except Exception:
            checks["database"] = "unreachable"
        if runtime.parts.uses_broker:
            checks["broker"] = "ok" if await runtime.broker_ok() else "unreachable"
        failing = [name for name, state in checks.items() if state != "ok"]
        extra: dict[str, Any] = {}
        relay = runtime.relay
        if relay is not None:
            # from the relay's gauge loop: no query per probe. A stuck outbox keeps the pod in the
            # load balancer unless configured otherwise: intake still works and the outbox buffers
            # (alert on outbox_oldest_unsent_age_seconds); dead letters never fail readiness.
            checks["outbox"] = "stuck" if relay.stuck() else "ok"
            if relay.stuck() and runtime.settings.readyz_fail_on_stuck_outbox:
                failing.append("outbox")
            extra["outbox"] = {
                "backlog": relay.backlog,
                "oldest_unsent_age_seconds": round(relay.oldest_unsent_age_s, 3),
                "dead_letters": relay.dead_letters,
            }
        if not failing:
            status = "degraded" if any(v != "ok" for v in checks.values()) else "ready"
            return JSONBytesResponse({"status": status, "checks": checks, **extra})
        return problem_response(503, "not-ready", "Not ready", f"Failing: {', '.join(failing)}.",
                                checks=checks, **extra)

    @router.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return router


class ServiceApp(FastAPI):
    """FastAPI that keeps the connection open after an unexpected error it already answered.

    Starlette answers an unhandled exception with the 500 problem and then re-raises it, and
    uvicorn closes the connection when an exception reaches it after the response. The
    gateway's pool would then hand that dead connection to the next request, someone else's
    (it retries once, but the close is needless). The error is logged by the problem handler.
    """

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        answered = False

        async def send_tracking(message: Any) -> None:
            nonlocal answered
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                answered = True
            await send(message)

        try:
            await super().__call__(scope, receive, send_tracking)
        except Exception:
            if not answered:
                raise


def build_app(settings: ServiceSettings, parts: ServiceParts) -> FastAPI:
    configure_logging(settings.service_name, settings.log_level)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = Runtime(settings, parts)
        app.state.runtime = runtime
        app.state.settings = settings
        app.state.identity_verifier = IdentityVerifier(settings.internal_auth_public_key,
                                                       max_lifetime_s=settings.internal_token_max_lifetime_s)
        await runtime.start()
        async with contextlib.AsyncExitStack() as hooks:
            for hook in parts.lifespan_hooks:
                await hooks.enter_async_context(hook(app))
            log.info("service started")
            try:
                yield
            finally:
                await runtime.stop()
            log.info("service stopped")

    app = ServiceApp(title=parts.title, version="0.1.0", lifespan=lifespan, openapi_url=parts.openapi_url)
    install_problem_handlers(app)
    app.include_router(_health_router())
    for router in parts.routers:
        app.include_router(router)
    # innermost first: NUL in the URL is refused before routing, inside the request id and metrics
    app.add_middleware(UrlNulMiddleware)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestContextMiddleware)
    return app


def runtime_of(request: Request) -> Runtime:
    return request.app.state.runtime
