"""A bound on concurrent password hashing.

argon2 is memory-hard on purpose: each verification holds tens of MiB for tens of
milliseconds. Run unbounded in the thread pool (40 threads), an anonymous login flood holds
40 of them at once and takes the gateway past its container's memory limit while starving
every other request of CPU. The gate lets ``concurrency`` computations run, queues at most
``max_waiting`` more for at most ``wait_s``, and refuses the rest at once (503), so memory is
bounded by ``concurrency × argon2 memory`` whatever arrives.

The computations run on a pool of exactly ``concurrency`` threads of their own, not in the
shared thread pool: glibc gives each thread its own malloc arena and keeps freed argon2
buffers there, so 40 pool threads that each once verified a password kept 40 × 19 MiB
(measured: +266 MiB after a flood; +~40 MiB with the dedicated threads).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from prometheus_client import Counter

from helpdesk_common.problems import Problem

T = TypeVar("T")

PASSWORD_HASH_REFUSED = Counter(
    "gateway_password_hash_refused_total", "Password hashing refused because the gate was full", ["reason"]
)


def busy() -> Problem:
    return Problem(503, "busy", "Busy", "Too many sign-ins at once; retry in a moment.", headers={"Retry-After": "1"})


class HashingGate:
    def __init__(self, *, concurrency: int, max_waiting: int, wait_s: float) -> None:
        self._slots = asyncio.Semaphore(max(1, concurrency))
        self._threads = ThreadPoolExecutor(max(1, concurrency), thread_name_prefix="password-hash")
        self._max_waiting = max(0, max_waiting)
        self._wait_s = wait_s
        self._waiting = 0

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` on the gate's threads once a slot is free; 503 when the queue is full
        or the wait too long. A cancelled request frees its slot at once, but its computation
        still occupies one of the ``concurrency`` threads, so the memory bound holds."""
        if self._slots.locked() and self._waiting >= self._max_waiting:
            PASSWORD_HASH_REFUSED.labels("queue_full").inc()
            raise busy()
        self._waiting += 1
        try:
            async with asyncio.timeout(self._wait_s):
                await self._slots.acquire()
        except TimeoutError:
            PASSWORD_HASH_REFUSED.labels("wait_timeout").inc()
            raise busy() from None
        finally:
            self._waiting -= 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._threads, fn, *args)
        finally:
            self._slots.release()

    def close(self) -> None:
        self._threads.shutdown(wait=False, cancel_futures=True)
