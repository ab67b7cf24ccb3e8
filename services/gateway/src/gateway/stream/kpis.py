"""The live board on the stream: ``event: kpis`` frames for supervisors and admins.

- **Who** (``kpi_scope``, pure): users whose role is in ``GATEWAY_STREAM_KPIS_ROLES`` (admins
  and supervisors by default). Agents get none: their board is the REST call, and a frame
  every second on every agent's stream would multiply the fetches by the number of agents.
- **What**: the document analytics-svc answers ``GET /v1/analytics/kpis?tz=`` for that viewer,
  fetched with the viewer's signed identity, so the scope is analytics-svc's decision, never
  the gateway's. The gateway only re-encodes it on one line.
- **How often** (``KpiPoller``): one poller per scope key per process (``all`` for admins,
  ``<role>:<user id>`` for everyone else, times the zone), started by the first stream that
  needs it and ending at its first tick without a stream. It fetches at most once per
  ``stream_kpis_interval_s`` (never below 1 s) however many streams share it, and wakes them
  only when a figure other than ``as_of`` changed.
- **Per connection** (``KpiSubscription``, pure given a clock): the first board at once (a
  dashboard paints immediately), then the newest board whenever its figures differ from the
  last frame sent on that connection, never two frames closer than the interval. A slow
  client never queues boards: only the newest one is ever written.
- **Outages**: a failed fetch keeps the last board and sends nothing; the poller retries with
  a short backoff and frames resume when analytics-svc answers again. Ticket events never wait
  for any of this.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson
from prometheus_client import Counter, Gauge

from helpdesk_common.identity import IDENTITY_HEADER, IdentitySigner, Principal
from helpdesk_common.problems import Problem

from ..proxy.upstreams import base_url

log = logging.getLogger(__name__)

KPI_EVENT = "kpis"
KPIS_PATH = "/v1/analytics/kpis"
#: the longest pause between fetches while analytics-svc fails (the first retries are sooner)
MAX_BACKOFF_S = 5.0

KPI_FETCHES = Counter("gateway_stream_kpi_fetches_total", "KPI board fetches from analytics-svc", ["outcome"])
KPI_FRAMES_SENT = Counter("gateway_stream_kpi_frames_total", "KPI frames written to live streams")
KPI_POLLERS = Gauge("gateway_stream_kpi_pollers", "KPI pollers running in this process (one per scope and zone)")


# ---- rules (pure) --------------------------------------------------------------------------
_NOT_ZONES = frozenset({"localtime", "posixrules", "Factory"})  # files in the tz database, not places


@functools.cache
def _zone_names() -> frozenset[str]:
    """The zones analytics-svc's ``kpis`` takes (its ``zone_names``): scanned once."""
    return frozenset((zoneinfo.available_timezones() - _NOT_ZONES) | {"UTC"})


def check_tz(name: str) -> str:
    """The zone for the board, refused up front with the problem analytics-svc would give,
    rather than a stream whose board silently never comes."""
    if name in _zone_names():
        return name
    raise Problem(
        422, "validation-error", "Unknown time zone", f"{name!r} is not an IANA time zone.",
        errors=[{"field": "query.tz", "message": "Unknown IANA time zone", "code": "unknown_time_zone"}],
    )


def kpi_roles(setting: str) -> frozenset[str]:
    return frozenset(r.strip() for r in setting.split(",") if r.strip())


def kpi_scope(principal: Principal, roles: frozenset[str]) -> str | None:
    """The key of the board this user sees, or None when their stream carries no board.

    Admins all see the whole board, so they share one; anyone else's board may depend on who
    they are (a supervisor's teams), so it is theirs alone.
    """
    if not principal.is_user or principal.role not in roles:
        return None
    return "all" if principal.role == "admin" else f"{principal.role}:{principal.id}"


def figures_of(document: dict[str, Any]) -> bytes:
    """What "the board changed" compares: every figure but ``as_of`` (which moves with every
    folded event, including ones that change no figure), in a canonical encoding."""
    return orjson.dumps({k: v for k, v in document.items() if k != "as_of"}, option=orjson.OPT_SORT_KEYS)


def kpi_frame(document: dict[str, Any]) -> bytes:
    """No ``id``: a board is a snapshot, not an event to replay, and an ``id`` would move the
    client's Last-Event-ID off the ticket events' sequence (a reconnect gets a fresh board)."""
    return b"event: %s\ndata: %s\n\n" % (KPI_EVENT.encode(), orjson.dumps(document))


@dataclass(frozen=True, slots=True)
class Board:
    """One fetched board: its frame (rendered once per process) and its figures."""

    frame: bytes
    figures: bytes


def board_of(document: dict[str, Any]) -> Board:
    return Board(frame=kpi_frame(document), figures=figures_of(document))


