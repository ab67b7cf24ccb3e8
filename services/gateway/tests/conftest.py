"""Gateway tests: the real database and broker (``infra``), the gateway served by uvicorn on
127.0.0.1 (SSE needs a real server: httpx's ASGI transport buffers whole responses), and a
tiny stand-in for ticket-svc that answers ``GET /v1/agents/me``, ``GET /v1/agents`` and the user provisioning call
(``PUT /internal/users/{id}``) and echoes everything else, so forwarding can be observed without
the real service."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from gateway.auth.keys import SigningKeys, new_key_spec
from helpdesk_common.devstack import free_port
from helpdesk_common.pii_crypto import new_settings
from helpdesk_common.identity import IDENTITY_HEADER, IdentityVerifier
from helpdesk_common.testing import TEST_PUBLIC_KEY, service_env

#: the gateway's signing keyring in these tests (auth/keys.py); SIGNING_KEYS.sign(claims) makes a token
SIGNING_KEY_SPEC = new_key_spec("test-1")
SIGNING_KEYS = SigningKeys.from_settings(SIGNING_KEY_SPEC)
#: the gateway's keyring for secrets at rest (TOTP secrets)
PII_KEYS = new_settings("GATEWAY_")["GATEWAY_PII_KEYS"]


@contextlib.asynccontextmanager
async def serve(app: Any, *, lifespan: str = "on", port: int | None = None) -> AsyncIterator[tuple[str, uvicorn.Server]]:
    """Serve ``app`` on 127.0.0.1 in this event loop (on ``port``, e.g. to restart a service
    where its clients expect it; else a free one); stopped (bounded) on exit."""
    port = port or free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, lifespan=lifespan, log_config=None,
                            loop="asyncio", timeout_graceful_shutdown=3,
                            # a test's client may hold a pooled connection idle for seconds on a loaded
                            # runner: uvicorn's 5 s default closed it under the client (a ReadError)
                            timeout_keep_alive=120)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(30):
            while not server.started:
                if task.done():
                    task.result()
                    raise RuntimeError("server exited during start-up")
                await asyncio.sleep(0.05)
        yield f"http://127.0.0.1:{port}", server
    finally:
        server.should_exit = True
        async with asyncio.timeout(30):
            await task


@dataclass
class FakeTicketSvc:
    """What the stand-in saw and what it answers."""

    url: str = ""
    teams: dict[str, list[str]] = field(default_factory=dict)  # user id -> team ids
    me_calls: list[str] = field(default_factory=list)
    forwarded: list[dict[str, Any]] = field(default_factory=list)
    #: user provisioning calls: {"user_id", "caller" (principal ref), "event" (the user event)}
    provisioned: list[dict[str, Any]] = field(default_factory=list)
    down: bool = False


def fake_ticket_app(state: FakeTicketSvc) -> FastAPI:
    app = FastAPI()
    verifier = IdentityVerifier(TEST_PUBLIC_KEY)

    @app.get("/v1/agents/me")
    async def me(request: Request) -> JSONResponse:
        principal = verifier.verify(request.headers[IDENTITY_HEADER])  # signed, as the proxy does
        state.me_calls.append(principal.id)
        if state.down:
            return JSONResponse({"detail": "down"}, status_code=503)
        if principal.id not in state.teams:
            return JSONResponse({"detail": "no agent profile"}, status_code=404)
        return JSONResponse({"id": principal.id, "team_ids": state.teams[principal.id], "status": "online"})

    @app.get("/v1/agents")
    async def agents(request: Request) -> JSONResponse:
        """The agent directory, as analytics-svc asks it for a supervisor's team members."""
        verifier.verify(request.headers[IDENTITY_HEADER])
        if state.down:
            return JSONResponse({"detail": "down"}, status_code=503)
        return JSONResponse([{"id": uid, "team_ids": teams, "status": "online"} for uid, teams in state.teams.items()])

    @app.put("/internal/users/{user_id}")
    async def provision(user_id: str, request: Request) -> JSONResponse:
        principal = verifier.verify(request.headers[IDENTITY_HEADER])
        if state.down:
            return JSONResponse({"detail": "down"}, status_code=503)
        event = orjson.loads(await request.body())
        state.provisioned.append({"user_id": user_id, "caller": principal.ref, "event": event})
        return JSONResponse({"id": user_id, "display_name": event["data"]["display_name"], "team_ids": []})

    @app.api_route("/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"], include_in_schema=False)
    async def echo(path: str, request: Request) -> JSONResponse:
        principal = verifier.verify(request.headers[IDENTITY_HEADER])
        body = await request.body()
        seen = {"path": "/" + path, "method": request.method, "kind": principal.kind,
                "channel": principal.channel, "body_bytes": len(body)}
        state.forwarded.append(seen)
        return JSONResponse(seen, status_code=299)

    return closing_after_500(app)


