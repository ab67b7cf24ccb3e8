"""Pytest plugin: real PostgreSQL and a real Kafka-protocol broker for the test session.

By default the session starts the same embedded PostgreSQL and tansu that ``make run``
uses, on free ports in a temporary directory. ``TEST_DATABASE_URL_BASE`` (e.g.
``postgresql+asyncpg://u:p@host:5432``) and ``KAFKA_BOOTSTRAP_SERVERS`` point it at real
clusters instead. Each test module gets fresh, migrated databases, so tests never see each
other's rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
import warnings
from concurrent.futures import ThreadPoolExecutor
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import pytest

from .devstack import EmbeddedBroker, EmbeddedPostgres, free_port
from .pii_crypto import new_settings as new_pii_settings

if TYPE_CHECKING:
    from .identity import Principal


@dataclass
class Infra:
    db_base: str
    kafka_bootstrap: str
    pg: EmbeddedPostgres | None
    broker: EmbeddedBroker | None
    #: every database ``new_database`` made, in order; the per-test fixture drops a test's own
    created: list[str] = field(default_factory=list)
    #: package -> name of the session's migrated template of it
    templates: dict[str, str] = field(default_factory=dict)
    session_tag: str = field(default_factory=lambda: uuid.uuid4().hex[:6])

    #: the session's infras; a list rather than the fixture so the cleanup fixture never starts one
    live: ClassVar[list["Infra"]] = []

    def revive_broker(self) -> str | None:
        """Start the session's embedded broker again, on the same port, if it has exited; what
        happened, for the test report (None when it is alive or not ours).

        A CI run lost one worker's tansu ~50 minutes in (connections refused, then a broker
        without topics on its port), and every later test of that worker failed on it. A third-
        party binary's death is not the code under test: a fresh broker (topics are created again
        by whoever uses them) lets the remaining tests test the code, and the warning keeps the
        exit code and the log's tail in the report."""
        broker = self.broker
        if broker is None or broker.proc is None or broker.proc.poll() is None:
            return None
        code = broker.proc.returncode
        try:
            tail = broker.log_path.read_text(errors="replace")[-1500:]
        except OSError:
            tail = ""
        broker.proc = None
        broker.start()
        return f"the session's embedded broker had exited (code {code}) and was restarted; its log ended: {tail}"

    def new_database(self, package: str) -> str:
        """A fresh database migrated with ``package``'s history; returns its URL.

        The first call per package migrates a template; every later one copies it with
        ``CREATE DATABASE ... TEMPLATE``, a file copy of tens of milliseconds instead of a whole
        Alembic history per test (twenty-odd migrations for ticket-svc)."""
        name = f"t_{package}_{uuid.uuid4().hex[:10]}"

        def create() -> None:  # own thread: callable from sync and async tests alike
            template = self.templates.get(package)
            if template is None:
                template = f"tmpl_{package}_{self.session_tag}"
                template_url = f"{self.db_base}/{template}"
                asyncio.run(ensure_database(template_url))
                upgrade(package, template_url)
                self.templates[package] = template
            asyncio.run(_admin(self.db_base, f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))

        from .migrate import ensure_database, upgrade

        with ThreadPoolExecutor(1) as pool:
            pool.submit(create).result()
        self.created.append(name)
        return f"{self.db_base}/{name}"

    def drop_databases_since(self, mark: int) -> None:
        """Drop the databases made after ``created[mark]``: a run makes thousands, and kept they
        filled a CI disk (several GB per worker). FORCE ends a connection a test left open."""
        doomed, self.created[mark:] = self.created[mark:], []
        if not doomed:
            return

        async def drop() -> None:
            for name in doomed:
                await _admin(self.db_base, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

        with ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, drop()).result()


async def _admin(db_base: str, statement: str) -> None:
    """One statement on the cluster's ``postgres`` database, outside a transaction."""
    import asyncpg
    from sqlalchemy.engine import make_url

    url = make_url(f"{db_base}/postgres")
    conn = await asyncpg.connect(host=url.host, port=url.port, user=url.username, password=url.password,
                                 database="postgres")
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


@pytest.fixture(autouse=True)
def _drop_test_databases() -> Iterator[None]:
    """Drops the databases a test made once all its fixtures are torn down (autouse fixtures of
    a scope are set up first, so torn down last)."""
    for infra in Infra.live:
        revived = infra.revive_broker()
        if revived:
            warnings.warn(revived, RuntimeWarning, stacklevel=1)
    marks = {id(infra): len(infra.created) for infra in Infra.live}
    yield
    for infra in Infra.live:
        infra.drop_databases_since(marks.get(id(infra), 0))


