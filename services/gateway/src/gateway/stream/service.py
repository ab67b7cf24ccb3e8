"""The live stream's rules and machinery.

- **Visibility** (``Viewer`` / ``may_see``, pure): admins and supervisors see every event; an
  agent sees an event when they are its assignee (or, for ``ticket.assigned``, the previous
  assignee), when its team (or previous team) is one of their teams, or when its ticket has no
  team (the triage queue) — the rule REST applies (ticket-svc ``tickets/policy.py``). Internal notes are no
  exception: the ticket's team and assignee see them like any other event. Channel keys never
  stream (the endpoint answers 403 before any of this runs).
- **Teams** (``TeamDirectory``): an agent's teams come from ticket-svc ``GET /v1/agents/me``,
  called with the signed internal identity exactly like the proxy; cached 30 s per user, and
  when ticket-svc cannot answer the stream goes on with the cached (or an empty) list rather
  than failing — a stream must not depend on ticket-svc being up.
- **Wake-up** (``StreamHub``): one LISTEN connection per process. A NOTIFY (sent by the
  consumer's transaction, so only after commit) makes the hub read the new rows once for the
  whole process into a bounded in-memory ring and wake every open stream; a live stream
  filters the ring in memory, so an idle stream costs no query and an event costs one query per
  process, not one per stream. A stream that is behind the ring (a resume, a slow client)
  reads its own bounded batches from the table. While the LISTEN connection is down the hub
  polls every ``stream_fallback_poll_s`` and, once it reconnects, catches up.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import signal
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
import asyncpg
import orjson
from prometheus_client import Counter, Gauge
from sqlalchemy import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from helpdesk_common.identity import IDENTITY_HEADER, IdentitySigner, Principal
from helpdesk_common.observability import request_id_var

from ..config import Settings
from ..proxy.upstreams import base_url
from . import repository
from .kpis import KPI_FRAMES_SENT, KpiBoards, KpiSubscription

log = logging.getLogger(__name__)

OPEN_STREAMS = Gauge("gateway_open_streams", "Open live-stream (SSE) connections in this process")
STREAM_EVENTS_SENT = Counter("gateway_stream_events_sent_total", "Events written to live streams")
STREAM_NOTIFY_RECONNECTS = Counter("gateway_stream_listen_reconnects_total", "LISTEN connection (re)connects")

SEES_ALL_ROLES = frozenset({"admin", "supervisor"})
RESET_EVENT = "stream.reset"


# ---- visibility (pure) -------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Viewer:
    """Whose stream this is, reduced to what the filter needs."""

    user_id: str
    sees_all: bool
    team_ids: frozenset[str]


def viewer_of(principal: Principal, team_ids: Iterable[str] = ()) -> Viewer:
    return Viewer(user_id=principal.id, sees_all=principal.role in SEES_ALL_ROLES,
                  team_ids=frozenset(str(t) for t in team_ids))


@dataclass(frozen=True, slots=True)
class StreamRow:
    """One stored event, with its SSE frame rendered once for every stream of the process."""

    seq: int
    type: str
    team_id: str | None
    assignee_id: str | None
    previous_team_id: str | None
    previous_assignee_id: str | None
    frame: bytes


def may_see(viewer: Viewer, row: StreamRow) -> bool:
    if viewer.sees_all:
        return True
    if viewer.user_id in (row.assignee_id, row.previous_assignee_id):
        return True
    teams = viewer.team_ids
    if row.team_id is None:  # the triage queue: every agent reads it, as in REST
        return True
    return row.team_id in teams or (
        row.previous_team_id is not None and row.previous_team_id in teams
    )


# ---- SSE frames (pure) -------------------------------------------------------------------
def _str(value: Any) -> str | None:
    return None if value is None else str(value)


def render_frame(*, seq: int, type: str, ticket_id: Any, team_id: Any, assignee_id: str | None,
                 payload: Any, occurred_at: datetime) -> bytes:
    """``id`` / ``event`` / ``data`` with compact JSON (orjson never emits a newline)."""
    data = orjson.dumps({
        "type": type, "ticket_id": _str(ticket_id), "team_id": _str(team_id), "assignee_id": assignee_id,
        "data": payload, "time": occurred_at,
    })
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (seq, type.encode(), data)


def stream_row(row: Any) -> StreamRow:
    """A database row (repository._COLUMNS) as a StreamRow."""
    return StreamRow(
        seq=row.seq, type=row.type, team_id=_str(row.team_id), assignee_id=row.assignee_id,
        previous_team_id=_str(row.previous_team_id), previous_assignee_id=row.previous_assignee_id,
        frame=render_frame(seq=row.seq, type=row.type, ticket_id=row.ticket_id, team_id=row.team_id,
                           assignee_id=row.assignee_id, payload=row.payload, occurred_at=row.occurred_at),
    )


def reset_frame(*, resume_after: int, reason: str) -> bytes:
    """Tells the client it missed events it will not get (refetch lists), and where we go on."""
    data = orjson.dumps({"type": RESET_EVENT, "reason": reason, "resume_after": resume_after,
                         "time": datetime.now(UTC)})
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (resume_after, RESET_EVENT.encode(), data)


def retry_frame(retry_ms: int) -> bytes:
    return b"retry: %d\n\n" % retry_ms


KEEPALIVE_FRAME = b": keep-alive\n\n"


# ---- an agent's teams ----------------------------------------------------------------------
class TeamDirectory:
    """Agent → team ids, from ticket-svc, cached per user; never fails a stream."""

    def __init__(self, *, ticket_url: str, signer: IdentitySigner, session: Callable[[], aiohttp.ClientSession],
                 ttl_s: float, timeout_s: float) -> None:
        self._ticket_url = ticket_url  # one or more replicas (proxy/upstreams.py)
        self._signer = signer
        self._session = session
        self._ttl_s = ttl_s
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._cache: dict[str, tuple[frozenset[str], float]] = {}
        self._inflight: dict[str, asyncio.Task[frozenset[str]]] = {}

    async def viewer(self, principal: Principal) -> Viewer:
        if principal.role in SEES_ALL_ROLES:
            return viewer_of(principal)
        return viewer_of(principal, await self.teams_of(principal))

    async def teams_of(self, principal: Principal) -> frozenset[str]:
        cached = self._cache.get(principal.id)
        if cached is not None and cached[1] > time.monotonic():
            return cached[0]
        task = self._inflight.get(principal.id)
        if task is None:  # one call per user however many streams ask at once
            task = asyncio.create_task(self._fetch(principal), name="agent-teams")
            self._inflight[principal.id] = task
            task.add_done_callback(lambda _t, uid=principal.id: self._inflight.pop(uid, None))
        return await asyncio.shield(task)

    async def _fetch(self, principal: Principal) -> frozenset[str]:
        stale = self._cache.get(principal.id)
        headers = {IDENTITY_HEADER: self._signer.token_for(principal), "accept": "application/json"}
        rid = request_id_var.get()
        if rid:
            headers["x-request-id"] = rid
        ttl = self._ttl_s
        try:
            async with self._session().get(base_url(self._ticket_url) + "/v1/agents/me", headers=headers, timeout=self._timeout) as r:
                if r.status == 200:
                    body = await r.json(content_type=None)
                    teams = frozenset(str(t) for t in (body.get("team_ids") or []))
                elif r.status == 404:  # no agent profile: no teams
                    teams = frozenset()
                else:
                    raise RuntimeError(f"ticket-svc answered {r.status}")
        except Exception as exc:  # unreachable or broken: keep streaming with what we know
            log.warning("agent teams unavailable, using cached", extra={"user": principal.id, "error": repr(exc)})
            teams = stale[0] if stale is not None else frozenset()
            ttl = min(ttl, 5.0)  # retry soon rather than after a full TTL
        if len(self._cache) > 100_000:
            self._cache.clear()
        self._cache[principal.id] = (teams, time.monotonic() + ttl)
        return teams


# ---- the per-process hub -------------------------------------------------------------------
def asyncpg_dsn(database_url: str) -> str:
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


class StreamHub:
    """LISTEN connection, shared tail of recent rows, open streams, pruning."""

    def __init__(self, *, settings: Settings, engine: AsyncEngine,
                 raw_connection: Callable[[], contextlib.AbstractAsyncContextManager[Any]]) -> None:
        self.settings = settings
        self.engine = engine
        #: a bare asyncpg connection of the runtime's raw pool, for the tail's read (once per
        #: NOTIFY: a SQLAlchemy connection's checkout and return cost more than the read)
        self._raw_connection = raw_connection
        self.streams: set[Stream] = set()
        #: every row with seq > floor and <= tail is in ``ring`` (None until first loaded)
        self.tail: int | None = None
        self.floor: int = 0
        self.ring: collections.deque[StreamRow] = collections.deque(maxlen=settings.stream_ring_size)
        self.listening = False
        self._kick = asyncio.Event()
        self._refresh_lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        self._listen_conn: Any = None
        self._closing = False

    # lifecycle
    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._listen_loop(), name="stream-listen"),
            asyncio.create_task(self._refresh_loop(), name="stream-refresh"),
            asyncio.create_task(self._fallback_poll_loop(), name="stream-fallback-poll"),
            asyncio.create_task(self._prune_loop(), name="stream-prune"),
        ]

    async def stop(self) -> None:
        self._closing = True
        self.close_all("shutdown")
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._close_listen_conn()

    # streams
    def register(self, stream: Stream) -> None:
        self.streams.add(stream)
        OPEN_STREAMS.inc()

    def unregister(self, stream: Stream) -> None:
        if stream in self.streams:
            self.streams.discard(stream)
            OPEN_STREAMS.dec()

    def close_all(self, reason: str) -> None:
        """End every open stream cleanly (shutdown): each finishes its response and returns."""
        for stream in list(self.streams):
            stream.close(reason)

    def _wake_all(self) -> None:
        for stream in self.streams:
            stream.wakeup.set()

    def rows_after(self, after: int, limit: int) -> list[StreamRow]:
        """Ring rows with seq > after (the caller checked ``floor <= after``), oldest first."""
        newer: list[StreamRow] = []
        for row in reversed(self.ring):
            if row.seq <= after:
                break
            newer.append(row)
        newer.reverse()
        return newer[:limit]

    # reading the tail
    def kick(self) -> None:
        self._kick.set()

    async def refresh(self) -> None:
        """Load rows after ``tail`` into the ring (all of them, in bounded queries), then wake."""
        async with self._refresh_lock:
            async with self._raw_connection() as conn:
                if self.tail is None:
                    self.tail = self.floor = await repository.newest_seq(conn)
                else:
                    while True:
                        rows = await repository.rows_after(conn, after=self.tail, limit=500)
                        for row in rows:
                            if len(self.ring) == self.ring.maxlen:
                                self.floor = self.ring[0].seq  # about to drop it
                            self.ring.append(stream_row(row))
                        if rows:
                            self.tail = rows[-1].seq
                        if len(rows) < 500:
                            break
        self._wake_all()

    async def current_tail(self) -> int:
        """The newest seq (for a stream starting at "now")."""
        if self.tail is not None:
            return self.tail
        async with self.engine.connect() as conn:
            return await repository.newest_seq(conn)

    async def _refresh_loop(self) -> None:
        while True:
            await self._kick.wait()
            self._kick.clear()
            try:
                await self.refresh()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("stream refresh failed", extra={"error": repr(exc)})
                await asyncio.sleep(1.0)
                self._kick.set()

    def _on_notify(self, _conn: Any, _pid: int, _channel: str, _payload: str) -> None:
        self._kick.set()

    async def _listen_loop(self) -> None:
        """One dedicated connection per process; reconnects with backoff, catches up after."""
        dsn = asyncpg_dsn(self.settings.database_url)
        channel = self.settings.stream_notify_channel
        backoff = 0.2
        while not self._closing:
            try:
                conn = await asyncpg.connect(dsn, timeout=5)
                self._listen_conn = conn
                lost = asyncio.Event()
                conn.add_termination_listener(lambda _c: lost.set())
                await conn.add_listener(channel, self._on_notify)
                self.listening = True
                STREAM_NOTIFY_RECONNECTS.inc()
                self._kick.set()  # anything committed while we were not listening
                backoff = 0.2
                while not lost.is_set():
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(15):
                            await lost.wait()
                    if not lost.is_set():  # a half-open socket only shows when used
                        async with asyncio.timeout(5):
                            await conn.fetchval("SELECT 1")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("stream LISTEN connection lost", extra={"error": repr(exc)})
            finally:
                self.listening = False
                await self._close_listen_conn()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 5.0)

    async def _close_listen_conn(self) -> None:
        conn, self._listen_conn = self._listen_conn, None
        if conn is not None and not conn.is_closed():
            try:
                async with asyncio.timeout(2):
                    await conn.close()
            except Exception:
                conn.terminate()

    async def _fallback_poll_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.stream_fallback_poll_s)
            if not self.listening:
                self._kick.set()

    async def prune_once(self) -> int:
        retention = self.settings.stream_retention_s
        async with self.engine.begin() as conn:
            # the inbox outlives the rows: a redelivered event older than the retention is
            # dropped by the handler anyway, a younger one must still be recognised
            return await repository.prune(conn, older_than_s=retention, inbox_older_than_s=2 * retention)

    async def _prune_loop(self) -> None:
        await asyncio.sleep(min(60.0, self.settings.stream_prune_interval_s))
        while True:
            try:
                gone = await self.prune_once()
                if gone:
                    log.info("pruned stream events", extra={"rows": gone})
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("stream prune failed", extra={"error": repr(exc)})
            await asyncio.sleep(self.settings.stream_prune_interval_s)


# ---- one open stream -------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class StartPoint:
    """Where a stream begins: the cursor, what to replay first, and an optional reset."""

    cursor: int
    replay: list[bytes]
    reset: bytes | None = None


class Stream:
    """One client's stream: a cursor into ``stream_events`` and a wake-up event."""

    def __init__(self, *, hub: StreamHub, directory: TeamDirectory, principal: Principal, start: StartPoint,
                 kpis: KpiBoards | None = None, tz: str = "UTC") -> None:
        self.hub = hub
        self.directory = directory
        self.principal = principal
        self.start = start
        self.kpis = kpis  # the live board's pollers (stream/kpis.py); None: no board on this stream
        self.tz = tz
        self.last = start.cursor
        self.wakeup = asyncio.Event()
        self.closed = False
        self.close_reason: str | None = None

    def close(self, reason: str) -> None:
        if not self.closed:
            self.closed = True
            self.close_reason = reason
            self.wakeup.set()

    async def frames(self) -> AsyncIterator[bytes]:
        """Chunks to write: retry hint, reset, replay, then live batches, KPI boards and keep-alives."""
        kpi = self.kpis.subscribe(self, self.principal, self.tz) if self.kpis is not None else None
        try:
            async with contextlib.aclosing(self._frames(kpi)) as chunks:
                async for chunk in chunks:
                    yield chunk
        finally:
            if kpi is not None and self.kpis is not None:
                self.kpis.unsubscribe(self, kpi)

    async def _frames(self, kpi: KpiSubscription | None) -> AsyncIterator[bytes]:
        settings = self.hub.settings
        deadline = time.monotonic() + settings.stream_max_duration_s
        yield retry_frame(settings.stream_retry_ms)
        if self.start.reset is not None:
            yield self.start.reset
        if self.start.replay:
            STREAM_EVENTS_SENT.inc(len(self.start.replay))
            yield b"".join(self.start.replay)
        while not self.closed:
            self.wakeup.clear()
            if kpi is not None:
                board = kpi.take(time.monotonic())
                if board is not None:
                    KPI_FRAMES_SENT.inc()
                    yield board
            tail = self.hub.tail
            if tail is not None and tail > self.last:
                try:
                    batch = await self._next_batch(tail)
                except Exception as exc:  # the client reconnects and resumes from its last id
                    log.warning("stream read failed, closing", extra={"error": repr(exc)})
                    return
                if batch:
                    STREAM_EVENTS_SENT.inc(len(batch))
                    yield b"".join(batch)
                continue
            now = time.monotonic()
            left = deadline - now
            if left <= 0:
                return
            wait = min(settings.stream_keepalive_s, left)
            board_due = kpi.wait_s(now) if kpi is not None else None
            try:
                async with asyncio.timeout(wait if board_due is None else min(wait, board_due)):
                    await self.wakeup.wait()
            except TimeoutError:
                # a board held back by the rate limit is due: it goes out on the next turn
                if (board_due is None or board_due >= wait) and time.monotonic() < deadline:
                    yield KEEPALIVE_FRAME

    async def _next_batch(self, tail: int) -> list[bytes]:
        """One bounded batch after the cursor: from the ring when it reaches back far enough,
        else from the table (with the visibility filter in SQL)."""
        limit = self.hub.settings.stream_batch_size
        viewer = await self.directory.viewer(self.principal)  # teams refresh with the cache
        if self.hub.floor <= self.last:
            rows = self.hub.rows_after(self.last, limit)
            self.last = rows[-1].seq if rows else tail
            return [r.frame for r in rows if may_see(viewer, r)]
        async with self.hub.engine.connect() as conn:
            found = await repository.visible_rows(
                conn, after=self.last, upto=tail, sees_all=viewer.sees_all, user_id=viewer.user_id,
                team_ids=_uuids(viewer.team_ids), limit=limit,
            )
        self.last = found[-1].seq if len(found) == limit else tail
        return [stream_row(r).frame for r in found]


