"""OpenTelemetry tracing: one trace from the gateway through every service an event reaches.

How a trace crosses the system:

- HTTP: each service's app is wrapped in OpenTelemetry's ASGI middleware (``wrap_asgi``), which
  continues the caller's W3C ``traceparent``; the gateway sends its own span's context upstream
  (``inject_into``). The gateway faces the internet, so it starts a new trace instead of
  continuing a caller's unless ``TRACE_TRUST_INCOMING`` says the caller is a trusted proxy (a
  client could otherwise force every request to be recorded).
- Outbox: ``outbox_row`` stores the current context's ``traceparent`` with the event, in the
  transaction that writes it; the relay publishes under that context (``publishing``), and the
  aiokafka instrumentation puts its producer span's ``traceparent`` in the record's headers.
- Consumers: each event is applied in a span whose parent is the record's ``traceparent``
  (``consuming``), so what a handler writes to its own outbox continues the same trace.
- Databases: the asyncpg instrumentation (SQLAlchemy's async dialect runs on asyncpg too).

Tracing is on when an OTLP endpoint is set (``OTEL_EXPORTER_OTLP_ENDPOINT``; spans go there over
OTLP/HTTP in batches) or ``TRACING_ENABLED=true``; off otherwise, because even unrecorded spans cost
CPU (make bench, 2026-12-02: the pipeline's CPU per ticket 75.1 ms with tracing on at ratio 0 against
58.3 ms off). Sampling is parent-based: a trace's first span decides with
``OTEL_TRACES_SAMPLER_ARG`` (default 1.0 with an endpoint, 0 without) and every later span follows
it. An unsampled span still has ids, so trace ids reach the logs and the headers, while recording
and export cost only what is sampled.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

log = logging.getLogger(__name__)

#: the process's provider: set once, by the first service app built in the process
_provider: TracerProvider | None = None
_tracer: trace.Tracer | None = None

#: W3C trace-context headers, dropped from an untrusted caller's request at the gateway
TRACE_HEADERS = (b"traceparent", b"tracestate")


def sample_ratio(endpoint: str | None, configured: float | None) -> float:
    """The root sampler's ratio: the configured one, else everything when spans go somewhere."""
    if configured is not None:
        return min(max(configured, 0.0), 1.0)
    return 1.0 if endpoint else 0.0


def setup(service_name: str, *, endpoint: str | None, ratio: float | None,
          processors: tuple[SpanProcessor, ...] = ()) -> TracerProvider:
    """The process's tracer provider and instrumentations, once per process (a test process
    builds many apps; the first one's service name and exporter stay). ``processors``: extra span
    processors, e.g. an in-memory exporter in tests."""
    global _provider, _tracer
    if _provider is not None:
        for processor in processors:
            _provider.add_span_processor(processor)
        return _provider
    provider = TracerProvider(
        resource=Resource.create({"service.name": service_name}),
        sampler=ParentBased(root=TraceIdRatioBased(sample_ratio(endpoint, ratio))),
    )
    if endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=_traces_url(endpoint))))
    for processor in processors:
        provider.add_span_processor(processor)
    trace.set_tracer_provider(provider)
    _instrument_libraries(provider)
    _provider = provider
    _tracer = provider.get_tracer("helpdesk")
    return provider


def _traces_url(endpoint: str) -> str:
    """OTLP/HTTP's traces path under the endpoint, as the SDK does for the generic variable."""
    return endpoint if endpoint.rstrip("/").endswith("/v1/traces") else endpoint.rstrip("/") + "/v1/traces"


def _instrument_libraries(provider: TracerProvider) -> None:
    from opentelemetry.instrumentation.aiokafka import AIOKafkaInstrumentor
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor

    AsyncPGInstrumentor().instrument(tracer_provider=provider)
    AIOKafkaInstrumentor().instrument(tracer_provider=provider)