@pytest.fixture(scope="session")
def infra(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Infra]:
    db_base = os.environ.get("TEST_DATABASE_URL_BASE")
    kafka = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    root: Path = tmp_path_factory.mktemp("infra")
    pg = None if db_base else EmbeddedPostgres(root / "pg", free_port(), root / "pg.log", ephemeral=True)
    broker = None if kafka else EmbeddedBroker(free_port(), root / "broker.log")
    made: Infra | None = None
    try:
        if pg:
            pg.start()
        if broker:
            broker.start()
        made = Infra(
            db_base=db_base or pg.url,  # type: ignore[union-attr]
            kafka_bootstrap=kafka or broker.bootstrap,  # type: ignore[union-attr]
            pg=pg,
            broker=broker,
        )
        Infra.live.append(made)
        yield made
    finally:
        if made is not None:
            Infra.live.remove(made)
            if not pg:  # a shared cluster outlives the session: leave nothing behind on it
                made.drop_databases_since(0)
                made.created.extend(made.templates.values())
                made.drop_databases_since(0)
        if broker:
            broker.stop()
        if pg:
            pg.stop()


def _hypothesis_profile() -> None:
    """No per-example deadline and no "too slow" health check for property tests: on a 2-core
    runner shared by two test workers, PostgreSQL and a broker, one example can take longer than
    Hypothesis' default 200 ms for reasons that have nothing to do with the code (a property
    test then fails as flaky). Hangs are caught by pytest-timeout instead."""
    try:
        from hypothesis import HealthCheck, settings
    except ImportError:  # pragma: no cover - hypothesis is in requirements-dev.txt
        return
    settings.register_profile("helpdesk", deadline=None, suppress_health_check=[HealthCheck.too_slow])
    settings.load_profile("helpdesk")


_hypothesis_profile()

#: ``user_properties`` name of the lines the ``report`` fixture leaves for the terminal summary
_REPORT = "helpdesk_report"


@pytest.fixture
def report(request: pytest.FixtureRequest) -> Any:
    """``report(line, section=...)``: a measured line for the end of the run's output (a matrix's
    cell count, a fire lag, a precision@5). Carried in the test's own report (``user_properties``),
    so it reaches the terminal from pytest-xdist's workers too, where ``print`` and a module-level
    list would stay in the worker."""

    def add(line: str, section: str = "measured in this run") -> None:
        request.node.user_properties.append((_REPORT, (section, line)))

    return add


#: test directories whose files share one worker: tests/e2e starts the whole stack once per worker
#: session (tests/e2e/conftest.py), so one worker runs all of it on one stack
STACK_TEST_DIRS = ("tests/e2e/",)


def pytest_configure(config: pytest.Config) -> None:
    """Apps built in the test process leave the garbage collector as Python has it: the suite
    starts thousands of them, and a full collection of its heap at each start would cost more
    than it saves (gc_tuning.py). A test that measures the setting sets it itself."""
    os.environ.setdefault("GC_YOUNG_THRESHOLD", "0")


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """``--dist loadfile`` with the end-to-end files as one unit, sent first.

    Plain loadfile sends files biggest-first by test count, so the end-to-end files (a few tests
    each, every one waiting on the stack for seconds) came late, to both workers, and each started
    a stack of its own: fourteen service processes and two brokers on 2 cores, where the tests'
    waits timed out. As one unit, first, they run on one worker and one stack from the start while
    the other worker takes the per-service files."""
    if config.getoption("dist", None) != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class StackFirstScheduling(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return "stack" if nodeid.startswith(STACK_TEST_DIRS) else super()._split_scope(nodeid)

        def _assign_work_unit(self, node: Any) -> None:
            if "stack" in self.workqueue:
                self.workqueue.move_to_end("stack", last=False)
            super()._assign_work_unit(node)

    return StackFirstScheduling(config, log)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Every ``report`` line of the run, grouped by section, in the order the tests finished."""
    sections: dict[str, list[str]] = {}
    for reports in terminalreporter.stats.values():
        for rep in reports:
            if getattr(rep, "when", None) != "call":  # the setup and teardown reports repeat the lines
                continue
            for name, value in getattr(rep, "user_properties", ()):
                if name == _REPORT:
                    section, line = value
                    sections.setdefault(section, []).append(line)
    for section, lines in sections.items():
        terminalreporter.write_sep("-", section)
        for line in lines:
            terminalreporter.write_line(line)


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


#: this test session's personal-data keys of the services that keep a requester's or customer's
#: data encrypted and do not start without them (one set per session: a process configures once)
SESSION_PII_ENV: dict[str, dict[str, str]] = {"TICKET_": new_pii_settings("TICKET_")}


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
    for name, value in SESSION_PII_ENV.get(prefix, {}).items():  # services that do not start without keys
        monkeypatch.setenv(name, value)
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


class serving:
    """``async with serving(app) as url``: ``app`` served by uvicorn on 127.0.0.1 (a free port)
    in this event loop, for a service that another one calls over HTTP in a test; stopped
    (bounded) on exit."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self._server: Any = None
        self._task: Any = None

    async def __aenter__(self) -> str:
        import uvicorn

        port = free_port()
        self._server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=port, lifespan="on",
                                                     log_config=None, loop="asyncio", timeout_graceful_shutdown=3,
                                                     timeout_keep_alive=120))  # see gateway tests' serve
        self._task = asyncio.create_task(self._server.serve())
        async with asyncio.timeout(30):
            while not self._server.started:
                if self._task.done():
                    self._task.result()
                    raise RuntimeError("server exited during start-up")
                await asyncio.sleep(0.05)
        return f"http://127.0.0.1:{port}"

    async def __aexit__(self, *exc: Any) -> None:
        self._server.should_exit = True
        async with asyncio.timeout(30):
            await self._task