def _uuids(values: Iterable[str]) -> list[uuid.UUID]:
    out = []
    for v in values:
        with contextlib.suppress(ValueError):
            out.append(uuid.UUID(v))
    return out


async def start_point(*, hub: StreamHub, viewer: Viewer, last_event_id: int | None) -> StartPoint:
    """Resume semantics (docs/stream.md).

    No id: start at "now". An id: replay every visible event after it, at most
    ``stream_replay_max`` (the newest ones, after a ``stream.reset`` saying some were
    skipped); an id older than the retention starts at the oldest kept row after a
    ``stream.reset``; an id this database never issued starts at "now" after a reset.
    """
    settings = hub.settings
    if last_event_id is None:
        return StartPoint(cursor=await hub.current_tail(), replay=[])
    async with hub.engine.connect() as conn:
        oldest, newest, issued = await repository.bounds(conn)
        upto = newest or 0
        if last_event_id > issued:
            return StartPoint(cursor=upto, replay=[], reset=reset_frame(resume_after=upto, reason="unknown-id"))
        after, reason = last_event_id, None
        if (oldest is not None and last_event_id < oldest - 1) or (oldest is None and last_event_id < issued):
            after, reason = (oldest - 1 if oldest is not None else upto), "expired"
        limit = settings.stream_replay_max
        rows = await repository.visible_rows(
            conn, after=after, upto=upto, sees_all=viewer.sees_all, user_id=viewer.user_id,
            team_ids=_uuids(viewer.team_ids), limit=limit + 1, newest=True,
        )
    if len(rows) > limit:
        skipped_to = rows[0].seq
        rows = rows[1:]
        after, reason = skipped_to, reason or "too-many"
    reset = reset_frame(resume_after=after, reason=reason) if reason else None
    return StartPoint(cursor=upto, replay=[stream_row(r).frame for r in rows], reset=reset)


# ---- shutdown ---------------------------------------------------------------------------------
@contextlib.contextmanager
def close_streams_on_exit_signals(hub: StreamHub, signals: tuple[int, ...] = (signal.SIGINT, signal.SIGTERM)) -> Any:
    """End open streams as soon as the server is told to stop.

    uvicorn waits for open responses before it runs the lifespan shutdown, and an SSE
    response never ends on its own, so without this every stop would wait for the graceful
    timeout and then cut the streams. We chain onto the handler the server installed (only in
    the main thread, only when there is a Python handler to chain to) and restore it after.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    loop = asyncio.get_running_loop()
    installed: dict[int, Any] = {}
    for sig in signals:
        previous = signal.getsignal(sig)
        if not callable(previous):
            continue

        def handler(signum: int, frame: Any, previous: Any = previous) -> None:
            loop.call_soon_threadsafe(hub.close_all, "shutdown")
            previous(signum, frame)

        signal.signal(sig, handler)
        installed[sig] = (handler, previous)
    try:
        yield
    finally:
        for sig, (handler, previous) in installed.items():
            if signal.getsignal(sig) is handler:
                signal.signal(sig, previous)