class KpiSubscription:
    """One connection's view of a poller: what it last sent, and when."""

    def __init__(self, poller: KpiPoller, interval_s: float) -> None:
        self.poller = poller
        self.interval_s = interval_s
        self.sent_figures: bytes | None = None
        self.sent_at: float | None = None

    def _changed(self) -> Board | None:
        board = self.poller.board
        if board is None or board.figures == self.sent_figures:
            return None
        return board

    def take(self, now: float) -> bytes | None:
        """The frame to write now, if the board changed and the interval has passed."""
        board = self._changed()
        if board is None or (self.sent_at is not None and now - self.sent_at < self.interval_s):
            return None
        self.sent_figures, self.sent_at = board.figures, now
        return board.frame

    def wait_s(self, now: float) -> float | None:
        """Seconds until a changed board held back by the interval may go out (None: none is)."""
        if self._changed() is None or self.sent_at is None:
            return None
        return max(0.0, self.sent_at + self.interval_s - now)


# ---- polling analytics-svc ---------------------------------------------------------------------
class KpiPoller:
    """One scope's board: fetched at most once per interval while some stream wants it."""

    def __init__(self, *, boards: KpiBoards, key: tuple[str, str], principal: Principal, tz: str) -> None:
        self.boards = boards
        self.key = key
        self.principal = principal  # the first viewer: whose identity the fetch carries when no stream is left
        self.tz = tz
        self.board: Board | None = None
        self.subscribers: set[Any] = set()  # streams: each has a ``wakeup`` event
        self.failures = 0
        self.task: asyncio.Task[None] | None = None

    async def run(self) -> None:
        interval = self.boards.interval_s
        try:
            while True:
                started = time.monotonic()
                await self.poll_once()
                # at most one fetch per interval; after failures, a little longer each time
                pause = max(interval, min(interval * 2 ** (self.failures - 1), MAX_BACKOFF_S)) if self.failures \
                    else interval
                await asyncio.sleep(max(0.0, started + pause - time.monotonic()))
                if not self.subscribers:  # the last stream left during the pause
                    return
        finally:
            self.boards.forget(self)

    def viewer(self) -> Principal:
        """Whose identity the next fetch carries: one of the viewers still watching (for ``all``
        any admin sees the same board), so a board is never asked for in the name of a user
        who has left."""
        for stream in self.subscribers:
            principal = getattr(stream, "principal", None)
            if principal is not None:
                self.principal = principal
                break
        return self.principal

    async def poll_once(self) -> None:
        try:
            document = await self.boards.fetch(self.viewer(), self.tz)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # down, slow or refusing: keep the last board, retry later
            KPI_FETCHES.labels("error").inc()
            self.failures += 1
            if self.failures == 1:
                log.warning("KPI board unavailable", extra={"scope": self.key[0], "error": repr(exc)})
            return
        KPI_FETCHES.labels("ok").inc()
        if self.failures:
            log.info("KPI board available again", extra={"scope": self.key[0], "failures": self.failures})
        self.failures = 0
        previous, self.board = self.board, board_of(document)
        if previous is None or previous.figures != self.board.figures:
            for stream in self.subscribers:
                stream.wakeup.set()


class KpiBoards:
    """The process's pollers by scope key, and the fetch they share."""

    def __init__(self, *, analytics_url: str, signer: IdentitySigner, session: Callable[[], aiohttp.ClientSession],
                 interval_s: float, timeout_s: float, roles: frozenset[str]) -> None:
        self._analytics_url = analytics_url  # one or more replicas (proxy/upstreams.py)
        self._signer = signer
        self._session = session
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.interval_s = max(1.0, interval_s)
        self.roles = roles
        self.pollers: dict[tuple[str, str], KpiPoller] = {}

    def subscribe(self, stream: Any, principal: Principal, tz: str) -> KpiSubscription | None:
        """Attach a stream to its scope's poller (starting one if needed); None: no board."""
        scope = kpi_scope(principal, self.roles)
        if scope is None:
            return None
        key = (scope, tz)
        poller = self.pollers.get(key)
        if poller is None:
            poller = KpiPoller(boards=self, key=key, principal=principal, tz=tz)
            self.pollers[key] = poller
            KPI_POLLERS.inc()
            poller.task = asyncio.create_task(poller.run(), name=f"kpi-poller-{scope}")
        poller.subscribers.add(stream)
        return KpiSubscription(poller, self.interval_s)

    def unsubscribe(self, stream: Any, subscription: KpiSubscription) -> None:
        """The poller notices at its next tick and ends then, so a reconnecting client reuses
        it (and its board) instead of causing a fetch of its own."""
        subscription.poller.subscribers.discard(stream)

    def forget(self, poller: KpiPoller) -> None:
        if self.pollers.get(poller.key) is poller:
            del self.pollers[poller.key]
            KPI_POLLERS.dec()

    async def fetch(self, principal: Principal, tz: str) -> dict[str, Any]:
        headers = {IDENTITY_HEADER: self._signer.token_for(principal), "accept": "application/json"}
        async with self._session().get(base_url(self._analytics_url) + KPIS_PATH, params={"tz": tz}, headers=headers, timeout=self._timeout) as r:
            body = await r.read()
            if r.status != 200:
                raise RuntimeError(f"analytics-svc answered {r.status}")
        document = orjson.loads(body)
        if not isinstance(document, dict):
            raise RuntimeError("analytics-svc answered something other than a KPI document")
        return document

    async def stop(self) -> None:
        tasks = [p.task for p in self.pollers.values() if p.task is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