class ticket_svc_with_two_teams:
    """``async with ticket_svc_with_two_teams(infra, monkeypatch, agent_a=..., agent_b=...) as (url,
    ticket_id)``: the real ticket-svc on 127.0.0.1 on a database of its own, with team A (agent A),
    team B (agent B) and a ticket of team A that agent B may not read: for services that ask
    ticket-svc whether a caller may read a ticket (helpdesk_common.ticket_access)."""

    def __init__(self, infra: Infra, monkeypatch: pytest.MonkeyPatch, *, agent_a: str, agent_b: str) -> None:
        self.infra, self.monkeypatch, self.agents = infra, monkeypatch, {"A": agent_a, "B": agent_b}
        self._serving: serving | None = None

    async def __aenter__(self) -> tuple[str, str]:
        import httpx
        from sqlalchemy import text
        from sqlalchemy.ext.asyncio import create_async_engine

        from .identity import Principal

        database = self.infra.new_database("ticket_svc")
        service_env(self.monkeypatch, self.infra, "TICKET_", database)
        self.monkeypatch.setenv("TICKET_CONSUMERS_ENABLED", "false")
        self.monkeypatch.setenv("TICKET_RELAY_ENABLED", "false")
        engine = create_async_engine(database)
        async with engine.begin() as conn:
            for agent in self.agents.values():
                await conn.execute(text("INSERT INTO user_projection (id, display_name, role, active, version) "
                                        "VALUES (:id, :id, 'agent', true, 1)"), {"id": agent})
        await engine.dispose()
        from ticket_svc.config import Settings
        from ticket_svc.main import create_app

        self._serving = serving(create_app(Settings()))
        url = await self._serving.__aenter__()
        admin = identity_headers(Principal(kind="user", id=str(uuid.uuid4()), role="admin"))
        async with httpx.AsyncClient(base_url=url) as tickets:
            teams = {}
            for name, agent in self.agents.items():
                r = await tickets.put(f"/v1/agents/{agent}", json={"display_name": name}, headers=admin)
                assert r.status_code == 200, r.text
                r = await tickets.post("/v1/teams", json={"name": name, "strategy": "manual", "members": [agent]},
                                       headers=admin)
                assert r.status_code == 201, r.text
                teams[name] = r.json()["id"]
            channel = identity_headers(Principal(kind="channel", id=str(uuid.uuid4()), channel="api"))
            r = await tickets.post("/v1/tickets", json={"subject": "团队 A 的工单", "requester": {"email": "a@example.com"}},
                                   headers=channel)
            assert r.status_code == 201, r.text
            ticket_id = r.json()["id"]
            r = await tickets.patch(f"/v1/tickets/{ticket_id}", json={"team_id": teams["A"]}, headers=admin)
            assert r.status_code == 200, r.text
            other = identity_headers(Principal(kind="user", id=self.agents["B"], role="agent"))
            assert (await tickets.get(f"/v1/tickets/{ticket_id}", headers=other)).status_code == 404
        return url, ticket_id

    async def __aexit__(self, *exc: Any) -> None:
        if self._serving is not None:
            await self._serving.__aexit__(*exc)


@contextlib.asynccontextmanager
async def counting_raw_pool(url: str, *, size: int = 1) -> AsyncIterator[Any]:
    """A raw asyncpg pool on ``url`` (``db.create_raw_pool``) behind the getter an
    ``OutboxRelay(raw_pool=...)`` takes; ``getter.asked`` counts the passes that asked for it
    (proof that a test ran the raw path)."""
    from .db import create_raw_pool

    pool = await create_raw_pool(url, size=size)

    def getter() -> Any:
        getter.asked += 1  # type: ignore[attr-defined]
        return pool

    getter.asked = 0  # type: ignore[attr-defined]
    try:
        yield getter
    finally:
        await pool.close()
