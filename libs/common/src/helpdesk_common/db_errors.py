"""Which database errors mean "the database is not there right now" rather than "this event
cannot be applied".

A consumer gives an event a few attempts and then sends it to the dead-letter topic: right for an
event the code cannot apply (a bug, a row it does not expect), wrong for an event that failed only
because PostgreSQL was restarting. The fault suite (tools/chaos.py) stopped PostgreSQL for a few
seconds under load and every event in flight went to the DLQ after its 5 attempts (3 s): tickets
never linked, timed or counted. ``unavailable`` tells the two apart so that consumers wait out an
outage instead (helpdesk_common/consumer.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

#: SQLSTATE classes and codes of an unavailable or overloaded server, or of a transaction the
#: server itself asks to run again: connection exceptions (08), admin / crash shutdown and
#: "cannot connect now" while starting (57P01-57P03), too many connections (53300), serialization
#: failures and deadlocks (40001, 40P01)
_UNAVAILABLE_CLASSES = ("08",)
_UNAVAILABLE_CODES = frozenset({"57P01", "57P02", "57P03", "53300", "40001", "40P01"})


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception, what it wraps (SQLAlchemy's ``orig``) and its explicit causes, each once."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        # not ``__context__``: an error raised while another was being handled (a retry inside an
        # ``except`` block) is not caused by it
        pending.extend([getattr(current, "orig", None), current.__cause__])


def unavailable(exc: BaseException) -> bool:
    """True when ``exc`` (or what it wraps) says the database could not be reached or asked for a
    retry, not that the statement was wrong (pure)."""
    for error in _chain(exc):
        if isinstance(error, (ConnectionError, asyncio.TimeoutError, TimeoutError)):
            return True
        sqlstate = getattr(error, "sqlstate", None) or getattr(error, "pgcode", None)
        if isinstance(sqlstate, str) and (sqlstate.startswith(_UNAVAILABLE_CLASSES) or sqlstate in _UNAVAILABLE_CODES):
            return True
        name = type(error).__name__
        # asyncpg: the connection went away under a statement ("connection is closed"), or was
        # lost while being acquired; other interface errors are the code's own misuse
        if name in ("ConnectionDoesNotExistError", "ConnectionFailureError"):
            return True
        if name == "InterfaceError" and "closed" in str(error).lower():
            return True
        # SQLAlchemy: a connection the pool had to throw away, or no connection in time
        if getattr(error, "connection_invalidated", False):
            return True
        if type(error).__module__.startswith("sqlalchemy") and name in ("TimeoutError", "DisconnectionError"):
            return True
    return False
