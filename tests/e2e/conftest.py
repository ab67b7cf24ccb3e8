"""End-to-end: the real six processes, embedded PostgreSQL and tansu (Apache Kafka with
E2E_BROKER=apache-kafka), driven through the gateway."""

import asyncio
import importlib.util
import json
import os
import secrets
import sys
import time
import uuid
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from helpdesk_common.devstack import PORT_BLOCK, Stack, StackConfig, free_block, free_port


def pytest_configure(config):
    config.addinivalue_line("markers", "run_last: runs after every other test of the session (it changes "
                                       "the shared stack's data as it pleases)")


def pytest_collection_modifyitems(config, items):
    """``run_last`` tests go to the end, whatever their file's name (tests/e2e/test_schemathesis.py)."""
    items.sort(key=lambda item: item.get_closest_marker("run_last") is not None)


def _free_block(size: int = PORT_BLOCK) -> int:
    """A base port with ``size`` consecutive free ports (see devstack.free_block)."""
    return free_block(size)


REPO = Path(__file__).resolve().parents[2]
#: the one loopback address the stack's notify-svc may post webhooks to (a /32 allow-list): not
#: 127.0.0.1, where the stack's services listen, so that other loopback addresses, 127.0.0.1
#: included, are refused targets the tests can show refused
WEBHOOK_RECEIVER_HOST = "127.0.0.8"


def _load_chat_fakes():
    """notify-svc's fake WeChat / WeCom / DingTalk servers (services/notify-svc/tests/fakes.py:
    self-contained, not an importable package), loaded once by path."""
    name = "helpdesk_e2e_chat_fakes"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, REPO / "services/notify-svc/tests/fakes.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # its dataclasses look their module up while being built
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture(scope="session")
def chat_fakes():
    """The chat providers' APIs for the whole session, each on 127.0.0.1 in its own thread and
    started before the stack, which is pointed at them (tests/e2e/test_outbound_chat_channels.py
    scripts them): no reply on a chat channel leaves 127.0.0.0/8."""
    fakes = _load_chat_fakes()
    servers = SimpleNamespace(module=fakes, wechat=fakes.FakeWeChat(), wecom=fakes.FakeWeCom(),
                              dingtalk=fakes.FakeDingTalk())
    started = []
    try:
        for server in (servers.wechat, servers.wecom, servers.dingtalk):
            server.start_in_thread()
            started.append(server)
        yield servers
    finally:
        for server in started:
            server.stop_thread()


def chat_provider_env(fakes) -> dict[str, str]:
    """notify-svc's provider API bases and credentials, and ticket-svc's allowed DingTalk session
    webhook origin, all on the session's fakes."""
    wechat, wecom, ding = fakes.wechat, fakes.wecom, fakes.dingtalk
    return {
        "NOTIFY_WECHAT_API_BASE": wechat.base_url, "NOTIFY_WECHAT_APP_ID": wechat.app_id,
        "NOTIFY_WECHAT_APP_SECRET": wechat.secret,
        "NOTIFY_WECOM_API_BASE": wecom.base_url, "NOTIFY_WECOM_CORP_ID": wecom.corp_id,
        "NOTIFY_WECOM_CORP_SECRET": wecom.corp_secret, "NOTIFY_WECOM_OPEN_KFID": wecom.open_kfid,
        "NOTIFY_DINGTALK_API_BASE": ding.base_url, "NOTIFY_DINGTALK_OAPI_BASE": ding.base_url,
        "NOTIFY_DINGTALK_APP_KEY": ding.app_key, "NOTIFY_DINGTALK_APP_SECRET": ding.app_secret,
        "NOTIFY_DINGTALK_ROBOT_CODE": ding.robot_code,
        "TICKET_DINGTALK_WEBHOOK_ORIGINS": json.dumps([ding.base_url]),
    }


