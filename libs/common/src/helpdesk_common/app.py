"""Service app factory: middleware, problem handlers, health/metrics, and the bus lifecycle.

Every service builds its FastAPI app here so they all behave alike: JSON logs with request
id, HTTP metrics by route template, body-size limit, RFC 9457 errors, ``/healthz``,
``/readyz`` (database and broker) and ``/metrics`` outside ``/v1`` (the gateway only
forwards ``/v1``; only to the scraper's addresses, metrics_access.py; never on the gateway's
public port, whose figures are on its ops listener: ops_listener.py), and a lifespan that starts
and stops the outbox relay and consumers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_plus

from fastapi import APIRouter, FastAPI, Request, Response, routing
from fastapi.routing import APIRoute
from pydantic import BaseModel
from .responses import JSONBytesResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import Table, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from starlette.exceptions import HTTPException as StarletteHTTPException

from .consumer import ConsumerRunner, Handler
from .edge import EdgeMiddleware, security_headers
from .gc_tuning import settled_heap
from .db import create_engine, create_raw_pool
from .identity import IdentityVerifier
from .kafka import broker_reachable
from .metrics_access import MetricsAccess
from .ops_listener import OpsListener
from . import fastapi_memo, openapi, route_index, tracing
from .observability import RequestChecksMiddleware, configure_logging
from .outbox import OutboxRelay, set_max_event_bytes
from .outbox import watching_writes as outbox_writes
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
    #: awaited first in every consumer transaction, before the inbox and the handlers (e.g. a
    #: shared advisory lock that a read-model rebuild takes exclusively to swap tables)
    on_begin: Callable[[Any], Awaitable[None]] | None = None
    #: awaited last in every consumer transaction, after the batch's (or a retried single
    #: event's) handlers and before the commit (e.g. work a read model does once per batch)
    before_commit: Callable[[Any], Awaitable[None]] | None = None
    #: called (synchronously) after every consumer transaction ends, with the connection it ran
    #: on and whether it committed: work that may only start once the transaction's rows are
    #: durable (notify-svc hands the deliveries it claimed to its dispatcher)
    after_transaction: Callable[[Any, bool], None] | None = None
    #: the least time between the starts of two batches (seconds, 0: none): records that arrive
    #: sooner join the next batch instead of starting one, for a consumer whose cost is per batch
    #: more than per event (analytics-svc's fold). A batch after a quiet spell starts at once.
    min_batch_interval_s: float = 0.0


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
    #: the main listener faces the internet (the gateway): /metrics is served by the ops listener
    #: only (<PREFIX>OPS_PORT), never here, whatever the caller's address
    public: bool = False


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
            # the relay's passes on an asyncpg connection of its own: on the engine they cost
            # SQLAlchemy's checkout, greenlet and transaction per pass, and on the service's raw
            # pool a pass queued behind the requests holding every connection under intake
            # (propagation p99 1.0 -> 1.2 s in round 20's bench)
            self.relay = OutboxRelay(engine=self.engine, table=parts.outbox, settings=settings,
                                     raw_pool=lambda: self.relay_pool)
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
                        on_begin=spec.on_begin,
                        before_commit=spec.before_commit,
                        after_transaction=spec.after_transaction,
                        min_batch_interval_s=spec.min_batch_interval_s,
                    )
                )
        self.raw_pool: Any = None
        self.relay_pool: Any = None
        self._stopped = False
        self._tasks: list[asyncio.Task] = []
        self._broker_ok: tuple[bool, float] = (False, 0.0)

    def notify_relay(self) -> None:
        if self.relay is not None:
            self.relay.notify()

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """One request, one transaction; wakes the relay after a commit that wrote outbox rows."""
        with outbox_writes() as writes:
            async with self.engine.begin() as conn:
                yield conn
        if writes.wrote:
            self.notify_relay()

    @contextlib.asynccontextmanager
    async def raw_transaction(self) -> AsyncIterator[Any]:
        """A transaction on a bare asyncpg connection, for hot paths (intake): SQLAlchemy's
        async layer costs more CPU per statement than the database round trip."""
        assert self.raw_pool is not None, "ServiceParts(raw_pool=True) is required"
        with outbox_writes() as writes:
            async with self.raw_pool.acquire() as conn, conn.transaction():
                yield conn
        if writes.wrote:
            self.notify_relay()

    @contextlib.asynccontextmanager
    async def raw_session(self) -> AsyncIterator[Any]:
        """A bare asyncpg connection with no transaction begun, for a write path that begins one
        only when it writes more than one statement (a single statement is atomic by itself and
        needs neither BEGIN nor COMMIT); wakes the relay after it as ``raw_transaction`` does."""
        assert self.raw_pool is not None, "ServiceParts(raw_pool=True) is required"
        with outbox_writes() as writes:
            async with self.raw_pool.acquire() as conn:
                yield conn
        if writes.wrote:
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
            self.relay_pool = await create_raw_pool(self.settings.database_url, size=1)
        if self.relay is not None:
            self._tasks.append(asyncio.create_task(self.relay.run(), name="outbox-relay"))
        for runner in self.consumers:
            self._tasks.append(asyncio.create_task(runner.run(), name=f"consumer-{runner.name}"))

    async def stop(self) -> None:
        """Cancel the loops first (a consumer may be mid-rebalance), then release clients. Once:
        the lifespan calls it again before ``close`` on every way out, a failed start included."""
        if self._stopped:
            return
        self._stopped = True
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

    async def close(self) -> None:
        """Close the pools, once the lifespan hooks have stopped (a hook's loop may still read
        through them until then, as the gateway's stream hub does)."""
        try:
            for pool in (self.relay_pool, self.raw_pool):
                if pool is not None:
                    await pool.close()
        finally:
            await self.engine.dispose()

    async def broker_ok(self) -> bool:
        ok, checked_at = self._broker_ok
        if time.monotonic() - checked_at > 2.0:
            ok = await broker_reachable(self.settings)
            self._broker_ok = (ok, time.monotonic())
        return ok


def _health_router(*, metrics: bool = True) -> APIRouter:
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

    if metrics:
        @router.get("/metrics")
        async def metrics_page(request: Request) -> Response:
            # the cluster's scraper only (metrics_access.py); anyone else gets an absent route's 404
            if not request.app.state.metrics_access.allows(request):
                raise StarletteHTTPException(404)
            return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return router


# --- query strings: one rule for every route of every service ------------------------------------
#
# A request with a query parameter the matched route does not declare is a 422 naming it. A
# mistyped filter (``?stauts=open``) used to be ignored on tickets (a list of *everything*,
# silently) and refused on customers. Routes whose query string is not theirs to check say so
# with ``openapi_extra=ACCEPTS_ANY_QUERY`` (channel callbacks that platforms sign with
# ``timestamp``/``nonce``/``msg_signature``/``echostr``, whatever they add next); routes outside
# the OpenAPI document (``include_in_schema=False``: health probes, the gateway's catch-all proxy,
# whose upstream route applies this same rule to the query it forwards) publish no parameter
# contract and are not checked either.

#: the ``openapi_extra`` key (and OpenAPI extension) of a route that takes any query parameters
ANY_QUERY_PARAMETERS = "x-any-query-parameters"
ACCEPTS_ANY_QUERY: dict[str, Any] = {ANY_QUERY_PARAMETERS: True}
_ROUTE_RULE = "_helpdesk_query_rule"  # set on a route once the rule is installed on it
_MAX_REPORTED, _MAX_NAME = 10, 100


def declared_query_names(dependant: Any) -> frozenset[str]:
    """Every query parameter name a route reads: its own, its dependencies' (recursively), by
    alias, and the fields of a pydantic query model (``Annotated[Model, Query()]``)."""
    names: set[str] = set()
    stack = [dependant]
    while stack:
        current = stack.pop()
        for field in current.query_params:
            names.add(field.alias)
            annotation = getattr(field.field_info, "annotation", None)
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                names.update(info.alias or name for name, info in annotation.model_fields.items())
        stack.extend(current.dependencies)
    return frozenset(names)


def unknown_query_names(query_string: bytes, allowed: frozenset[str]) -> list[str]:
    """Names in ``query_string`` that are not in ``allowed``, decoded as Starlette decodes them
    (``+`` and percent escapes, UTF-8), each once, in order. A plain name costs a split and a set
    lookup; only the others are decoded."""
    unknown: list[str] = []
    for part in query_string.split(b"&"):
        if not part:
            continue
        name = part.split(b"=", 1)[0].decode("latin-1")
        if name in allowed:
            continue
        name = unquote_plus(name)
        if name not in allowed and name not in unknown:
            unknown.append(name)
    return unknown


def _query_rule(route: APIRoute) -> frozenset[str] | None:
    """The names ``route`` accepts, or None when it takes any query string."""
    if not route.include_in_schema or (route.openapi_extra or {}).get(ANY_QUERY_PARAMETERS):
        return None
    return declared_query_names(route.dependant)


def _api_routes(routes: Sequence[Any]) -> Any:
    """Every ``APIRoute`` under ``routes``: FastAPI ≥ 0.120 keeps an included router as one
    entry (``original_router``) whose routes are the original route objects; older versions
    copied the routes into the app. Both are walked."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        router = getattr(route, "original_router", None)
        if router is not None:
            yield from _api_routes(router.routes)


def _guarded_handle(route: APIRoute, allowed: frozenset[str]) -> Any:
    handle = route.handle
    methods = route.methods

    async def guarded(scope: Any, receive: Any, send: Any) -> None:
        query = scope.get("query_string")
        if query and (not methods or scope.get("method") in methods):  # a wrong method stays a 405
            unknown = unknown_query_names(query, allowed)
            if unknown:
                shown = [name[:_MAX_NAME] for name in unknown[:_MAX_REPORTED]]
                more = len(unknown) - len(shown)
                response = problem_response(
                    422, "validation-error", "Validation failed",
                    f"Unknown query parameter{'s' if len(unknown) > 1 else ''}: {', '.join(shown)}"
                    + (f" (and {more} more)." if more else "."),
                    errors=[{"field": f"query.{name}", "message": "unknown query parameter",
                             "code": "extra_forbidden"} for name in shown])
                await response(scope, receive, send)
                return
        await handle(scope, receive, send)

    return guarded


def install_query_rule(app: FastAPI) -> None:
    """Apply the rule to every route of ``app`` (``build_app`` calls it once the routers are in).

    Each checked route's ``handle`` (what the router calls once the route matched) is wrapped
    with a check against the names computed here, once per route. Measured
    (``bench/query_rule.py``): an app-level dependency that did the same cost 10-40 µs a
    request, most of it FastAPI's dependency solving; this costs a ``query_string`` test on a
    request without one and about a microsecond on a list with a handful of parameters. A
    route object shared by several apps (tests build many) is wrapped once."""
    for route in _api_routes(app.routes):
        if getattr(route, _ROUTE_RULE, False):
            continue
        allowed = _query_rule(route)
        if allowed is not None:
            route.handle = _guarded_handle(route, allowed)  # type: ignore[method-assign]
        setattr(route, _ROUTE_RULE, True)


# --- concrete paths before templated ones ---------------------------------------------------------
#
# OpenAPI matches a concrete path (``/v1/tickets/pii-access``) before a templated one that would
# also match it (``/v1/tickets/{ticket_id}``); Starlette tries routes in order, so a method the
# concrete path does not serve fell through to the templated route: ``PATCH
# /v1/tickets/pii-access`` was a 422 about a malformed ticket id, and the 405 for ``OPTIONS``
# advertised ``Allow: GET, PATCH``. Schemathesis found both. The fix is a check before routing,
# only for the concrete paths some documented templated route shadows (the gateway's catch-all
# proxy is undocumented and keeps serving what the gateway does not).


def shadowed_concrete_paths(app: FastAPI) -> dict[str, frozenset[str]]:
    """Concrete path -> the methods its own routes serve, for every concrete path that a
    documented templated route with other methods would also match."""
    concrete: dict[str, set[str]] = {}
    templated: list[tuple[Any, set[str]]] = []
    for route in routing.iter_route_contexts(app.routes):
        path, methods = getattr(route, "path", None), getattr(route, "methods", None)
        if not path or not methods:
            continue
        if "{" not in path:
            concrete.setdefault(path, set()).update(methods)
        elif getattr(route, "include_in_schema", False):
            templated.append((route.path_regex, set(methods)))
    shadowed: dict[str, frozenset[str]] = {}
    for path, methods in concrete.items():
        if any(regex.match(path) and other - methods for regex, other in templated):
            shadowed[path] = frozenset(methods)
    return shadowed


class ServiceApp(FastAPI):
    """FastAPI with ``EdgeMiddleware`` outside its whole stack.

    The edge layer (request id, security headers, no banners, the HTTP metrics, the connection
    kept open after an error it already answered: helpdesk_common/edge.py) wraps Starlette's
    ``ServerErrorMiddleware`` and any middleware added after ``build_app`` (the gateway's CORS),
    so the 500 problem and a CORS preflight carry them too.
    """

    #: the default response headers (``edge.security_headers``), set by ``build_app``
    edge_defaults: tuple[tuple[bytes, bytes], ...] = security_headers()
    #: count the app's requests in the HTTP metrics (not the ops listener's probes and scrapes)
    count_requests: bool = True
    #: continue a caller's trace (services behind the gateway); the public gateway only behind a
    #: trusted proxy (tracing.py)
    trace_trust_incoming: bool = True

    def __init__(self, **kwargs: Any) -> None:
        # FastAPI's own OpenTelemetry bridge off: the services trace with tracing.py's middleware
        # and count requests in Prometheus (observability.py). Left on, it asked the three global
        # OpenTelemetry providers whether they were configured on every request, tracing off
        # (``os.environ`` reads each time: about 1 % of the gateway's CPU, round 18)
        kwargs.setdefault("telemetry", {"tracing": False, "metrics": False, "logs": False})
        super().__init__(**kwargs)

    def build_middleware_stack(self) -> Any:
        # the request id and response headers outside the trace span, the span outside the rest
        traced = tracing.wrap_asgi(super().build_middleware_stack(), trust_incoming=self.trace_trust_incoming)
        return EdgeMiddleware(traced, defaults=self.edge_defaults, count=self.count_requests)


def build_app(settings: ServiceSettings, parts: ServiceParts) -> FastAPI:
    fastapi_memo.install()  # once per process: FastAPI's per-request parameter questions, cached
    configure_logging(settings.service_name, settings.log_level)
    if settings.tracing_enabled or (settings.tracing_enabled is None and settings.otlp_endpoint):
        tracing.setup(settings.service_name, endpoint=settings.otlp_endpoint or None,
                      ratio=settings.trace_sample_ratio)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = Runtime(settings, parts)
        app.state.runtime = runtime
        app.state.settings = settings
        app.state.identity_verifier = IdentityVerifier(settings.internal_auth_public_key,
                                                       max_lifetime_s=settings.internal_token_max_lifetime_s)
        try:
            await runtime.start()
            async with contextlib.AsyncExitStack() as hooks:
                for hook in parts.lifespan_hooks:
                    await hooks.enter_async_context(hook(app))
                if settings.ops_port:
                    ops = OpsListener(app=_ops_app(app), host=settings.ops_host, port=settings.ops_port)
                    await ops.start()
                    hooks.push_async_callback(ops.stop)
                route_index.install(app)  # the routes are final now
                frozen = hooks.enter_context(settled_heap(settings.gc_young_threshold))
                log.info("service started", extra={"gc_frozen_objects": frozen})
                try:
                    yield
                finally:
                    await runtime.stop()
                    tracing.shutdown()
        finally:
            try:
                await runtime.stop()  # a no-op after the one above; the loops' stop when the start failed
            finally:
                await runtime.close()  # after the hooks: their loops may read until they stop
        log.info("service stopped")

    # the API document only when the deployment enables it; a service's Swagger UI and ReDoc pages
    # never (the gateway's /docs shows the composed document)
    app = ServiceApp(title=parts.title, version="0.1.0", lifespan=lifespan,
                     openapi_url=parts.openapi_url if settings.api_docs_enabled else None,
                     docs_url=None, redoc_url=None)
    app.edge_defaults = security_headers(hsts_max_age_s=settings.hsts_max_age_s)
    app.trace_trust_incoming = not parts.public or settings.trace_trust_incoming
    app.state.metrics_access = MetricsAccess.from_settings(settings)
    install_problem_handlers(app)
    app.include_router(_health_router(metrics=not parts.public))
    for router in parts.routers:
        app.include_router(router)
    install_query_rule(app)  # undeclared query parameters are a 422, in every service
    openapi.install(app)  # every operation declares its error answers (problem+json)
    # the body limit, NUL in the URL and shadowed concrete paths are refused before routing; the
    # request id, the response headers and the metrics are outside everything
    # (ServiceApp.build_middleware_stack)
    app.state.shadowed_concrete_paths = shadowed_concrete_paths(app)
    app.add_middleware(RequestChecksMiddleware, max_bytes=settings.max_body_bytes,
                       shadowed=app.state.shadowed_concrete_paths)
    return app


def _ops_app(main: FastAPI) -> FastAPI:
    """The ops listener's app: the probes and /metrics over the main app's state (its runtime and
    metrics access rule), answering like every other port (problem+json, security headers)."""
    ops = ServiceApp(openapi_url=None, docs_url=None, redoc_url=None)
    ops.edge_defaults = main.edge_defaults
    ops.count_requests = False
    ops.state = main.state
    install_problem_handlers(ops)
    ops.include_router(_health_router())
    return ops


def runtime_of(request: Request) -> Runtime:
    return request.app.state.runtime
