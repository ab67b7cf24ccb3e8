"""The list reads only the columns its answer shows (``repository.LIST_COLUMNS``): every column
``service.to_read`` reads must be among them, for every kind of viewer, or a page would fail
(or, through ``row.get``, silently show nothing) where a full row worked."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from helpdesk_common.identity import Principal
from ticket_svc.tickets.models import tickets
from ticket_svc.tickets import repository, service


class RecordingRow(dict):
    """A row that remembers which columns were read, by ``[]`` and by ``get``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.read: set[str] = set()

    def __getitem__(self, key: str) -> Any:
        self.read.add(key)
        return super().__getitem__(key)

    def get(self, key: str, default: Any = None) -> Any:
        self.read.add(key)
        return super().get(key, default)


def full_row(**overrides: Any) -> RecordingRow:
    """Every column of ``tickets`` with a plausible value (an answered survey, an assignee, an
    SLA still to come), so that every branch of ``to_read`` reads what it can."""
    now = datetime.now(UTC)
    row: dict[str, Any] = {c.name: None for c in tickets.c}
    row.update(
        id=uuid.uuid4(), number=7, subject="打印机 offline", description="d", status="open", priority="normal",
        type="question", channel="email", tags=["a"], custom_fields={}, requester={"email": "a@example.com", "name": "A"},
        cc=["b@example.com"], followers=[], assignee_id="u-agent", message_count=2, public_message_count=1,
        first_response_due_at=now + timedelta(hours=1), created_at=now, updated_at=now, version=1,
        csat_rating=5, csat_comment="好", csat_answered_at=now,
    )
    row.update(overrides)
    return RecordingRow(row)


VIEWERS = [
    Principal(kind="user", id="u-agent", role="agent"),  # the assignee: unmasked, audited
    Principal(kind="user", id="u-other", role="agent"),  # masked
    Principal(kind="user", id="u-admin", role="admin"),
    Principal(kind="channel", id="key-1", channel="email"),
]


@pytest.mark.parametrize("viewer", VIEWERS, ids=lambda p: f"{p.kind}-{p.role or p.channel}")
@pytest.mark.parametrize("sla_state", [None, "green"])
def test_to_read_reads_only_list_columns(viewer: Principal, sla_state: str | None) -> None:
    row = full_row(sla_state=sla_state)
    service.to_read(row, viewer=viewer, public=service.public_view(viewer))
    assert row.read, "to_read read nothing: the recording row is not what it reads"
    assert row.read <= set(repository.LIST_COLUMNS), sorted(row.read - set(repository.LIST_COLUMNS))


def test_list_columns_are_columns_and_hold_the_cursor() -> None:
    names = {c.name for c in tickets.c}
    assert set(repository.LIST_COLUMNS) <= names
    assert len(set(repository.LIST_COLUMNS)) == len(repository.LIST_COLUMNS)
    assert {"id", "created_at", "updated_at"} <= set(repository.LIST_COLUMNS)  # the cursor's
    # nothing a list never needs: the search vector and the blind indexes stay in the database
    assert not set(repository.LIST_COLUMNS) & repository._NOT_READ
