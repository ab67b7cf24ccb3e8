"""Extension points in the ticket lifecycle, for the packages that react to every ticket change
(processes, triggers, automations) without the core depending on them.

Why a registry and not direct calls: ``changes.apply``, ``intake.service.open_ticket`` and
``conversation.service.add`` are the only three paths that create or change a ticket, and they
sit below the packages that react (a process may change the ticket through ``changes.apply``
itself). Importing those packages from here would make a cycle; instead each reacting package
registers its hook at import time (``main`` imports them), and a hook runs inside the caller's
transaction, so its writes commit or roll back with the change that caused them.

Contract for a hook:

- it is cheap when it has nothing to do (a cached "nothing is configured" check first: these
  run on every ticket change, and the pipeline's CPU per ticket is measured by ``make bench``);
- it may raise a ``Problem`` (``before_change`` only) to refuse the change, which aborts the
  request with nothing written;
- it may change the ticket again through ``changes.apply``, which runs the hooks again: a hook
  must be idempotent and must bound its own recursion (triggers count their passes). The
  ``run_after_*`` functions then answer the ticket as the hooks left it (re-read once, only when
  one of them wrote), so the caller's answer (a PATCH, a new ticket) shows what they did.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from typing import Any

#: (conn, ticket row just inserted, actor ref) -> None; after the ticket, its opening message and
#: its routing are written, before ``open_ticket`` returns
AfterCreate = Callable[[Any, Mapping[str, Any], str], Awaitable[None]]
#: (conn, row before, values about to be written (only those that differ), actor ref) -> None;
#: may raise a Problem to refuse the change
BeforeChange = Callable[[Any, Mapping[str, Any], Mapping[str, Any], str], Awaitable[None]]
#: (conn, row before, row after, audited changes {field: {"before", "after"}}, actor ref) -> None;
#: only when something was written
AfterChange = Callable[[Any, Mapping[str, Any], Mapping[str, Any], Mapping[str, Any], str], Awaitable[None]]
#: (conn, ticket row before the message, message row, ticket row after, actor ref) -> None
AfterMessage = Callable[[Any, Mapping[str, Any], Mapping[str, Any], Mapping[str, Any], str], Awaitable[None]]
#: (conn, locked ticket row, the customer's ``conversation.service.NewMessage``) -> bool: True when
#: the message answers a question the ticket waits on (a customer confirmation) and must not
#: reopen the ticket itself, because the answer's own hook decides what becomes of it
HoldsStatus = Callable[[Any, Mapping[str, Any], Any], Awaitable[bool]]

#: (conn, the new ticket's type) -> True when an after-create hook has nothing configured that
#: could act on such a ticket (from the package's cache, as the hook itself would decide)
CreateQuiet = Callable[[Any, "str | None"], Awaitable[bool]]
_after_create: list[AfterCreate] = []
_create_quiet: dict[AfterCreate, CreateQuiet] = {}
_before_change: list[BeforeChange] = []
_after_change: list[AfterChange] = []
_after_message: list[AfterMessage] = []
_holds_status: list[HoldsStatus] = []
#: ticket writes made in this task (``changes.apply`` counts them): a hook that wrote makes the
#: row the caller holds stale
_writes: ContextVar[int] = ContextVar("ticket_writes", default=0)


def wrote() -> None:
    """Called by ``changes.apply`` after each write of a ticket row."""
    _writes.set(_writes.get() + 1)


async def _newest(conn: Any, row: Mapping[str, Any], mark: int) -> Mapping[str, Any]:
    """``row`` when no hook wrote since ``mark``, else the ticket as the hooks left it."""
    if _writes.get() == mark:
        return row
    from . import repository  # late: the repository sits below every caller of these hooks

    return await repository.get_ticket_raw(conn, row["id"]) or row


def _register(hooks: list[Any], hook: Any) -> Any:
    if hook not in hooks:  # importing a module twice (tests) must not run its hook twice
        hooks.append(hook)
    return hook


def after_create(hook: AfterCreate) -> AfterCreate:
    return _register(_after_create, hook)


def before_change(hook: BeforeChange) -> BeforeChange:
    return _register(_before_change, hook)


def after_change(hook: AfterChange) -> AfterChange:
    return _register(_after_change, hook)


def after_message(hook: AfterMessage) -> AfterMessage:
    return _register(_after_message, hook)


def holds_status(hook: HoldsStatus) -> HoldsStatus:
    return _register(_holds_status, hook)


def quiet_when(hook: AfterCreate, check: CreateQuiet) -> None:
    """Say when ``hook`` (an after-create hook) would do nothing: ``after_create_quiet``."""
    _create_quiet[hook] = check


async def after_create_quiet(conn: Any, ticket_type: str | None) -> bool:
    """True when no after-create hook would act on a new ticket of ``ticket_type``: its insert is
    then the whole of its creation, one statement that needs no transaction around it
    (``intake.service.open_ticket``). A hook registered without a check counts as one that acts.
    The checks read the same caches the hooks read (refreshed every few seconds), so a rule
    saved an instant before is missed here exactly as the hook itself could have missed it."""
    for hook in _after_create:
        check = _create_quiet.get(hook)
        if check is None or not await check(conn, ticket_type):
            return False
    return True


async def run_after_create(conn: Any, row: Mapping[str, Any], actor: str) -> Mapping[str, Any]:
    mark = _writes.get()
    for hook in _after_create:
        await hook(conn, row, actor)
    return await _newest(conn, row, mark)


async def run_before_change(conn: Any, before: Mapping[str, Any], values: Mapping[str, Any], actor: str) -> None:
    for hook in _before_change:
        await hook(conn, before, values, actor)


async def run_after_change(conn: Any, before: Mapping[str, Any], row: Mapping[str, Any],
                           changes: Mapping[str, Any], actor: str) -> Mapping[str, Any]:
    mark = _writes.get()
    for hook in _after_change:
        await hook(conn, before, row, changes, actor)
    return await _newest(conn, row, mark)


async def run_after_message(conn: Any, before: Mapping[str, Any], message: Mapping[str, Any],
                            row: Mapping[str, Any], actor: str) -> Mapping[str, Any]:
    mark = _writes.get()
    for hook in _after_message:
        await hook(conn, before, message, row, actor)
    return await _newest(conn, row, mark)


async def run_holds_status(conn: Any, ticket: Mapping[str, Any], message: Any) -> bool:
    for hook in _holds_status:
        if await hook(conn, ticket, message):
            return True
    return False
