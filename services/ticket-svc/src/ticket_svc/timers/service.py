"""Ticket timers: "do X to this ticket at instant T", durable, fired exactly once.

Process steps (approval expiry, confirmation timeout) and time-based automations both need a
ticket to be acted on at a given second, in whichever replica is up, after any restart. They
share this one mechanism instead of each polling its own table: a row in ``ticket_timers`` per
(kind, ticket, ref, episode), a handler per kind, and the scheduler (``scheduler.py``) that
runs the handler in the transaction that marks the row fired.

- ``schedule`` is an upsert: moving a pending timer is the normal case (every ticket change
  re-plans its automations). A row that already fired stays fired, so the same (kind, ticket,
  ref, episode) never fires twice; a new episode is a new row. There is one pending timer per
  (kind, ticket, ref): scheduling another episode drops the pending one of the old episode.
- Call ``schedule`` / ``cancel`` with the ticket locked (or just created) in the caller's
  transaction: that is the lock order the scheduler relies on (``repository``'s docstring).
- A handler runs with the ticket row already locked by the scheduler, inside a savepoint: if
  it raises, its writes are rolled back, the timer is retried later with backoff, and the
  failure is logged and counted; it is never dropped.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from . import repository

#: the longest the scheduler sleeps without looking at the table again; ``schedule`` notifies
#: only for timers due sooner than that, so far-off timers cost no NOTIFY at all
MAX_SLEEP_S = 30.0


@dataclass(frozen=True, slots=True)
class Timer:
    id: int
    kind: str
    ticket_id: uuid.UUID
    ref: str
    episode: str
    due_at: datetime
    attempts: int = 0


Handler = Callable[[Any, Timer], Awaitable[None]]

_handlers: dict[str, Handler] = {}


def register(kind: str, handler: Handler) -> None:
    """Route fired timers of ``kind`` to ``handler(conn, timer)``; registering again replaces it
    (a module imported twice in tests must not fail)."""
    _handlers[kind] = handler


def handler_for(kind: str) -> Handler | None:
    return _handlers.get(kind)


def timer_from_row(row: Any) -> Timer:
    return Timer(id=row["id"], kind=row["kind"], ticket_id=row["ticket_id"], ref=row["ref"],
                 episode=row["episode"], due_at=row["due_at"], attempts=row["attempts"])


def needs_wake(due_at: datetime, *, now: float | None = None) -> bool:
    """Would a sleeping scheduler miss ``due_at``? Only if it is due before its longest sleep."""
    return due_at.timestamp() <= (time.time() if now is None else now) + MAX_SLEEP_S


async def schedule(conn: Any, *, kind: str, ticket_id: uuid.UUID, ref: str, due_at: datetime,
                   episode: str = "") -> None:
    await repository.schedule(conn, kind=kind, ticket_id=ticket_id, ref=ref, episode=episode, due_at=due_at)
    if needs_wake(due_at):
        await repository.notify_due(conn, due_at)


async def cancel(conn: Any, *, kind: str, ticket_id: uuid.UUID, ref: str | None = None) -> None:
    await repository.cancel(conn, kind=kind, ticket_id=ticket_id, ref=ref)


def retry_delay_s(attempts: int) -> float:
    """Backoff after the ``attempts``-th failure: 1 s, 2 s, 4 s ... at most 10 minutes."""
    return float(min(600, 2 ** max(0, attempts - 1)))
