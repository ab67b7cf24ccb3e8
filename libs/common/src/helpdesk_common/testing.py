"""Pytest plugin: real PostgreSQL and a real Kafka-protocol broker for the test session.

By default the session starts the same embedded PostgreSQL and tansu that ``make run``
uses, on free ports in a temporary directory. ``TEST_DATABASE_URL_BASE`` (e.g.
``postgresql+asyncpg://u:p@host:5432``) and ``KAFKA_BOOTSTRAP_SERVERS`` point it at real
clusters instead. Each test module gets fresh, migrated databases, so tests never see each
other's rows.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .devstack import EmbeddedBroker, EmbeddedPostgres, free_port

if TYPE_CHECKING:
    from .identity import Principal


@dataclass
class Infra:
    db_base: str
    kafka_bootstrap: str
    pg: EmbeddedPostgres | None
    broker: EmbeddedBroker | None

    def new_database(self, package: str) -> str:
        """A fresh database migrated with ``package``'s history; returns its URL."""
        from .migrate import ensure_database, upgrade

        url = f"{self.db_base}/t_{package}_{uuid.uuid4().hex[:10]}"

        def create() -> None:  # own thread: callable from sync and async tests alike
            asyncio.run(ensure_database(url))
            upgrade(package, url)

        with ThreadPoolExecutor(1) as pool:
            pool.submit(create).result()
        return url


@pytest.fixture(scope="session")
def infra(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Infra]:
    db_base = os.environ.get("TEST_DATABASE_URL_BASE")
    kafka = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    root: Path = tmp_path_factory.mktemp("infra")
    pg = None if db_base else EmbeddedPostgres(root / "pg", free_port(), root / "pg.log", ephemeral=True)
    broker = None if kafka else EmbeddedBroker(free_port(), root / "broker.log")
    try:
        if pg:
            pg.start()
        if broker:
            broker.start()
        yield Infra(
            db_base=db_base or pg.url,  # type: ignore[union-attr]
            kafka_bootstrap=kafka or broker.bootstrap,  # type: ignore[union-attr]
            pg=pg,
            broker=broker,
        )
    finally:
        if broker:
            broker.stop()
        if pg:
            pg.stop()


def _test_keypair() -> tuple[str, str]:
    from .identity import generate_keypair

    return generate_keypair()


#: the test session's identity keys (the gateway's private key, the services' public key)
TEST_PRIVATE_KEY, TEST_PUBLIC_KEY = _test_keypair()
#: identity headers made by ``identity_headers`` live this long, and test services accept it
TEST_TOKEN_LIFETIME_S = 24 * 3600


def identity_headers(principal: "Principal") -> dict[str, str]:
    """The signed identity header the gateway would add for ``principal``.

    Tests build these once at import time and a full suite runs for many minutes, so the
    token lives for a day instead of the gateway's five minutes (an expired module-level
    header once failed CI runs that happened to be slow); ``service_env`` raises the services'
    lifetime cap to match — only in tests."""
    from .identity import IDENTITY_HEADER, IdentitySigner

    return {IDENTITY_HEADER: IdentitySigner(TEST_PRIVATE_KEY, ttl_s=TEST_TOKEN_LIFETIME_S).token_for(principal)}


def service_env(monkeypatch: pytest.MonkeyPatch, infra: Infra, prefix: str, database_url: str) -> str:
    """Point a service's settings at the test database and broker; returns the test's
    topic prefix (topics are per test case, so no test sees another's events)."""
    topic_prefix = f"t{uuid.uuid4().hex[:8]}."
    monkeypatch.setenv("KAFKA_TOPIC_PREFIX", topic_prefix)
    monkeypatch.setenv(f"{prefix}DATABASE_URL", database_url)
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", infra.kafka_bootstrap)
    monkeypatch.setenv("INTERNAL_AUTH_PUBLIC_KEY", TEST_PUBLIC_KEY)
    monkeypatch.setenv("INTERNAL_AUTH_PRIVATE_KEY", TEST_PRIVATE_KEY)  # read by the gateway only
    monkeypatch.setenv("INTERNAL_TOKEN_MAX_LIFETIME_S", str(TEST_TOKEN_LIFETIME_S))
    monkeypatch.setenv(f"{prefix}RELAY_POLL_INTERVAL_S", "0.2")
    monkeypatch.setenv("API_DOCS_ENABLED", "true")  # as in the dev stack: tests read the API document
    return topic_prefix


class running_app:
    """``async with running_app(app) as client``: lifespan entered, httpx over ASGI."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self._lifespan: Any = None
        self.client: Any = None

    async def __aenter__(self) -> Any:
        import httpx

        self._lifespan = self.app.router.lifespan_context(self.app)
        await self._lifespan.__aenter__()
        self.client = httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://svc")
        return self.client

    async def __aexit__(self, *exc: Any) -> None:
        await self.client.aclose()
        await self._lifespan.__aexit__(*exc)


async def wait_for(predicate: Any, timeout: float = 30.0, interval: float = 0.1) -> Any:
    """Poll an async predicate until it returns something truthy (bounded in time)."""
    import time

    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = await predicate()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s (last={last!r})")


async def produce(bootstrap: str, topic_prefix: str, *evts: Any) -> None:
    """Publish events to their topics (key = subject), as another service's relay would."""
    from aiokafka import AIOKafkaProducer

    from . import events

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for e in evts:
            await producer.send_and_wait(
                topic_prefix + events.TOPIC_BY_TYPE[e.type], events.encode(e), key=e.subject.encode()
            )
    finally:
        await producer.stop()
