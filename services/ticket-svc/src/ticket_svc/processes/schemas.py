"""Answers of the process-definition API (the request model is ``definitions.ProcessIn``)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

from .definitions import StepDef


class ProcessRead(BaseModel):
    """One version of a ticket type's process. ``active`` is false on the version a DELETE
    recorded (its ``steps`` are empty): the type has had no process since then."""

    ticket_type: str
    version: int
    active: bool
    steps: list[StepDef]
    created_by: str
    created_at: datetime


class ProcessPage(BaseModel):
    """``GET /v1/processes``: the current process of each type that has one, by ticket type."""

    items: list[ProcessRead]
    next_cursor: str | None
