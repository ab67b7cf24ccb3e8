"""sla-svc events into the projection, and escalations into ticket changes."""

from __future__ import annotations

import uuid
from typing import Any

from ..routing import repository as routing_repository
from ..routing import service as routing
from ..tickets import changes
from ..tickets import repository as tickets
from ..conversation import service as conversation
from . import calendars, colour, repository

PRIORITY_RANK = {"low": 0, "normal": 1, "high": 2, "urgent": 3}
ACTOR = "system:sla"


async def handle_timer_event(conn: Any, event: Any) -> None:
    data = event.data
    state = colour.state_after(event.type, fraction=getattr(data, "fraction", None),
                               colour=getattr(data, "colour", None))
    if state is None:
        return
    due_at = getattr(data, "due_at", None)
    applied_first = event.type == "sla.applied" and data.metric == "first_response"
    await repository.set_metric(conn, ticket_id=data.ticket_id, metric=data.metric, state=state, due_at=due_at,
                                first_response_due=applied_first,
                                first_response_due_at=data.due_at if applied_first else None)


async def handle_escalation(conn: Any, event: Any) -> None:
    """Execute what sla-svc asks on a breach: raise priority, move to a team, notify."""
    data = event.data
    actions = data.actions if isinstance(data.actions, dict) else data.actions.model_dump()
    row = await tickets.lock_ticket(conn, data.ticket_id)
    if row is None or row["status"] in ("solved", "closed") or row["merged_into"] is not None:
        return
    values: dict[str, Any] = {}
    wanted = actions.get("set_priority")
    if wanted in PRIORITY_RANK and PRIORITY_RANK[wanted] > PRIORITY_RANK.get(row["priority"], 0):
        values["priority"] = wanted
    if values:
        row = await changes.apply(conn, row, values, actor=ACTOR, action="sla_escalation", reason="escalation")
    team_id = actions.get("set_team_id")
    if team_id is not None and str(team_id) != str(row["team_id"]):
        team = await routing_repository.get_team(conn, uuid.UUID(str(team_id)))
        if team is not None:
            picked = await routing.pick_in_team(conn, team, channel=row["channel"] or "api", exclude=())
            row = await routing.assign(conn, row, team_id=team["id"], assignee_id=picked, reason="escalation",
                                       actor=ACTOR, offered=False)
    notify = [str(n) for n in actions.get("notify") or []]
    summary = f"SLA {data.metric} breached"
    done = [f"priority → {values['priority']}"] if values else []
    if team_id is not None:
        done.append(f"team → {team_id}")
    if notify:
        done.append("notify: " + ", ".join(notify))
    note = conversation.NewMessage(author_kind="system", author_id=None, public=False,
                                   body_text=summary + (": " + "; ".join(done) if done else "."),
                                   metadata={"sla_metric": data.metric, "notify": notify})
    await conversation.add(conn, row, note, actor=ACTOR)


async def handle_team_calendar(conn: Any, event: Any) -> None:
    await calendars.on_team_calendar_changed(conn, event.data)


SLA_HANDLERS = {
    "sla.applied": handle_timer_event,
    "sla.warning": handle_timer_event,
    "sla.breached": handle_timer_event,
    "sla.paused": handle_timer_event,
    "sla.resumed": handle_timer_event,
    "sla.fulfilled": handle_timer_event,
    "sla.cancelled": handle_timer_event,
    "sla.escalation_requested": handle_escalation,
    "sla.team_calendar_changed": handle_team_calendar,
}
