"""Access tokens of the provider APIs (WeChat, WeCom, DingTalk), fetched once and shared.

All three providers hand out a bearer token valid for about two hours and rate-limit the token
endpoint itself (WeChat counts ``/cgi-bin/token`` calls against a daily quota, and a new token
invalidates the previous one after a grace period), so a token is fetched once per account and
kept until shortly before it expires, and concurrent sends wait for the same fetch rather than
each asking for a token of their own.

A provider can still reject a cached token early (another process of the same account fetched a
new one, an operator reset the secret). ``invalidate(token)`` forgets the token only if it is
still the cached one, so that N sends failing with the same stale token cause one refresh, not N.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from .base import SendResult

#: refresh this long before the provider's ``expires_in`` (or at half-life for short tokens)
DEFAULT_REFRESH_MARGIN_S = 300.0


#: a token lifetime the provider did not state usably (all three document two hours)
DEFAULT_LIFETIME_S = 7200.0
#: never keep a token longer than this, whatever the provider says
MAX_LIFETIME_S = 86_400.0


def lifetime_s(value: object) -> float:
    """The provider's ``expires_in`` as seconds to keep the token: a finite positive number
    (capped at a day), else the documented two hours."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return DEFAULT_LIFETIME_S
    if not 0 < value < float("inf"):  # also false for NaN
        return DEFAULT_LIFETIME_S
    return min(float(value), MAX_LIFETIME_S)


class TokenUnavailable(Exception):
    """The token endpoint refused or failed; ``result`` is what the send answers instead
    (``permanent`` for bad credentials, ``transient`` for an outage)."""

    def __init__(self, result: SendResult) -> None:
        super().__init__(result.reason)
        self.result = result


#: ``fetch(refused)``: ``refused`` is the token the provider just refused, ``None`` for a plain
#: expiry (WeChat's stable-token endpoint may hand the refused token back and must then be asked
#: to force a new one)
TokenFetcher = Callable[[str | None], Awaitable[tuple[str, float]]]


class TokenCache:
    """One account's token. ``fetch(refused)`` returns ``(token, expires_in seconds)`` or raises
    ``TokenUnavailable``."""

    def __init__(
        self,
        fetch: TokenFetcher,
        *,
        clock: Callable[[], float] = time.monotonic,
        refresh_margin_s: float = DEFAULT_REFRESH_MARGIN_S,
    ) -> None:
        self._fetch = fetch
        self._clock = clock
        self._refresh_margin_s = refresh_margin_s
        self._token: str | None = None
        self._valid_until = 0.0
        self._lock = asyncio.Lock()
        self._refused: str | None = None
        self.fetches = 0

    def _current(self) -> str | None:
        if self._token is not None and self._clock() < self._valid_until:
            return self._token
        return None

    async def get(self) -> str:
        token = self._current()
        if token is not None:
            return token
        async with self._lock:
            token = self._current()  # another waiter fetched it meanwhile
            if token is not None:
                return token
            self.fetches += 1
            token, expires_in = await self._fetch(self._refused)
            self._refused = None
            margin = min(self._refresh_margin_s, max(expires_in, 0.0) / 2)
            self._token = token
            self._valid_until = self._clock() + max(expires_in, 0.0) - margin
            return token

    def invalidate(self, token: str) -> None:
        """Forget ``token`` if it is still the cached one (see the module docstring)."""
        if self._token == token:
            self._token = None
            self._valid_until = 0.0
            self._refused = token