def uninstall() -> None:
    """Undo ``setup`` for the rest of the process (a test process goes on without tracing; the
    global provider stays registered, as OpenTelemetry allows only one, but nothing uses it)."""
    global _provider, _tracer
    if _provider is None:
        return
    from opentelemetry.instrumentation.aiokafka import AIOKafkaInstrumentor
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor

    AsyncPGInstrumentor().uninstrument()
    AIOKafkaInstrumentor().uninstrument()
    _provider.shutdown()
    _provider, _tracer = None, None


def enabled() -> bool:
    return _provider is not None


def shutdown() -> None:
    """Flush what is batched (a stopping process sends its last spans)."""
    if _provider is not None:
        _provider.force_flush(5000)


def wrap_asgi(app: Any, *, trust_incoming: bool) -> Any:
    """The app inside OpenTelemetry's ASGI middleware, spans named by route template; probes and
    /metrics are not traced. Untrusted callers' trace headers are removed first."""
    if _provider is None:
        return app
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
    from opentelemetry.instrumentation.fastapi import _get_default_span_details

    traced = OpenTelemetryMiddleware(
        app, excluded_urls="healthz,readyz,metrics", default_span_details=_get_default_span_details,
        tracer_provider=_provider, exclude_spans=["receive", "send"],
    )
    return traced if trust_incoming else _WithoutCallerTraceContext(traced)


class _WithoutCallerTraceContext:
    """Drops ``traceparent`` / ``tracestate`` from the request, so the trace starts here.

    The scope is changed in place, not copied: the edge layer outside reads the route the router
    puts in it (the metrics' label)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers = scope["headers"]
            if any(name in TRACE_HEADERS for name, _ in headers):
                scope["headers"] = [(n, v) for n, v in headers if n not in TRACE_HEADERS]
        await self.app(scope, receive, send)


def current_traceparent() -> str | None:
    """The current span's ``traceparent`` (sampled or not), or None outside any trace."""
    if _provider is None:
        return None
    span_context = trace.get_current_span().get_span_context()
    if not span_context.is_valid:
        return None
    return f"00-{span_context.trace_id:032x}-{span_context.span_id:016x}-{int(span_context.trace_flags):02x}"


def inject_into(headers: dict[str, str]) -> None:
    """Set the current context's trace headers on an outgoing request (replacing the caller's)."""
    if _provider is not None and trace.get_current_span().get_span_context().is_valid:
        propagate.inject(headers)


@contextlib.contextmanager
def publishing(traceparent: str | None) -> Iterator[None]:
    """The stored context of an outbox row as the current one while it is sent: the producer
    span (aiokafka instrumentation) is its child and its ``traceparent`` goes in the headers."""
    if _provider is None or not traceparent:
        yield
        return
    token = otel_context.attach(propagate.extract({"traceparent": traceparent}))
    try:
        yield
    finally:
        otel_context.detach(token)


@contextlib.contextmanager
def consuming(consumer: str, topic: str, event_type: str, headers: Any) -> Iterator[None]:
    """A consumer span for applying one event, child of the producer span in its headers."""
    if _tracer is None:
        yield
        return
    carrier = {}
    for key, value in headers or ():
        if key in ("traceparent", "tracestate") and value is not None:
            carrier[key] = value.decode("latin-1")
    parent = propagate.extract(carrier) if carrier else otel_context.Context()
    with _tracer.start_as_current_span(
        f"{topic} process", context=parent, kind=trace.SpanKind.CONSUMER,
        attributes={"messaging.system": "kafka", "messaging.destination.name": topic,
                    "messaging.consumer.group.name": consumer, "messaging.operation.type": "process",
                    "helpdesk.event_type": event_type},
    ):
        yield


def log_ids() -> tuple[str, str] | None:
    """(trace id, span id) of the current span for a log line, or None."""
    if _provider is None:
        return None
    span_context = trace.get_current_span().get_span_context()
    if not span_context.is_valid:
        return None
    return f"{span_context.trace_id:032x}", f"{span_context.span_id:016x}"