class SmtpSink:
    """aiosmtpd handler: every message the stack sends by e-mail, as (envelope recipients, raw bytes)."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], bytes]] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        self.messages.append((list(envelope.rcpt_tos), envelope.original_content))
        return "250 Message accepted for delivery"


@pytest.fixture(scope="session")
def smtp_sink():
    """A real SMTP server on 127.0.0.1 for the whole session, started before the stack so that
    notify-svc gets its SMTP_URL (tests/e2e/test_outbound_email.py reads what arrives)."""
    from aiosmtpd.controller import Controller

    sink = SmtpSink()
    controller = Controller(sink, hostname="127.0.0.1", port=free_port())
    controller.start()
    sink.url = f"smtp://127.0.0.1:{controller.port}?starttls=false"
    try:
        yield sink
    finally:
        controller.stop()


class OtlpSink:
    """An OTLP/HTTP trace receiver on 127.0.0.1 keeping every span it gets in memory: the stack's
    processes export to it (tests/e2e/test_tracing.py reads one trace across the services)."""

    def __init__(self) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest, ExportTraceServiceResponse)

        self.spans: list[dict] = []
        self._lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                sink.add(request)
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def add(self, request) -> None:
        rows = []
        for resource_spans in request.resource_spans:
            service = next((a.value.string_value for a in resource_spans.resource.attributes
                            if a.key == "service.name"), "")
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    rows.append({"service": service, "trace_id": span.trace_id.hex(), "span_id": span.span_id.hex(),
                                 "parent_span_id": span.parent_span_id.hex(), "name": span.name, "kind": span.kind,
                                 "attributes": {a.key: a.value.string_value for a in span.attributes}})
        with self._lock:
            self.spans.extend(rows)

    def trace(self, trace_id: str) -> list[dict]:
        with self._lock:
            return [s for s in self.spans if s["trace_id"] == trace_id]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def tracing_env(sink: OtlpSink) -> dict[str, str]:
    """Every process exports to the sink, records no trace of its own choosing (ratio 0) and follows
    a sampled traceparent, which the gateway takes from its caller here (a trusted proxy in
    production); batches leave every 200 ms."""
    return {"OTEL_EXPORTER_OTLP_ENDPOINT": sink.url, "OTEL_TRACES_SAMPLER_ARG": "0",
            "GATEWAY_TRACE_TRUST_INCOMING": "true", "OTEL_BSP_SCHEDULE_DELAY": "200"}


#: the broker the session's stack runs on: ``embedded`` (tansu, the default) or ``apache-kafka``
#: (one KRaft node, helpdesk_common.apache_kafka): ``make test`` runs tests/e2e/test_erasure.py once
#: more with E2E_BROKER=apache-kafka, where the event log's purge (DeleteRecords) is proven
E2E_BROKER = os.environ.get("E2E_BROKER", "embedded")


@pytest.fixture(scope="session")
def stack(tmp_path_factory, smtp_sink, chat_fakes):
    base = _free_block()
    config = StackConfig(
        data_dir=Path(tmp_path_factory.mktemp("stack")),
        gateway_port=base,
        service_base_port=base,
        pg_port=free_port(),
        # a Kafka node listens on two consecutive ports (clients, controller)
        kafka_port=free_block(2) if E2E_BROKER == "apache-kafka" else free_port(),
        broker=E2E_BROKER,
        kafka_nodes=1,
        ephemeral=True,
        # tansu answers an idle fetch only when the wait is over: 50 ms (the services' default)
        # kept the broker at half a core for the whole session; 200 ms costs about 100 ms per hop
        consumer_fetch_max_wait_ms=200,
        # notify-svc answers from the address customers write to in the tests, and never calls out:
        # webhooks reach only allow-listed literal addresses, and only WEBHOOK_RECEIVER_HOST is
        # allowed, where nothing listens but tests/e2e/test_webhooks.py's receivers (schemathesis
        # subscribes any URL; the stack's own ports on 127.0.0.1 stay refused); the chat
        # providers' APIs are the session's fakes on 127.0.0.1; a reply's retries wait about a
        # second, not minutes (NOTIFY_REPLY_BACKOFF_BASE_S); survey links start with the gateway's
        # URL, where tests/e2e/test_surveys.py's browser opens them, signed with a key of this run
        extra_env={"SMTP_URL": smtp_sink.url, "NOTIFY_SUPPORT_ADDRESSES": "support@example.com",
                   "PUBLIC_BASE_URL": f"http://127.0.0.1:{base}", "CUSTOMER_SURVEY_TOKEN_KEY": secrets.token_urlsafe(48),
                   "NOTIFY_EGRESS_ALLOWLIST_ONLY": "true", "NOTIFY_REPLY_BACKOFF_BASE_S": "0.25",
                   "NOTIFY_WEBHOOK_ALLOW_NETWORKS": f"{WEBHOOK_RECEIVER_HOST}/32",
                   # the knowledge base decides a suggestion with no ticket after 12 s, not an hour,
                   # and looks every second (tests/e2e/test_kb_deflection.py)
                   "KB_DEFLECTION_WINDOW_MINUTES": "0.2", "KB_DEFLECTION_SWEEP_INTERVAL_S": "1",
                   **chat_provider_env(chat_fakes)},
    )
    s = Stack(config)
    try:
        s.creds = s.up()
        yield s
    finally:
        s.stop_all()


@pytest.fixture
async def gw(stack):
    async with httpx.AsyncClient(base_url=stack.creds["gateway_url"], timeout=30) as client:
        yield client


@pytest.fixture
def key_headers(stack):
    return {"Authorization": f"Bearer {stack.creds['channel_api_key']}"}


@pytest.fixture
def email_key_headers(stack):
    """The dev key scoped to the e-mail channel (POST /v1/channels/email/inbound)."""
    return {"Authorization": f"Bearer {stack.creds['email_api_key']}"}


@pytest.fixture
def channel_key_headers(stack):
    """channel kind ("web", "chat", "wechat", "wecom", "dingtalk", "phone") -> that channel's dev key."""
    return {kind: {"Authorization": f"Bearer {key}"} for kind, key in stack.creds["channel_api_keys"].items()}


