"""Ticket rules: intake with idempotency, visibility, listing, and projection updates."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from collections.abc import Mapping
from typing import Any

import orjson
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from helpdesk_common import events
from helpdesk_common.identities import primary_identity
from helpdesk_common.identity import Principal
from helpdesk_common.outbox import enqueue, enqueue_raw
from helpdesk_common.pagination import decode_cursor, page
from helpdesk_common.problems import Problem

from ..db import outbox
from . import repository
from .schemas import TicketCreate

SOURCE = "ticket-svc"
INITIAL_STATUS = "new"


@dataclass(frozen=True, slots=True)
class CreateResult:
    ticket: Mapping[str, Any]
    replayed: bool


def request_hash(payload: TicketCreate) -> str:
    canonical = orjson.dumps(payload.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).hexdigest()


def channel_of(principal: Principal) -> str:
    return principal.channel or ("agent" if principal.is_user else "api")


async def create_ticket(
    conn: Any, *, principal: Principal, payload: TicketCreate, idempotency_key: str | None
) -> CreateResult:
    ticket_id = uuid.uuid4()
    if idempotency_key is not None:
        digest = request_hash(payload)
        owner, owner_hash = await repository.claim_idempotency_key(
            conn, principal=principal.ref, key=idempotency_key, request_hash=digest, ticket_id=ticket_id
        )
        if owner != ticket_id:
            if owner_hash != digest:
                raise Problem(
                    422, "idempotency-key-reused", "Idempotency-Key reused",
                    "This Idempotency-Key was already used with a different request body.",
                )
            existing = await repository.get_ticket_raw(conn, owner)
            if existing is None:  # pragma: no cover - keys and tickets commit together
                raise Problem(409, "conflict", "Conflict", "The original request is not visible yet.")
            return CreateResult(existing, replayed=True)

    requester = payload.requester.model_dump(exclude_none=True)
    identity = primary_identity(requester)
    now = datetime.now(UTC)
    row = await repository.insert_ticket(
        conn,
        {
            "id": ticket_id,
            "subject": payload.subject,
            "description": payload.description,
            "status": INITIAL_STATUS,
            "priority": payload.priority,
            "type": payload.type,
            "channel": channel_of(principal),
            "tags": payload.tags,
            "custom_fields": payload.custom_fields,
            "requester": requester,
            "requester_identity_kind": identity[0] if identity else None,
            "requester_identity_value": identity[1] if identity else None,
            "created_by": principal.ref,
            "created_at": now,
            "updated_at": now,
        },
    )
    await enqueue_raw(
        conn,
        outbox,
        events.TicketCreated(
            source=SOURCE,
            subject=str(ticket_id),
            time=now,
            data=events.TicketCreatedData(
                ticket_id=ticket_id,
                subject=row["subject"],
                status=row["status"],
                priority=row["priority"],
                type=row["type"],
                channel=row["channel"],
                tags=row["tags"],
                requester=events.Requester(**requester),
                customer_id=row["customer_id"],
                created_by=principal.ref,
                created_at=now,
            ),
        ),
    )
    return CreateResult(row, replayed=False)


def may_see(principal: Principal, ticket: Row) -> bool:
    """Channels see only what they created; agents, supervisors and admins see all (for now)."""
    if principal.kind == "channel":
        return ticket.created_by == principal.ref
    return principal.is_user


async def get_visible_ticket(conn: AsyncConnection, *, principal: Principal, ticket_id: uuid.UUID) -> Row:
    row = await repository.get_ticket(conn, ticket_id)
    if row is None or not may_see(principal, row):
        raise Problem(404, "not-found", "Ticket not found", f"No ticket {ticket_id}.")
    return row


async def list_visible_tickets(
    conn: AsyncConnection,
    *,
    principal: Principal,
    limit: int,
    cursor: str | None,
    status: str | None,
    priority: str | None,
    customer_id: uuid.UUID | None,
) -> tuple[list[Row], str | None]:
    rows = await repository.list_tickets(
        conn,
        limit=limit + 1,
        after=decode_cursor(cursor) if cursor else None,
        created_by=principal.ref if principal.kind == "channel" else None,
        status=status,
        priority=priority,
        customer_id=customer_id,
    )
    return page(rows, limit)


def to_read(row: Mapping[str, Any]) -> dict[str, Any]:
    """API shape of a ticket row (an asyncpg Record or a SQLAlchemy row mapping)."""
    return {
        "id": row["id"],
        "number": row["number"],
        "subject": row["subject"],
        "description": row["description"],
        "status": row["status"],
        "priority": row["priority"],
        "type": row["type"],
        "channel": row["channel"],
        "tags": row["tags"],
        "custom_fields": row["custom_fields"],
        "requester": row["requester"],
        "customer_id": row["customer_id"],
        "sla": {"first_response_due_at": row["first_response_due_at"]},
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
        "version": row["version"],
    }


# ---- projections fed by other services' events ------------------------------------------


async def on_requester_resolved(conn: AsyncConnection, *, ticket_id: uuid.UUID, customer_id: uuid.UUID) -> None:
    if await repository.link_customer(conn, ticket_id=ticket_id, customer_id=customer_id):
        await enqueue(
            conn,
            outbox,
            events.TicketCustomerLinked(
                source=SOURCE,
                subject=str(ticket_id),
                data=events.TicketCustomerLinkedData(ticket_id=ticket_id, customer_id=customer_id),
            ),
        )
