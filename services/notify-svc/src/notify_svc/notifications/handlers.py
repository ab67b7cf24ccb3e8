"""Event handlers, run in the consumer's transaction on a bare asyncpg connection (the inbox
row, the projections, the log and the queued deliveries commit together): the projections of
tickets and users that notifications need, then the notifications themselves (service.notify)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from ..deliveries import handoff
from . import repository, service

Handler = Callable[[Any, Any], Awaitable[None]]
#: the notification ``ticket.created`` triggers (``rules.occurrence_of``): its rule is read by the
#: statement that projects the ticket
RECEIVED = "ticket_received"


async def _ref(conn: Any, data: Any, **extra: Any) -> None:
    await repository.update_ticket_ref(conn, ticket_id=data.ticket_id, version=data.version, number=data.number,
                                       status=data.status, priority=data.priority, team_id=data.team_id,
                                       assignee_id=data.assignee_id, **extra)


def handlers(settings: Any) -> dict[str, Handler]:
    async def ticket_created(conn: Any, event: Any) -> None:
        d = event.data
        row = await repository.insert_ticket(
            conn, ticket_id=d.ticket_id, number=d.number, subject=d.subject, status=d.status, priority=d.priority,
            channel=d.channel, language=d.language, requester=d.requester.model_dump(mode="json", exclude_none=True),
            customer_id=d.customer_id, team_id=d.team_id, assignee_id=d.assignee_id, created_by=d.created_by,
            rule_key=RECEIVED)
        await service.notify(conn, event=event, settings=settings, ticket_row=row, opted_out_by=row["opted_out_by"],
                             rule_key=RECEIVED)

    async def ticket_updated(conn: Any, event: Any) -> None:
        changes = event.data.changes
        subject = (changes.get("subject") or {}).get("after")
        language = (changes.get("language") or {}).get("after")
        await _ref(conn, event.data, subject=subject if isinstance(subject, str) else None,
                   language=language if isinstance(language, str) else None)

    async def ticket_ref_then_notify(conn: Any, event: Any) -> None:
        await _ref(conn, event.data)
        await service.notify(conn, event=event, settings=settings)

    async def ticket_merged(conn: Any, event: Any) -> None:
        await _ref(conn, event.data)

    async def customer_linked(conn: Any, event: Any) -> None:
        if await repository.link_customer(conn, event.data.ticket_id, event.data.customer_id):
            # the ticket is a restricted customer's now: what this transaction claimed for sending
            # (perhaps about it) waits for the claim, which holds it (deliveries/handoff.py)
            await handoff.forfeit(conn)

    async def sla_event(conn: Any, event: Any) -> None:
        await service.notify(conn, event=event, settings=settings)

    async def approval_event(conn: Any, event: Any) -> None:
        # the ticket projection is left to the ticket's own events: these carry its reference
        # only as far as ticket-svc filled it, and a partial one must not blank the team
        await service.notify(conn, event=event, settings=settings)

    async def notification_requested(conn: Any, event: Any) -> None:
        await service.notify_requested(conn, event=event, settings=settings)

    async def user_event(conn: Any, event: Any) -> None:
        d = event.data
        email = getattr(d, "email", None)
        await repository.upsert_user(conn, user_id=d.user_id, version=d.version, name=d.display_name, role=d.role,
                                     active=d.active, email=email.strip().lower() if isinstance(email, str) else None)

    return {
        "ticket.created": ticket_created,
        "ticket.updated": ticket_updated,
        "ticket.status_changed": ticket_ref_then_notify,
        "ticket.assigned": ticket_ref_then_notify,
        "ticket.merged": ticket_merged,
        "ticket.customer_linked": customer_linked,
        "ticket.approval_requested": approval_event,
        "ticket.approval_decided": approval_event,
        "ticket.notification_requested": notification_requested,
        "sla.warning": sla_event,
        "sla.breached": sla_event,
        "sla.escalation_requested": sla_event,
        "user.created": user_event,
        "user.updated": user_event,
    }