@pytest.fixture
async def admin_headers(gw, stack):
    """The dev admin's token, signed in once and refreshed before it expires: sign-in is rate
    limited per account and per address, as a real client would be."""
    cached = getattr(stack, "admin_token", None)
    if cached is None or cached["renew_at"] < time.monotonic():
        r = await gw.post("/v1/auth/login", json={"email": stack.creds["admin_email"], "password": stack.creds["admin_password"]})
        assert r.status_code == 200, r.text
        body = r.json()
        cached = {"token": body["access_token"], "renew_at": time.monotonic() + body["expires_in"] / 2}
        stack.admin_token = cached
    return {"Authorization": f"Bearer {cached['token']}"}


@pytest.fixture
async def own_admin_headers(gw, admin_headers):
    """A new admin of this test's own: requests are limited per user (20/s, a burst of 200), so
    a test that sends hundreds of requests spends its own budget, not the shared admin's."""
    email, password = f"admin-{uuid.uuid4().hex[:12]}@example.com", uuid.uuid4().hex
    r = await gw.post("/v1/users", json={"email": email, "name": "Test admin", "role": "admin", "password": password},
                      headers=admin_headers)
    assert r.status_code == 201, r.text
    r = await gw.post("/v1/auth/login", json={"email": email, "password": password})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


@pytest.fixture
async def sql(stack):
    """Run one scalar query on a service's database (to prove what is and is not stored)."""
    engines = {}

    async def run(service: str, query: str, **params):
        if service not in engines:
            engines[service] = create_async_engine(stack.database_url(service))
        async with engines[service].connect() as conn:
            return await conn.scalar(text(query), params)

    yield run
    for e in engines.values():
        await e.dispose()


async def eventually(predicate, timeout=60.0, interval=0.25):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = await predicate()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s (last={last!r})")
