"""Event handlers of surveys; each runs inside customer-svc's one consumer transaction (with the
inbox row and every other package's handler of the same event), on its bare asyncpg connection."""

from __future__ import annotations

from typing import Any

from helpdesk_common import events

from . import rules, service


async def handle_status_changed(conn: Any, event: events.TicketStatusChanged) -> None:
    data = event.data
    if data.reason == "deleted":  # closed by a deletion (spam, a mistake): no survey, and none pending
        await service.forget_merged_ticket(conn, ticket_id=data.ticket_id)
        return
    if data.reason == "restored":  # back from a deletion: nothing was resolved
        return
    if rules.triggers_survey(data.from_status, data.to_status):
        await service.schedule_for_ticket(conn, ticket_id=data.ticket_id, team_id=data.team_id,
                                          resolved_at=data.changed_at)


async def handle_merged(conn: Any, event: events.TicketMerged) -> None:
    await service.forget_merged_ticket(conn, ticket_id=event.data.ticket_id)


HANDLERS = {"ticket.status_changed": handle_status_changed, "ticket.merged": handle_merged}
