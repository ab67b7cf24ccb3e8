"""The incremental export's answer (the downloads are files, described in docs/exports.md)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from ..tickets.schemas import TicketRead


class TicketExportPage(BaseModel):
    items: list[TicketRead] = Field(description="tickets in the API's shape, oldest change first")
    next_cursor: str = Field(description="where the next page starts; keep it to continue later, also at the end")
    end_of_stream: bool = Field(description="true when every change committed so far has been returned")
