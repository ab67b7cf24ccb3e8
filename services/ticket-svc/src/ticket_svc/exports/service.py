"""Ticket exports: who may export, the incremental export's pages, the downloads' rows.

Who may export (docs/exports.md, "Who may export"): users only. Admins and supervisors export
every ticket; an agent exports exactly what their ticket list shows (their teams', their own and
the triage queue), because an export is a list that leaves the system and must not be a way
round the visibility rule. Channel keys get 403: they are integrations that post tickets for
customers, not reporting clients, and the gateway refuses them too.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from helpdesk_common.exports import InvalidCursor
from helpdesk_common.identity import Principal, require_user
from helpdesk_common.problems import Problem

from ..pii import access as pii_access
from ..tickets import policy, repository as tickets_repository, service as tickets
from . import position, repository

log = logging.getLogger(__name__)

#: rows per keyset read of a download (one short connection use each, so a slow client holds no
#: connection while it reads)
DOWNLOAD_BATCH = 1000


class _ProcessKey:
    """The cursor key when none is configured: random per process, announced once."""

    def __init__(self) -> None:
        self.key = secrets.token_bytes(32)
        self.warned = False

    def get(self) -> bytes:
        if not self.warned:
            self.warned = True
            log.warning("TICKET_EXPORT_CURSOR_KEY is not set: incremental-export cursors are signed with a key of "
                        "this process and do not survive a restart or reach another replica")
        return self.key


_PROCESS_KEY = _ProcessKey()


def cursor_key(settings: Any) -> bytes:
    configured = getattr(settings, "export_cursor_key", None)
    return configured.get_secret_value().encode() if configured is not None else _PROCESS_KEY.get()


#: the audit trail of exports: one record per export request (ops route this logger to their
#: audit store; docs/security.md, "Personal data at rest")
audit_log = logging.getLogger("audit.pii_export")


def audit_export(principal: Principal, *, route: str, rows: int, filters: Mapping[str, Any] | None = None) -> None:
    """Record that ``principal`` exported ``rows`` tickets (with their requesters' names, e-mail
    addresses and phone numbers) through ``route``; the filters by name only (a value may itself be
    personal data, e.g. a requester's address: the ``requester`` filter is recorded as
    ``requester_bidx``). ``unmasked``: ``role`` when the caller's role sees every requester
    unmasked, ``assignee`` when only the tickets it works are (``pii.access``), ``none``."""
    rule = pii_access.policy()
    unmasked = "role" if rule.by_role(principal) else "assignee" if rule.asks_tickets(principal) else "none"
    audit_log.info("personal data exported", extra={
        "actor": principal.ref, "actor_role": principal.role, "route": route, "rows": rows, "purpose": "export",
        "filters": sorted(name for name, value in (filters or {}).items() if value not in (None, [], ())),
        "unmasked": unmasked,
    })


def check_may_export(principal: Principal) -> None:
    """Users only (403 for channel keys and anything else); what each user sees is the list scope."""
    require_user(principal)


def bad_parameter(parameter: str, message: str, code: str = "invalid") -> Problem:
    return Problem(422, "validation-error", "Invalid parameter", message,
                   errors=[{"field": f"query.{parameter}", "message": message, "code": code}])


@dataclass(frozen=True, slots=True)
class ChangePage:
    items: list[dict[str, Any]]
    next_cursor: str
    end_of_stream: bool


def start_of(*, cursor: str | None, start_time: int | datetime | None, key: bytes) -> position.ExportCursor | None:
    """The export's state from the request: a cursor's, or a fresh one from ``start_time``
    (``None`` position: the repository finds where that time starts). 422 for a cursor this
    service did not sign, or for both at once (``cross_field``: a rule across two values)."""
    if cursor is not None and start_time is not None:
        raise bad_parameter("start_time", "Give either start_time (a new export) or cursor (a running one), not both.",
                            "cross_field")
    if cursor is not None:
        try:
            return position.decode(cursor, key=key)
        except InvalidCursor as error:
            raise Problem(422, "invalid-cursor", "Invalid cursor",
                          "The cursor is not one this service issued, or it was changed; restart the export "
                          "from a start_time.", errors=[{"field": "query.cursor", "message": str(error),
                                                         "code": "invalid"}]) from error
    if start_time is not None:
        try:
            return position.ExportCursor(None, position.start_instant(start_time))
        except ValueError as error:  # the endpoint's types already refuse these; kept for other callers
            raise bad_parameter("start_time", str(error)) from error
    return None


def export_scope(principal: Principal) -> dict[str, Any]:
    """The caller's list scope; staff's export also shows tickets deleted since (their
    ``deleted_at`` set), so a copy kept from it learns of a deletion as of any other change."""
    scope = policy.list_scope(principal)
    return {**scope, "deleted": "any"} if policy.viewer_of(principal).is_staff else scope


async def change_page(conn: Any, *, principal: Principal, state: position.ExportCursor | None, limit: int,
                      key: bytes) -> ChangePage:
    """One page of the incremental export: the tickets written after ``state``, oldest change
    first, each in the API's shape; ``next_cursor`` is where the next page (or a later run) starts."""
    start_time = state.start_time if state is not None else None
    from_start_time = state is not None and state.position is None
    after = state.position if state is not None and state.position is not None else position.START
    horizon, rows = await repository.change_page(
        conn, after_xid=None if from_start_time else after.xid, after_id=after.ticket_id, start_time=start_time,
        scope=export_scope(principal), limit=limit + 1,
    )
    more = len(rows) > limit
    rows = rows[:limit]
    last = position.ChangePosition(int(rows[-1]["export_xid"]), rows[-1]["id"]) if rows else None
    reached, end = position.next_cursor(after=after, last_row=last, more=more, horizon=horizon)
    public = tickets.public_view(principal)
    return ChangePage(
        items=[tickets.to_read(row, viewer=principal, public=public) for row in rows],
        next_cursor=position.encode(position.ExportCursor(reached, start_time), key=key),
        end_of_stream=end,
    )


async def download_rows(runtime: Any, *, principal: Principal, filters: Mapping[str, Any],
                        max_rows: int | None = None) -> AsyncIterator[dict[str, Any]]:
    """Every ticket the caller's list shows with ``filters``, newest first, in the API's shape.

    Read in keyset batches on ``(created_at, id)`` (the list's own order and index), each on a
    connection taken for that read only: a ticket created during the download is above the first
    batch and not included, one changed during it is included once. ``max_rows``: stop after
    that many (the caller asked for one more than it accepts, to tell "exactly" from "more").
    """
    scoped = {**filters, **policy.list_scope(principal)}  # last: a filter cannot widen the scope
    public = tickets.public_view(principal)
    after = None
    sent = 0
    while True:
        batch = DOWNLOAD_BATCH if max_rows is None else min(DOWNLOAD_BATCH, max_rows - sent)
        if batch <= 0:
            return
        async with runtime.raw_connection() as conn:
            rows = await tickets_repository.list_tickets_raw(conn, filters=scoped, limit=batch, after=after)
        for row in rows:
            yield tickets.to_read(row, viewer=principal, public=public)
        sent += len(rows)
        if len(rows) < batch:
            return
        after = (rows[-1]["created_at"], rows[-1]["id"])
