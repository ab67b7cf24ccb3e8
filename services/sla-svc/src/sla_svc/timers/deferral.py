"""What a consumer transaction's handlers ask for that is cheaper done once at its end.

sla-svc's consumer applies a fetched batch of ticket events in one transaction (helpdesk_common.
consumer). Each started, paused or stopped timer emits an ``sla.*`` event and may wake the
schedulers; done per timer, that is two statements per timer. Inside a consumer transaction they
are collected here instead (each event as its outbox row, made when it was emitted, so it keeps
the trace context of the handler's span), and ``service.end_consumer_batch`` writes the rows in
one pipelined statement (in the order they were emitted, so per-ticket order holds) and sends
one wake-up for the earliest fire time, just before the commit. A context variable, so only the consumer's own task defers: an
API request's transaction (another task) writes and notifies at once, as before.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass
class Deferred:
    #: outbox rows, made when the event was emitted (its trace context, its size check)
    rows: list[dict[str, Any]] = field(default_factory=list)
    wakeups: list[datetime] = field(default_factory=list)


_CURRENT: ContextVar[Deferred | None] = ContextVar("sla_consumer_deferred", default=None)


def current() -> Deferred | None:
    """The open consumer transaction's collection, None outside one."""
    return _CURRENT.get()


def start() -> None:
    """A consumer transaction begins (and forgets what a rolled-back one collected)."""
    _CURRENT.set(Deferred())


def take() -> Deferred | None:
    """What was collected; from here on, writes go straight to the database again."""
    deferred = _CURRENT.get()
    _CURRENT.set(None)
    return deferred
