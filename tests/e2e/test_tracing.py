"""One ticket, one trace: the gateway's span, ticket-svc's request and relay, and the consumers of
its events in the other services, joined by W3C traceparent through HTTP, the outbox and Kafka
headers (helpdesk_common/tracing.py). A stack of its own exports over OTLP/HTTP to an in-memory
receiver (conftest.OtlpSink)."""

import secrets
import uuid
from pathlib import Path

import httpx
import pytest

from helpdesk_common.devstack import PORT_BLOCK, Stack, StackConfig, free_block, free_port

from .conftest import OtlpSink, eventually, tracing_env
from .test_thin_path import ticket_body

#: the services a new ticket's trace must reach: the gateway and ticket-svc by HTTP, the others
#: by consuming ticket.created (sla-svc starts its timers, analytics-svc counts it, kb-svc and the
#: gateway's live stream read it)
EXPECTED = {"gateway", "ticket-svc", "sla-svc", "analytics-svc", "kb-svc"}
SERVER, PRODUCER, CONSUMER = 2, 4, 5  # OTLP span kinds


@pytest.fixture(scope="module")
def otlp_sink():
    sink = OtlpSink()
    try:
        yield sink
    finally:
        sink.stop()


@pytest.fixture(scope="module")
def traced_stack(tmp_path_factory, otlp_sink):
    """A stack of its own with tracing on (an endpoint set): tracing costs CPU even for unrecorded
    traces, so the session's stack, which every other end-to-end test loads, runs without it as a
    deployment without a collector does."""
    base = free_block(PORT_BLOCK)
    config = StackConfig(data_dir=Path(tmp_path_factory.mktemp("traced")), gateway_port=base, service_base_port=base,
                         pg_port=free_port(), kafka_port=free_port(), ephemeral=True, consumer_fetch_max_wait_ms=200,
                         extra_env=tracing_env(otlp_sink))
    stack = Stack(config)
    try:
        stack.creds = stack.up()
        yield stack
    finally:
        stack.stop_all()


@pytest.fixture
async def gw(traced_stack):
    async with httpx.AsyncClient(base_url=traced_stack.creds["gateway_url"], timeout=30) as client:
        yield client


@pytest.fixture
def key_headers(traced_stack):
    return {"Authorization": f"Bearer {traced_stack.creds['channel_api_key']}"}


async def test_one_ticket_is_one_trace_across_five_services(gw, key_headers, otlp_sink, report):
    trace_id, caller_span = secrets.token_hex(16), secrets.token_hex(8)
    headers = {**key_headers, "traceparent": f"00-{trace_id}-{caller_span}-01"}
    email = f"trace.{uuid.uuid4().hex[:6]}@example.com"
    created = await gw.post("/v1/tickets", json=ticket_body(email), headers=headers)
    assert created.status_code == 201, created.text

    def orphans_of(spans):
        by_id = {s["span_id"] for s in spans}
        return [s for s in spans if s["parent_span_id"] not in by_id and s["parent_span_id"] != caller_span]

    def processed_by(spans):
        return {s["service"] for s in spans if s["kind"] == CONSUMER and s["name"].endswith(" process")}

    async def reached_all():
        """Every expected service in the trace, each consumer's span for applying the event among
        them, and one tree: each span's parent is in the trace, or is the caller's span the gateway
        continued (each process exports in its own batches, so a child can arrive before its
        parent). The aiokafka instrumentation's ``receive`` span of a consumer is a child of the
        producer's too, and is exported as the batch is fetched: the ``process`` span, which ends
        when the event is applied, can come seconds later on a loaded machine."""
        spans = otlp_sink.trace(trace_id)
        complete = EXPECTED <= {s["service"] for s in spans} and EXPECTED - {"gateway", "ticket-svc"} <= processed_by(spans)
        return spans if complete and not orphans_of(spans) else None

    try:
        spans = await eventually(reached_all, timeout=60)
    except AssertionError:
        spans = otlp_sink.trace(trace_id)
        raise AssertionError(f"services {sorted({s['service'] for s in spans})}, orphans {orphans_of(spans)}")
    by_id = {s["span_id"]: s for s in spans}
    services = {s["service"] for s in spans}
    roots = [s for s in spans if s["parent_span_id"] == caller_span]
    assert [(r["service"], r["kind"]) for r in roots] == [("gateway", SERVER)], roots

    def ancestors(span):
        chain = []
        while span["parent_span_id"] in by_id:
            span = by_id[span["parent_span_id"]]
            chain.append(span)
        return chain

    # ticket-svc's request is a child of the gateway's; its relay's producer span is a descendant of
    # that request (the traceparent stored with the outbox row), and each consumer's span is a child
    # of a producer span (the record's headers)
    ticket_request = next(s for s in spans if s["service"] == "ticket-svc" and s["kind"] == SERVER)
    assert by_id[ticket_request["parent_span_id"]]["service"] == "gateway"
    producers = [s for s in spans if s["service"] == "ticket-svc" and s["kind"] == PRODUCER]
    assert producers and all(ticket_request in ancestors(p) for p in producers)
    for service in EXPECTED - {"ticket-svc"}:
        consumed = [s for s in spans if s["service"] == service and s["kind"] == CONSUMER
                    and s["name"].endswith(" process")]
        assert consumed, f"{service} has no consumer span in the trace"
        assert any(by_id[s["parent_span_id"]]["kind"] == PRODUCER for s in consumed), service
    # the databases' statements are in it too (the asyncpg instrumentation)
    assert any(s["service"] == "ticket-svc" and s["attributes"].get("db.system") == "postgresql" for s in spans)
    report(f"one ticket's trace: {len(spans)} spans from {len(services)} services ({', '.join(sorted(services))})",
           section="tracing")


async def test_a_trace_nobody_asked_for_is_not_recorded(gw, key_headers, otlp_sink):
    """Sampling is decided where the trace starts: without a sampled traceparent (ratio 0 here),
    the request and its events have trace ids but nothing is exported."""
    trace_id = secrets.token_hex(16)
    headers = {**key_headers, "traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-00"}
    created = await gw.post("/v1/tickets", json=ticket_body(f"quiet.{uuid.uuid4().hex[:6]}@example.com"),
                            headers=headers)
    assert created.status_code == 201, created.text

    async def processed():
        r = await gw.get(f"/v1/tickets/{created.json()['id']}", headers=key_headers)
        return r.json()["sla"]["first_response_due_at"]

    await eventually(processed)
    assert otlp_sink.trace(trace_id) == []
