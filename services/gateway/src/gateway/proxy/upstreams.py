"""A service's replicas behind one setting: ``GATEWAY_TICKET_URL=http://10.0.0.5:8082,http://10.0.0.6:8082``.

On Kubernetes a Service spreads the gateway's connections over the replicas; on machines without
one (two VMs, the fault suite's scale-out stack) the gateway does it itself:

- each request goes to the next replica in turn (round-robin: the replicas are alike, requests are
  short, and pooled keep-alive connections make a connection per replica cheap);
- a replica that refused a connection (nothing of the request was sent) is skipped for
  ``DOWN_S`` seconds, and the request is sent to the next one at once — also a POST, since the
  refused replica never saw it; after ``DOWN_S`` it is tried again by the next request that comes
  its way (passive health: no probe traffic);
- when every replica is marked down, they are tried anyway (the marks may be stale), so a service
  that came back is found by the first request.

One setting holding one URL behaves exactly as before. Pure bookkeeping, no I/O: the forwarding
hop (``forwarding.forward``) and the gateway's own calls (user provisioning, the stream's KPI and
agent lookups) ask ``upstream_of(setting).order()`` and report refusals with ``down``.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from functools import lru_cache

from prometheus_client import Counter

#: how long a replica that refused a connection is skipped
DOWN_S = 5.0

UPSTREAM_FAILOVERS = Counter("gateway_upstream_failovers_total",
                             "Requests sent to another replica because one refused the connection", ["service"])


def parse_urls(setting: str) -> tuple[str, ...]:
    """The replicas' base URLs of a ``*_URL`` setting (comma-separated, trailing slashes dropped,
    duplicates kept once); ValueError for an empty list or a URL that is not http(s)."""
    urls = tuple(dict.fromkeys(u.strip().rstrip("/") for u in setting.split(",") if u.strip()))
    if not urls:
        raise ValueError("names no URL")
    for url in urls:
        scheme, sep, rest = url.partition("://")
        if not sep or scheme not in ("http", "https") or not rest or any(ch.isspace() for ch in rest):
            raise ValueError(f"{url!r} is not an http(s) base URL")
    return urls


class Upstream:
    """The replicas of one service, their turn and their down marks (one per process and setting)."""

    __slots__ = ("urls", "_turn", "_down_until", "_clock")

    def __init__(self, urls: tuple[str, ...], *, clock: Callable[[], float] = time.monotonic) -> None:
        self.urls = urls
        self._turn = itertools.count()
        self._down_until: dict[str, float] = {}
        self._clock = clock

    @property
    def single(self) -> bool:
        return len(self.urls) == 1

    def order(self) -> list[str]:
        """The replicas to try for one request: those not marked down, starting at the next in
        turn (so the live ones share the load evenly whoever is down), then the marked ones (a
        last resort, oldest mark first)."""
        if len(self.urls) == 1:
            return [self.urls[0]]
        now = self._clock()
        up = [u for u in self.urls if self._down_until.get(u, 0.0) <= now]
        down = sorted((u for u in self.urls if self._down_until.get(u, 0.0) > now), key=self._down_until.__getitem__)
        if up:
            start = next(self._turn) % len(up)
            up = up[start:] + up[:start]
        return up + down

    def down(self, url: str) -> None:
        """``url`` refused a connection: skip it for ``DOWN_S``."""
        if len(self.urls) > 1:
            self._down_until[url] = self._clock() + DOWN_S

    def up(self, url: str) -> None:
        """``url`` answered: any mark is stale."""
        if self._down_until:
            self._down_until.pop(url, None)


@lru_cache(maxsize=64)
def upstream_of(setting: str) -> Upstream:
    """The process's ``Upstream`` for a setting's value (shared by every route that names it)."""
    return Upstream(parse_urls(setting))


def base_url(setting: str) -> str:
    """The replica the gateway's own next call to this service goes to (in turn, skipping those
    marked down by the forwarding hop)."""
    return upstream_of(setting).order()[0]