def closing_after_500(app: Any) -> Any:
    """``/v1/tickets/explode`` answers 500 and then fails as an unhandled error does: uvicorn
    logs it and closes the keep-alive connection a moment after the response went out, with
    whatever request the client had sent on it meanwhile (``/v1/tickets/slow``, still being
    worked on) unanswered."""

    async def wrapped(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == "/v1/tickets/explode":
            await send({"type": "http.response.start", "status": 500,
                        "headers": [(b"content-type", b"application/problem+json")]})
            await send({"type": "http.response.body", "body": b'{"status": 500}'})
            await asyncio.sleep(0.05)
            raise RuntimeError("boom")
        if scope["type"] == "http" and scope["path"] == "/v1/tickets/slow":
            await asyncio.sleep(0.2)
        await app(scope, receive, send)

    return wrapped


@pytest.fixture
async def ticket_svc() -> AsyncIterator[FakeTicketSvc]:
    state = FakeTicketSvc()
    async with serve(fake_ticket_app(state), lifespan="off") as (url, _server):
        state.url = url
        yield state


@pytest.fixture
def gateway_db(infra: Any) -> str:
    return infra.new_database("gateway")


@pytest.fixture
def gateway_env(infra: Any, gateway_db: str, ticket_svc: FakeTicketSvc, monkeypatch: pytest.MonkeyPatch) -> str:
    """Environment for gateway apps of this test; returns the topic prefix."""
    topics = service_env(monkeypatch, infra, "GATEWAY_", gateway_db)
    monkeypatch.setenv("GATEWAY_SIGNING_KEYS", SIGNING_KEY_SPEC)
    monkeypatch.setenv("GATEWAY_PII_KEYS", PII_KEYS)
    monkeypatch.setenv("GATEWAY_TICKET_URL", ticket_svc.url)
    monkeypatch.setenv("GATEWAY_STREAM_KEEPALIVE_S", "1")
    # no analytics-svc here (nothing listens on the discard port): streams carry no KPI board
    # unless a test serves one (test_stream_kpis.py)
    monkeypatch.setenv("GATEWAY_ANALYTICS_URL", "http://127.0.0.1:9")
    _USERS_DB["url"] = gateway_db
    return topics


#: the gateway database of the running test: user tokens need an active user row behind them
_USERS_DB: dict[str, str] = {}


def _register_user(user_id: uuid.UUID, role: str, session_id: uuid.UUID) -> None:
    """Insert the user and a live session synchronously (tokens are made in sync helpers inside
    async tests)."""
    import asyncio
    import re
    import threading

    import asyncpg

    url = _USERS_DB.get("url")
    if url is None:
        return

    async def insert() -> None:
        conn = await asyncpg.connect(re.sub(r"^postgresql\+\w+://", "postgresql://", url))
        try:
            await conn.execute(
                "INSERT INTO users (id, email, password_hash, role) VALUES ($1, $2, 'not-a-hash', $3) "
                "ON CONFLICT (id) DO UPDATE SET role = EXCLUDED.role", user_id, f"{user_id.hex}@example.com", role)
            await conn.execute(
                "INSERT INTO sessions (id, user_id, refresh_hash, expires_at) "
                "VALUES ($1, $2, $3, now() + interval '1 day')", session_id, user_id, session_id.hex)
        finally:
            await conn.close()

    thread = threading.Thread(target=lambda: asyncio.run(insert()))
    thread.start()
    thread.join(30)


def new_gateway() -> Any:
    from gateway.config import Settings
    from gateway.main import create_app

    return create_app(Settings())


def user_token(role: str, user_id: str | None = None) -> tuple[str, dict[str, str]]:
    """(user id, Authorization header) for a local-issuer token."""
    from gateway.auth import security

    uid = uuid.UUID(user_id) if user_id else uuid.uuid4()
    sid = uuid.uuid4()
    _register_user(uid, role, sid)
    token = security.issue_access_token(keys=SIGNING_KEYS, issuer="helpdesk-local", ttl_s=3600, user_id=uid,
                                        role=role, email=f"{uid.hex[:8]}@example.com", session_id=sid)
    return str(uid), {"Authorization": f"Bearer {token}"}


class SseReader:
    """Reads one SSE response into a queue of parsed frames (bounded waits)."""

    def __init__(self, client: httpx.AsyncClient, path: str, headers: dict[str, str]) -> None:
        self.client = client
        self.path = path
        self.headers = headers
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.response: httpx.Response | None = None
        self._cm: Any = None
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> SseReader:
        self._cm = self.client.stream("GET", self.path, headers=self.headers)
        async with asyncio.timeout(20):
            self.response = await self._cm.__aenter__()
        if self.response.status_code == 200:
            self._task = asyncio.create_task(self._read())
        return self

    async def _read(self) -> None:
        assert self.response is not None
        frame: dict[str, Any] = {}
        try:
            async for line in self.response.aiter_lines():
                if line == "":
                    if frame:
                        if "data" in frame:
                            frame["json"] = orjson.loads(frame["data"])
                        await self.queue.put(frame)
                    frame = {}
                elif line.startswith(":"):
                    frame["comment"] = line[1:].strip()
                else:
                    name, _, value = line.partition(":")
                    frame[name] = value[1:] if value.startswith(" ") else value
            await self.queue.put({"eof": True})
        except Exception as exc:  # noqa: BLE001 - reported to the test
            await self.queue.put({"error": repr(exc)})

    async def next(self, timeout: float = 30.0, *, skip_comments: bool = True) -> dict[str, Any]:
        async with asyncio.timeout(timeout):
            while True:
                frame = await self.queue.get()
                if skip_comments and set(frame) == {"comment"}:
                    continue
                return frame

    async def until_event(self, predicate: Any, timeout: float = 30.0) -> list[dict[str, Any]]:
        """Every event frame up to and including the first one matching ``predicate``."""
        seen: list[dict[str, Any]] = []
        async with asyncio.timeout(timeout):
            while True:
                frame = await self.next(timeout)
                assert "eof" not in frame and "error" not in frame, (frame, seen)
                if "event" in frame:
                    seen.append(frame)
                    if predicate(frame):
                        return seen

    async def __aexit__(self, *exc: Any) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task
        with contextlib.suppress(Exception):
            async with asyncio.timeout(10):
                await self._cm.__aexit__(*exc)


@pytest.fixture
def sse() -> Any:
    return SseReader
