"""The live board on GET /v1/stream, with the real analytics-svc (its consumer on the test
broker, its database migrated, served by uvicorn on 127.0.0.1) behind the gateway.

Tickets are published to the broker as ticket-svc's relay would, so both the gateway's stream
consumer and analytics-svc's fold see them (as in test_stream.py). analytics-svc's requests for
the board are counted by a thin wrapper that records who asked and when."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from helpdesk_common import events
from helpdesk_common.devstack import free_port
from helpdesk_common.identity import IDENTITY_HEADER, IdentityVerifier
from helpdesk_common.testing import TEST_PUBLIC_KEY

from .conftest import SseReader, new_gateway, serve, user_token

pytestmark = pytest.mark.timeout(240)


@dataclass
class Analytics:
    """Where analytics-svc listens, and the board requests it received: (monotonic time, user id)."""

    url: str
    port: int
    database_url: str
    requests: list[tuple[float, str]] = field(default_factory=list)

    def fetches_by(self, user_id: str) -> list[float]:
        return [t for t, who in self.requests if who == user_id]


def counting(app: Any, seen: Analytics) -> Any:
    verifier = IdentityVerifier(TEST_PUBLIC_KEY)

    async def wrapped(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == "/v1/analytics/kpis":
            headers = dict(scope["headers"])
            token = headers.get(IDENTITY_HEADER.lower().encode(), b"").decode()
            seen.requests.append((time.monotonic(), verifier.verify(token).id if token else "-"))
        await app(scope, receive, send)

    return wrapped


@contextlib.asynccontextmanager
async def serve_analytics(seen: Analytics) -> AsyncIterator[None]:
    """analytics-svc, API and consumer, on ``seen.port`` (so it can be stopped and started again)."""
    from analytics_svc.config import Settings
    from analytics_svc.main import create_app

    app = create_app(Settings())
    async with serve(counting(app, seen), port=seen.port):
        yield


@pytest.fixture
def analytics(infra: Any, gateway_env: str, ticket_svc: Any, monkeypatch: pytest.MonkeyPatch) -> Analytics:
    """analytics-svc's settings on this test's broker topics (the gateway's prefix) and database,
    asking the ticket-svc stand-in for a supervisor's teams; the gateway pointed at it."""
    database_url = infra.new_database("analytics_svc")
    monkeypatch.setenv("ANALYTICS_TICKET_URL", ticket_svc.url)
    monkeypatch.setenv("ANALYTICS_DATABASE_URL", database_url)
    monkeypatch.setenv("ANALYTICS_RELAY_POLL_INTERVAL_S", "0.2")
    port = free_port()
    monkeypatch.setenv("GATEWAY_ANALYTICS_URL", f"http://127.0.0.1:{port}")
    return Analytics(url=f"http://127.0.0.1:{port}", port=port, database_url=database_url)


def created(*, team: uuid.UUID | None = None) -> Any:
    tid = uuid.uuid4()
    return events.TicketCreated(source="ticket-svc", subject=str(tid), data=events.TicketCreatedData(
        ticket_id=tid, subject="打印机坏了", status="new", priority="normal", requester=events.Requester(email="a@b.co"),
        created_by="channel:k", created_at=datetime.now(UTC), team_id=team))


@contextlib.asynccontextmanager
async def producer(bootstrap: str) -> AsyncIterator[Any]:
    """One producer for the whole test, so a publish is a send, not a connection set-up."""
    kafka = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await kafka.start()
    try:
        yield kafka
    finally:
        await kafka.stop()


async def publish(kafka: Any, prefix: str, *evts: Any) -> None:
    for e in evts:
        await kafka.send_and_wait(prefix + events.TOPIC_BY_TYPE[e.type], events.encode(e), key=e.subject.encode())


class Frames:
    """Every frame of an SSE reader, stamped when it arrived (drained by a task of its own, so a
    test busy publishing does not shift the times), and read in order by the test."""

    def __init__(self, client: httpx.AsyncClient, path: str, headers: dict[str, str]) -> None:
        self.reader = SseReader(client, path, headers)
        self.seen: list[tuple[float, dict[str, Any]]] = []
        self._read = 0
        self._arrived = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Frames:
        await self.reader.__aenter__()
        self._task = asyncio.create_task(self._drain())
        return self

    async def __aexit__(self, *exc: Any) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        await self.reader.__aexit__(*exc)

    async def _drain(self) -> None:
        while True:
            frame = await self.reader.queue.get()
            if set(frame) != {"comment"}:
                self.seen.append((time.monotonic(), frame))
                self._arrived.set()

    async def next(self, timeout: float) -> dict[str, Any]:
        async with asyncio.timeout(timeout):
            while self._read >= len(self.seen):
                self._arrived.clear()
                await self._arrived.wait()
        frame = self.seen[self._read][1]
        self._read += 1
        assert "eof" not in frame and "error" not in frame, (frame, self.seen[-5:])
        return frame

    def arrived(self) -> float:
        """When the frame last returned by ``next`` arrived."""
        return self.seen[self._read - 1][0]

    async def until(self, predicate: Any, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            frame = await self.next(max(0.01, deadline - time.monotonic()))
            if predicate(frame):
                return frame

    def boards(self) -> list[tuple[float, dict[str, Any]]]:
        return [(t, f) for t, f in self.seen if f.get("event") == "kpis"]


def is_board(frame: dict[str, Any]) -> bool:
    return frame.get("event") == "kpis"


def created_today(n: int) -> Any:
    return lambda f: is_board(f) and f["json"]["tickets_created_today"] == n


def ticket_event(e: Any) -> Any:
    return lambda f: f.get("event") == "ticket.created" and f["json"]["ticket_id"] == str(e.data.ticket_id)


async def test_a_supervisor_gets_the_board_at_once_then_within_2s_of_a_change_never_closer_than_1s(
        infra, gateway_env, ticket_svc, analytics):
    team = uuid.uuid4()
    agent_id, agent = user_token("agent")
    supervisor_id, supervisor = user_token("supervisor")
    ticket_svc.teams[agent_id] = ticket_svc.teams[supervisor_id] = [str(team)]  # the supervisor's board: their team
    async with serve_analytics(analytics), serve(new_gateway()) as (url, _), \
            httpx.AsyncClient(base_url=url, timeout=30) as client, producer(infra.kafka_bootstrap) as kafka:
        async with Frames(client, "/v1/stream", supervisor) as sup, Frames(client, "/v1/stream", agent) as agt:
            assert await sup.next(10) == {"retry": "3000"}
            first = await sup.next(10)  # painted at once, before any event
            assert first["event"] == "kpis" and "id" not in first
            assert {"tickets_created_today", "open_tickets", "as_of", "tz"} <= set(first["json"])
            assert first["json"]["tz"] == "UTC"
            base = first["json"]["tickets_created_today"]

            # the first ticket also waits for analytics-svc's consumer to join its group
            warm_up = created(team=team)
            await publish(kafka, gateway_env, warm_up)
            await sup.until(created_today(base + 1), 60)

            change = created(team=team)
            sent = time.monotonic()
            await publish(kafka, gateway_env, change)
            await sup.until(created_today(base + 2), 10)
            assert sup.arrived() - sent <= 2.0, "the board moved more than 2 s after the ticket was published"

            # a burst of 50 tickets over about 2 s: the board changes many times, frames at most once a second
            for _ in range(10):
                await publish(kafka, gateway_env, *(created(team=team) for _ in range(5)))
                await asyncio.sleep(0.2)
            await sup.until(created_today(base + 52), 30)

            # the agent saw every ticket of their team and no board at all
            last = created(team=team)
            await publish(kafka, gateway_env, last)
            await agt.until(ticket_event(last), 30)
            await sup.until(ticket_event(last), 30)

    boards = sup.boards()
    counts = [f["json"]["tickets_created_today"] for _, f in boards]
    assert counts[0] == base and counts[-1] == base + 52 and counts == sorted(counts)
    after_burst = [c for c in counts if base + 2 < c]
    assert len(after_burst) >= 2, counts  # the burst was seen as several changes: the limit was exercised
    gaps = [later - earlier for (earlier, _), (later, _) in zip(boards, boards[1:])]
    assert min(gaps) >= 0.95, gaps  # arrival times: a few ms of jitter on a 1 s rule
    # a frame only when a figure other than as_of changed
    figures = [{k: v for k, v in f["json"].items() if k != "as_of"} for _, f in boards]
    assert all(a != b for a, b in zip(figures, figures[1:]))
    assert agt.boards() == [] and not any(f.get("event") == "kpis" for _, f in agt.seen)
    assert sum(1 for _, f in agt.seen if f.get("event") == "ticket.created") == 53


async def test_one_fetch_per_second_per_scope_however_many_streams(infra, gateway_env, ticket_svc, analytics):
    supervisor_id, supervisor = user_token("supervisor")
    ticket_svc.teams[supervisor_id] = [str(uuid.uuid4())]
    admin_1, admin_1_headers = user_token("admin")
    admin_2, admin_2_headers = user_token("admin")
    app = new_gateway()
    async with serve_analytics(analytics), serve(app) as (url, _), httpx.AsyncClient(base_url=url, timeout=30) as client:
        async with contextlib.AsyncExitStack() as streams:
            readers = [await streams.enter_async_context(Frames(client, "/v1/stream", headers))
                       for headers in [supervisor] * 5 + [admin_1_headers, admin_2_headers]]
            for reader in readers:  # every stream gets the board at once
                assert await reader.next(10) == {"retry": "3000"}
                assert (await reader.next(15))["event"] == "kpis"
            assert set(app.state.kpi_boards.pollers) == {(f"supervisor:{supervisor_id}", "UTC"), ("all", "UTC")}
            window_start = time.monotonic()
            await asyncio.sleep(4.5)
            window_end = time.monotonic()
        # all streams closed: each poller ends at its next tick
        for _ in range(100):  # each poller ends at its next tick (1 s; up to 10 s on a loaded machine)
            if not app.state.kpi_boards.pollers:
                break
            await asyncio.sleep(0.1)
        assert app.state.kpi_boards.pollers == {}
        quiet_since = len(analytics.requests)
        await asyncio.sleep(1.5)
        assert len(analytics.requests) == quiet_since  # nobody polls for nobody

    by_supervisor = analytics.fetches_by(supervisor_id)
    by_admins = analytics.fetches_by(admin_1) + analytics.fetches_by(admin_2)
    assert len(analytics.requests) == len(by_supervisor) + len(by_admins)
    # the admins' fetches carry an admin's identity: all admins share one board (and one fetch a second)
    assert {who for _, who in analytics.requests if who != supervisor_id} <= {admin_1, admin_2}
    for times in (by_supervisor, sorted(by_admins)):
        gaps = [b - a for a, b in zip(times, times[1:])]
        # fetches start a second apart; seen at analytics, one delayed in transit on a loaded
        # machine shortens the gap after it (measured in CI: 2.47 s then 0.10 s), but never two
        # gaps in a row, whereas five streams fetching each would give four gaps near 0 a second
        short = [gap < 0.6 for gap in gaps]
        assert gaps and not any(a and b for a, b in zip(short, short[1:])), gaps
        assert sum(short) <= max(1, len(gaps) // 3), gaps
        in_window = [t for t in times if window_start <= t <= window_end]
        # ~4.5 fetches in 4.5 s, for 5 streams (or 2): the ceiling is the claim. A loaded runner
        # where a fetch times out (2 s) sees fewer: the poller then backs off up to 5 s, so a
        # 4.5 s window may hold none (CI saw that once); that it polls at all is ``gaps`` above
        assert len(in_window) <= 6, in_window


async def test_the_stream_outlives_analytics_and_the_board_comes_back(infra, gateway_env, ticket_svc, analytics):
    team = uuid.uuid4()
    supervisor_id, supervisor = user_token("supervisor")
    ticket_svc.teams[supervisor_id] = [str(team)]
    async with serve(new_gateway()) as (url, _), httpx.AsyncClient(base_url=url, timeout=30) as client, \
            producer(infra.kafka_bootstrap) as kafka:
        # the zone is checked before the stream opens, as analytics-svc checks it
        bad = await client.get("/v1/stream?tz=Mars/Olympus", headers=supervisor)
        assert bad.status_code == 422 and bad.headers["content-type"] == "application/problem+json"
        assert bad.json()["errors"][0]["field"] == "query.tz"

        async with Frames(client, "/v1/stream?tz=Asia/Shanghai", supervisor) as sup:
            async with serve_analytics(analytics):
                assert await sup.next(10) == {"retry": "3000"}
                # a fetch slower than the 2 s timeout backs off (up to 5 s): a loaded runner may
                # need several (CI: two fetches, 6 s apart, no board within 15 s)
                first = await sup.until(is_board, 60)
                assert first["json"]["tz"] == "Asia/Shanghai"
                base = first["json"]["tickets_created_today"]
                warm_up = created(team=team)
                await publish(kafka, gateway_env, warm_up)
                await sup.until(created_today(base + 1), 60)
            # analytics-svc is gone: ticket events keep coming, the stream stays open
            during = created(team=team)
            await publish(kafka, gateway_env, during)
            got = await sup.until(ticket_event(during), 30)
            assert got["json"]["data"]["subject"] == "打印机坏了"
            boards_while_down = len(sup.boards())
            await asyncio.sleep(2.5)
            after = created(team=team)
            await publish(kafka, gateway_env, after)
            await sup.until(ticket_event(after), 30)
            assert len(sup.boards()) == boards_while_down  # nothing new to show
            # back: the tickets it missed are folded, and the board says so
            async with serve_analytics(analytics):
                await sup.until(created_today(base + 3), 60)
