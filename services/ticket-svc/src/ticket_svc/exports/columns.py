"""The columns of the .csv and .xlsx ticket downloads (pure): one flat row per ticket.

A spreadsheet wants one value per cell, so the ticket's nested parts are spread into columns
(``requester_*``, ``sla_*``, ``csat_*``) and custom fields are one JSON text cell (their keys
differ per ticket type). Every text cell goes through ``helpdesk_common.exports.cell_value`` on
its way out, which makes formula-like text inert; the list is documented in docs/exports.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

COLUMNS: tuple[str, ...] = (
    "id", "number", "subject", "status", "custom_status_id", "priority", "type", "channel", "language", "tags",
    "requester_name", "requester_email", "requester_phone", "requester_external_id", "customer_id",
    "customer_tier", "team_id", "assignee_id", "assignment_state", "message_count", "sla_state",
    "sla_first_response_due_at", "sla_first_response_at", "sla_next_due_at", "csat_rating", "csat_comment",
    "follow_up_of", "merged_into", "created_at", "updated_at", "solved_at", "closed_at", "version",
    "custom_fields",
)


def row_of(ticket: Mapping[str, Any]) -> list[Any]:
    """One ticket in the API's shape (``tickets.service.to_read``) as the values of ``COLUMNS``."""
    requester = _mapping(ticket.get("requester"))
    sla = ticket.get("sla") or {}
    csat = ticket.get("csat") or {}
    custom = _mapping(ticket.get("custom_fields"))
    values = {
        **{name: ticket.get(name) for name in COLUMNS},
        "requester_name": requester.get("name"),
        "requester_email": requester.get("email"),
        "requester_phone": requester.get("phone"),
        "requester_external_id": requester.get("external_id"),
        "sla_state": sla.get("state"),
        "sla_first_response_due_at": sla.get("first_response_due_at"),
        "sla_first_response_at": sla.get("first_response_at"),
        "sla_next_due_at": sla.get("next_due_at"),
        "csat_rating": csat.get("rating"),
        "csat_comment": csat.get("comment"),
        "custom_fields": orjson.dumps(custom, option=orjson.OPT_SORT_KEYS).decode() if custom else None,
    }
    return [values[name] for name in COLUMNS]


def _mapping(value: Any) -> Mapping[str, Any]:
    """A JSON object column, whether the driver decoded it or handed over its text."""
    if isinstance(value, str | bytes):
        value = orjson.loads(value)
    return value if isinstance(value, Mapping) else {}
