"""SLA colours, as plain functions.

A metric is green while running, yellow after its first warning and red after its last (as
sla-svc says in the event), breached at its due time; fulfilled, cancelled and paused metrics do
not colour the ticket. The ticket shows its worst running metric and the nearest due time.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

RANK = {"green": 0, "yellow": 1, "red": 2, "breached": 3}
INACTIVE = frozenset({"done", "paused"})
RED_FROM = 0.75


def state_after(event_type: str, *, fraction: float | None = None, colour: str | None = None) -> str | None:
    """The metric's new state after an sla-svc event (None: the event does not change it).

    sla-svc names the colour of a warning (yellow after the first, red after the last of the
    policy's warnings); for events without it, a warning at 75 % or later counts as red."""
    if event_type == "sla.warning" and colour in RANK:
        return colour
    if event_type in ("sla.applied", "sla.resumed"):
        return "green"
    if event_type == "sla.warning":
        return "red" if (fraction or 0) >= RED_FROM else "yellow"
    if event_type == "sla.breached":
        return "breached"
    if event_type == "sla.paused":
        return "paused"
    if event_type in ("sla.fulfilled", "sla.cancelled"):
        return "done"
    return None


def _sql_list(states: Iterable[str]) -> str:
    return ", ".join(f"'{s}'" for s in sorted(states))


#: ``ticket_colour`` in SQL over a relation ``m(state, due_at)`` (``repository.SET_METRIC``
#: folds it into the statement that records the metric): one definition, two forms, checked
#: against each other by tests/tickets/test_sla_projection.py. They agree on every state
#: ``state_after`` gives; a state outside ``RANK`` and ``INACTIVE`` (none is ever stored) would
#: rank below green here where ``ticket_colour`` raises.
WORST_SQL = (
    "(array_agg(state ORDER BY CASE state " + " ".join(f"WHEN '{s}' THEN {r}" for s, r in RANK.items())
    + f" END DESC NULLS LAST) FILTER (WHERE state NOT IN ({_sql_list(INACTIVE)})))[1]"
)
NEAREST_SQL = f"min(due_at) FILTER (WHERE state NOT IN ({_sql_list(INACTIVE | {'breached'})}))"


def ticket_colour(metrics: Iterable[tuple[str, datetime | None]]) -> tuple[str | None, datetime | None]:
    """(worst state, nearest due time of the still-running metrics) over (state, due_at) pairs."""
    worst: str | None = None
    due: datetime | None = None
    for state, due_at in metrics:
        if state in INACTIVE:
            continue
        if worst is None or RANK[state] > RANK[worst]:
            worst = state
        if state != "breached" and due_at is not None and (due is None or due_at < due):
            due = due_at
    return worst, due
