"""Step figures: the repository's per-key aggregates as the API's document (pure shaping)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from helpdesk_common.problems import Problem

from . import repository


def _seconds(value: float | None) -> float | None:
    return None if value is None else round(float(value), 3)


def step_figures(row: Any) -> dict[str, Any]:
    """One step key's figures; shares and durations are null where there is nothing to divide."""
    completed = int(row["completed"])
    return {
        "step": row["step"], "kind": row["kind"], "started": int(row["started"]), "completed": completed,
        "open_now": int(row["open_now"]),
        "median_duration_s": _seconds(row["median_s"]), "p90_duration_s": _seconds(row["p90_s"]),
        "max_duration_s": _seconds(row["max_s"]),
        "rejected": int(row["rejected"]),
        "rejection_rate": None if completed == 0 else round(int(row["rejected"]) / completed, 4),
        "decisions": int(row["decisions"]), "reject_decisions": int(row["reject_decisions"]),
    }


def check_window(start: datetime | None, end: datetime | None) -> None:
    if start is not None and end is not None and end <= start:
        raise Problem(422, "validation-error", "Validation failed", "'to' must be after 'from'.",
                      errors=[{"field": "query.to", "message": "must be after from", "code": "range"}])


async def steps(conn: Any, *, ticket_type: str | None, start: datetime | None, end: datetime | None,
                scope_sql: str = "true", scope_args: Sequence[Any] = ()) -> dict[str, Any]:
    check_window(start, end)
    rows = await repository.summary(conn, ticket_type=ticket_type, start=start, end=end, scope_sql=scope_sql,
                                    scope_args=scope_args)
    return {"ticket_type": ticket_type, "from": start, "to": end, "items": [step_figures(r) for r in rows]}


STEP_COLUMNS = ["step", "kind", "started", "completed", "open_now", "median_duration_s", "p90_duration_s",
                "max_duration_s", "rejected", "rejection_rate", "decisions", "reject_decisions"]


def step_rows(body: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    """The document as spreadsheet rows (one per step key)."""
    return STEP_COLUMNS, [[item[c] for c in STEP_COLUMNS] for item in body["items"]]
