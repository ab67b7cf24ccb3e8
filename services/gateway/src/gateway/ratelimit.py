"""In-process token buckets (per gateway replica; several replicas multiply the limits)."""

from __future__ import annotations

import time
from collections import OrderedDict


class TokenBuckets:
    """One bucket per key; the least recently used buckets are dropped past ``max_keys``.

    Dropping the oldest rather than clearing all matters under attack: a flood of new keys
    (random e-mails, forged API keys) must not reset the buckets of the keys being limited.
    """

    def __init__(self, rate_per_s: float, burst: int, max_keys: int = 100_000) -> None:
        self.rate = rate_per_s
        self.burst = float(burst)
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def take(self, key: str) -> float:
        """0.0 if allowed, else the seconds to wait before retrying."""
        if self.rate <= 0:
            return 0.0
        now = time.monotonic()
        buckets = self._buckets
        state = buckets.get(key)
        if state is None:
            if len(buckets) >= self.max_keys:
                buckets.popitem(last=False)
            tokens = self.burst
        else:
            buckets.move_to_end(key)
            tokens = min(self.burst, state[0] + (now - state[1]) * self.rate)
        if tokens >= 1.0:
            buckets[key] = (tokens - 1.0, now)
            return 0.0
        buckets[key] = (tokens, now)
        return (1.0 - tokens) / self.rate

    def peek(self, key: str) -> float:
        """The wait ``take`` would answer, without spending a token."""
        if self.rate <= 0 or (state := self._buckets.get(key)) is None:
            return 0.0
        tokens = min(self.burst, state[0] + (time.monotonic() - state[1]) * self.rate)
        return 0.0 if tokens >= 1.0 else (1.0 - tokens) / self.rate
