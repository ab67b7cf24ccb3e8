"""Which errors mean the database is away (waited out) and which mean the event cannot be applied
(dead-lettered after its attempts): helpdesk_common.db_errors.unavailable."""

import asyncio

import asyncpg
import pytest
import sqlalchemy.exc

from helpdesk_common.db_errors import unavailable


def _wrapped(orig: BaseException) -> BaseException:
    """As SQLAlchemy's asyncpg dialect raises it: a DBAPIError whose ``orig`` is the driver's error."""
    return sqlalchemy.exc.DBAPIError("SELECT 1", {}, orig, connection_invalidated=False)


def _caused(outer: BaseException, cause: BaseException) -> BaseException:
    outer.__cause__ = cause
    return outer


@pytest.mark.parametrize("error", [
    asyncpg.exceptions.AdminShutdownError("terminating connection due to administrator command"),
    asyncpg.exceptions.CrashShutdownError("terminating connection because of crash of another server process"),
    asyncpg.exceptions.CannotConnectNowError("the database system is starting up"),
    asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
    asyncpg.exceptions.TooManyConnectionsError("sorry, too many clients already"),
    asyncpg.exceptions.SerializationError("could not serialize access"),
    asyncpg.exceptions.DeadlockDetectedError("deadlock detected"),
    asyncpg.exceptions.InterfaceError("connection is closed"),
    ConnectionRefusedError(111, "Connect call failed"),
    ConnectionResetError(104, "Connection reset by peer"),
    asyncio.TimeoutError(),
    _wrapped(asyncpg.exceptions.AdminShutdownError("terminating connection")),
    sqlalchemy.exc.DBAPIError("SELECT 1", {}, Exception("gone"), connection_invalidated=True),
    sqlalchemy.exc.TimeoutError("QueuePool limit reached, connection timed out"),
    _caused(RuntimeError("handler failed"), asyncpg.exceptions.ConnectionDoesNotExistError("closed")),
], ids=lambda e: type(e).__name__)
def test_unavailable(error):
    assert unavailable(error)


@pytest.mark.parametrize("error", [
    asyncpg.exceptions.UniqueViolationError("duplicate key"),
    asyncpg.exceptions.CheckViolationError("violates check constraint"),
    asyncpg.exceptions.UndefinedColumnError("column does not exist"),
    asyncpg.exceptions.InterfaceError("cannot perform operation: another operation is in progress"),
    _wrapped(asyncpg.exceptions.NotNullViolationError("null value")),
    ValueError("a bad payload"),
    KeyError("data"),
    FileNotFoundError("template.html"),
], ids=lambda e: type(e).__name__)
def test_not_unavailable(error):
    assert not unavailable(error)


def test_an_error_raised_while_handling_an_outage_is_judged_on_its_own():
    """A retry inside an ``except`` block carries the outage as ``__context__``: not its cause."""
    try:
        try:
            raise asyncpg.exceptions.AdminShutdownError("terminating connection")
        except Exception:
            raise asyncpg.exceptions.CheckViolationError("violates check constraint")  # noqa: B904
    except Exception as error:
        assert error.__context__ is not None and not unavailable(error)
