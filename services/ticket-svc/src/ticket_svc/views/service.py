"""Saved views are private to their owner; a view is turned into list filters on use."""

from __future__ import annotations

import uuid
from typing import Any

from helpdesk_common.identity import Principal
from helpdesk_common.problems import Problem

from . import repository


async def filters_of(conn: Any, *, principal: Principal, view_id: uuid.UUID) -> dict[str, Any]:
    row = await repository.get(conn, view_id=view_id, owner=principal.ref)
    if row is None:
        raise Problem(404, "not-found", "View not found", f"No saved view {view_id}.")
    saved = dict(row["filters"])
    if saved.get("assignee_id") == "me":
        saved["assignee_id"] = principal.id
    if saved.get("team_id"):
        saved["team_id"] = uuid.UUID(saved["team_id"])
    return {
        "statuses": saved.get("status"), "priority": saved.get("priority"), "assignee_id": saved.get("assignee_id"),
        "team_id": saved.get("team_id"), "tags": saved.get("tags"), "channel": saved.get("channel"),
        "type": saved.get("type"), "sla_state": saved.get("sla_state"), "q": saved.get("q"),
        "customer_tier": saved.get("customer_tier"),
    }
