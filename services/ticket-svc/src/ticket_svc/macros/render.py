"""Placeholder rendering for macro replies: ``{{ticket.number}}``, ``{{requester.name}}``...

Deliberately not a template engine: only known dotted names are substituted, nothing is
evaluated, so a macro author cannot run code or read data outside the listed fields.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_PLACEHOLDER = re.compile(r"\{\{\s*([a-z_]+(?:\.[a-z_]+)?)\s*\}\}")
PLACEHOLDERS = ("ticket.number", "ticket.subject", "ticket.status", "ticket.priority", "requester.name",
                "requester.email", "agent.name", "agent.id")


def context_for(ticket: Mapping[str, Any], *, agent_id: str, agent_name: str | None) -> dict[str, str]:
    requester = ticket.get("requester") or {}
    return {
        "ticket.number": str(ticket["number"]), "ticket.subject": ticket["subject"], "ticket.status": ticket["status"],
        "ticket.priority": ticket["priority"], "requester.name": requester.get("name") or "",
        "requester.email": requester.get("email") or "", "agent.name": agent_name or "", "agent.id": agent_id,
    }


def render(text: str, context: Mapping[str, str]) -> str:
    return _PLACEHOLDER.sub(lambda m: context.get(m.group(1), m.group(0)), text)
