"""Step events into ``step_runs`` / ``step_decisions``, inside the consumer's transaction."""

from __future__ import annotations

from typing import Any

from helpdesk_common import events

from . import repository

#: outcomes of ticket.step_completed that count as the step being turned down
REJECTED_OUTCOMES = frozenset({"rejected"})


async def handle_step_started(conn: Any, event: events.TicketStepStarted) -> None:
    d = event.data
    await repository.step_started(conn, step_id=d.step_id, ticket_id=d.ticket_id, step=d.step, kind=d.kind,
                                  process_version=d.process_version, started_at=d.started_at)


async def handle_step_completed(conn: Any, event: events.TicketStepCompleted) -> None:
    d = event.data
    await repository.step_completed(conn, step_id=d.step_id, ticket_id=d.ticket_id, step=d.step,
                                    completed_at=d.completed_at, outcome=d.outcome,
                                    rejected=d.outcome in REJECTED_OUTCOMES)


async def handle_approval_decided(conn: Any, event: events.TicketApprovalDecided) -> None:
    d = event.data
    await repository.decision(conn, step_id=d.step_id, ticket_id=d.ticket_id, step=d.step, kind=d.kind,
                              decided_by=d.decided_by, decision=d.decision, decided_at=d.decided_at,
                              ended_rejected=d.step_status == "rejected")


HANDLERS = {
    "ticket.step_started": handle_step_started,
    "ticket.step_completed": handle_step_completed,
    "ticket.approval_decided": handle_approval_decided,
}
