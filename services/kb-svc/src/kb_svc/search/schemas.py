"""Search's answer shapes."""

from __future__ import annotations

import uuid

from pydantic import BaseModel


class SearchHit(BaseModel):
    id: uuid.UUID
    title: str
    snippet: str  # HTML: the text escaped, the matched words in <mark>…</mark>
    score: float
    locale: str
    section_id: uuid.UUID
    category_id: uuid.UUID
    labels: list[str]
    visibility: str
    url: str


class SearchPage(BaseModel):
    items: list[SearchHit]
    next_cursor: str | None
