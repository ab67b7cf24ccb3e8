"""End-to-end: the real six processes, embedded PostgreSQL and tansu, driven through the gateway."""

import asyncio
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from helpdesk_common.devstack import Stack, StackConfig, free_block, free_port


def pytest_configure(config):
    config.addinivalue_line("markers", "run_last: runs after every other test of the session (it changes "
                                       "the shared stack's data as it pleases)")


def pytest_collection_modifyitems(config, items):
    """``run_last`` tests go to the end, whatever their file's name (tests/e2e/test_schemathesis.py)."""
    items.sort(key=lambda item: item.get_closest_marker("run_last") is not None)


def _free_block(size: int = 6) -> int:
    """A base port with ``size`` consecutive free ports (see devstack.free_block)."""
    return free_block(size)


#: the chat providers' API bases in the test stack: a loopback port nobody listens on (DingTalk
#: session webhooks on other origins are not used), so no reply leaves 127.0.0.0/8
CLOSED_PROVIDER_APIS = {name: "http://127.0.0.1:9" for name in (
    "NOTIFY_WECHAT_API_BASE", "NOTIFY_WECOM_API_BASE", "NOTIFY_DINGTALK_API_BASE", "NOTIFY_DINGTALK_OAPI_BASE")}


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


@pytest.fixture(scope="session")
def stack(tmp_path_factory, smtp_sink):
    base = _free_block()
    config = StackConfig(
        data_dir=Path(tmp_path_factory.mktemp("stack")),
        gateway_port=base,
        service_base_port=base,
        pg_port=free_port(),
        kafka_port=free_port(),
        ephemeral=True,
        # notify-svc answers from the address customers write to in the tests, and never calls out:
        # webhooks reach only allow-listed literal addresses (none here: schemathesis subscribes
        # any URL), the chat providers' APIs are a closed loopback port
        extra_env={"SMTP_URL": smtp_sink.url, "NOTIFY_SUPPORT_ADDRESSES": "support@example.com",
                   "NOTIFY_EGRESS_ALLOWLIST_ONLY": "true", **CLOSED_PROVIDER_APIS},
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
