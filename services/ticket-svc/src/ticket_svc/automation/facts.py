"""A ticket row as triggers and automations see it: ``conditions.TicketState``.

The pure core judges ``TicketState`` values; this is the one place that builds them from what
the database holds, so the write path (triggers), the scheduler (automations) and the dry run
cannot disagree on what a condition looks at. Two facts are not columns of the ticket:

* the current process step's key, from ``processes.runtime.current_step`` (one indexed read);
* the last public customer and agent message instants (``hours_since.customer_replied`` /
  ``agent_replied``), read from the ticket's messages. Only time conditions use them, so
  callers judging an update (triggers) can leave them out with ``message_anchors=False``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import repository
from .conditions import TicketState


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def state_from_row(ticket: Mapping[str, Any], *, step: str | None = None,
                   customer_replied_at: Any = None, agent_replied_at: Any = None) -> TicketState:
    """The pure part: a ticket row (and what was read beside it) as a ``TicketState``."""
    return TicketState(
        status=ticket["status"],
        priority=ticket["priority"],
        type=ticket["type"],
        channel=ticket["channel"],
        language=ticket["language"],
        subject=ticket["subject"] or "",
        tags=tuple(ticket["tags"] or ()),
        custom_fields=dict(ticket["custom_fields"] or {}),
        customer_tier=ticket["customer_tier"],
        team_id=_text(ticket["team_id"]),
        assignee_id=_text(ticket["assignee_id"]),
        step=step,
        created_at=ticket["created_at"],
        updated_at=ticket["updated_at"],
        status_changed_at=ticket["status_changed_at"] or ticket["created_at"],
        customer_replied_at=customer_replied_at,
        agent_replied_at=agent_replied_at,
        solved_at=ticket["solved_at"],
    )


async def current_step_key(conn: Any, ticket_id: Any) -> str | None:
    """The key of the ticket's running process step, None outside a process."""
    from ..processes import runtime  # late: processes build on the ticket core, as this module does

    step = await runtime.current_step(conn, ticket_id)
    return None if step is None else step["key"]


async def state_of(conn: Any, ticket: Mapping[str, Any], *, message_anchors: bool = True) -> TicketState:
    """The ticket's facts for conditions, read in the caller's transaction.

    ``message_anchors=False`` skips the read of the last customer and agent messages (only
    ``hours_since.customer_replied`` / ``agent_replied`` need it)."""
    step = await current_step_key(conn, ticket["id"])
    replied: Mapping[str, Any] = {}
    if message_anchors:
        replied = await repository.last_replies(conn, ticket["id"]) or {}
    return state_from_row(ticket, step=step, customer_replied_at=replied.get("customer_replied_at"),
                          agent_replied_at=replied.get("agent_replied_at"))
