"""Tracing's pieces in one process, with an in-memory exporter: the logs' trace ids, the outbox
row's traceparent, the consumer span's parent, and the caller's traceparent honoured by a service
and dropped by the public gateway unless it trusts its callers. The whole path across the real
processes is tests/e2e/test_tracing.py."""

from __future__ import annotations

import json
import logging
import secrets
import uuid
from collections.abc import Iterator

import httpx
import pytest
from fastapi import APIRouter
from opentelemetry import trace
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import REGISTRY

from helpdesk_common import events, tracing
from helpdesk_common.app import ServiceApp
from helpdesk_common.observability import JsonFormatter
from helpdesk_common.outbox import outbox_row


@pytest.fixture(scope="module")
def exported() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    tracing.setup("test-svc", endpoint=None, ratio=None, processors=(SimpleSpanProcessor(exporter),))
    yield exporter
    tracing.uninstall()  # the worker's later tests run as a deployment without a collector does


def sampled_parent() -> tuple[str, str, str]:
    trace_id, span_id = secrets.token_hex(16), secrets.token_hex(8)
    return trace_id, span_id, f"00-{trace_id}-{span_id}-01"


def test_unsampled_root_spans_have_ids_and_record_nothing(exported):
    """Without an endpoint the ratio is 0: a trace started here is not recorded, but its ids exist
    and reach the log line written inside it."""
    exported.clear()
    tracer = trace.get_tracer("test")
    formatter = JsonFormatter("test-svc")
    with tracer.start_as_current_span("work") as span:
        assert not span.is_recording()
        line = json.loads(formatter.format(logging.makeLogRecord({"msg": "inside", "levelno": 20, "levelname": "INFO"})))
        expected = f"{span.get_span_context().trace_id:032x}"
    assert line["trace_id"] == expected and len(line["span_id"]) == 16
    outside = json.loads(formatter.format(logging.makeLogRecord({"msg": "outside"})))
    assert "trace_id" not in outside
    assert exported.get_finished_spans() == ()


def test_an_outbox_row_carries_the_context_that_wrote_it(exported):
    trace_id, _, traceparent = sampled_parent()
    tid = uuid.uuid4()
    event = events.TicketCustomerLinked(
        source="test", subject=str(tid), data=events.TicketCustomerLinkedData(ticket_id=tid, customer_id=uuid.uuid4()))
    from opentelemetry import context, propagate

    token = context.attach(propagate.extract({"traceparent": traceparent}))
    try:
        with trace.get_tracer("test").start_as_current_span("request") as span:
            row = outbox_row(event)
            span_id = f"{span.get_span_context().span_id:016x}"
    finally:
        context.detach(token)
    assert row["traceparent"] == f"00-{trace_id}-{span_id}-01"
    assert outbox_row(event)["traceparent"] is None  # outside any trace
    assert outbox_row(event, traceparent="00-" + "1" * 32 + "-" + "2" * 16 + "-01")["traceparent"].startswith("00-111")


def test_an_event_is_applied_in_a_span_whose_parent_is_in_its_headers(exported):
    exported.clear()
    trace_id, span_id, traceparent = sampled_parent()
    with tracing.consuming("sla-svc.timers", "tickets.events", "ticket.created",
                           [("ce_type", b"ticket.created"), ("traceparent", traceparent.encode())]):
        inside = tracing.current_traceparent()
    (span,) = exported.get_finished_spans()
    assert span.name == "tickets.events process" and span.kind == trace.SpanKind.CONSUMER
    assert f"{span.context.trace_id:032x}" == trace_id and f"{span.parent.span_id:016x}" == span_id
    assert span.attributes["messaging.consumer.group.name"] == "sla-svc.timers"
    assert inside == f"00-{trace_id}-{span.context.span_id:016x}-01"
    # no header: a trace of its own (not recorded at ratio 0)
    exported.clear()
    with tracing.consuming("c", "t", "x", [("ce_type", b"x")]):
        assert tracing.current_traceparent() is not None
    assert exported.get_finished_spans() == ()


def app_seeing_its_trace(trust_incoming: bool) -> ServiceApp:
    app = ServiceApp()
    app.trace_trust_incoming = trust_incoming
    router = APIRouter()

    @router.get("/v1/where")
    async def where() -> dict:
        headers: dict[str, str] = {}
        tracing.inject_into(headers)
        return {"traceparent": tracing.current_traceparent(), "forwarded": headers.get("traceparent")}

    app.include_router(router)
    return app


LABELS = {"method": "GET", "route": "/v1/where", "status": "200"}


@pytest.mark.parametrize("trusted", [True, False])
async def test_a_caller_traceparent_is_continued_only_when_trusted(exported, trusted):
    exported.clear()
    trace_id, span_id, traceparent = sampled_parent()
    app = app_seeing_its_trace(trusted)
    before = REGISTRY.get_sample_value("http_requests_total", LABELS) or 0
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        body = (await client.get("/v1/where", headers={"traceparent": traceparent})).json()
    assert body["forwarded"] == body["traceparent"]  # what goes upstream is this span, not the caller's
    # counted under its route either way: dropping the caller's trace headers keeps the scope the
    # edge layer reads the route from
    assert REGISTRY.get_sample_value("http_requests_total", LABELS) == before + 1
    spans = exported.get_finished_spans()
    if trusted:
        (server,) = spans
        assert server.name == "GET /v1/where" and f"{server.parent.span_id:016x}" == span_id
        assert body["traceparent"] == f"00-{trace_id}-{server.context.span_id:016x}-01"
    else:  # a new trace, not sampled by the caller's flag
        assert trace_id not in body["traceparent"] and int(body["traceparent"][-2:], 16) & 1 == 0
        assert spans == ()


async def test_probes_and_metrics_are_not_traced(exported):
    exported.clear()
    app = app_seeing_its_trace(True)

    @app.get("/healthz")
    async def healthz() -> dict:
        return {"trace": tracing.current_traceparent()}

    _, _, traceparent = sampled_parent()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        body = (await client.get("/healthz", headers={"traceparent": traceparent})).json()
    assert body["trace"] is None and exported.get_finished_spans() == ()
