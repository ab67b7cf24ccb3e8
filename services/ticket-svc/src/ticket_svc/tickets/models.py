from sqlalchemy import (
    BigInteger,
    Column,
    Identity,
    DateTime,
    Index,
    Integer,
    Table,
    Text,
    Uuid,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from ..db import metadata

tickets = Table(
    "tickets",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("number", BigInteger, Identity(), nullable=False, unique=True),
    Column("subject", Text, nullable=False),
    Column("description", Text, nullable=False, server_default=""),
    Column("status", Text, nullable=False),
    Column("priority", Text, nullable=False),
    Column("type", Text, nullable=True),
    Column("channel", Text, nullable=True),
    Column("tags", ARRAY(Text), nullable=False, server_default="{}"),
    Column("custom_fields", JSONB, nullable=False, server_default="{}"),
    Column("requester", JSONB, nullable=False),
    Column("requester_identity_kind", Text, nullable=True),
    Column("requester_identity_value", Text, nullable=True),
    Column("customer_id", Uuid, nullable=True),
    Column("created_by", Text, nullable=False),
    Column("first_response_due_at", DateTime(timezone=True), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("version", Integer, nullable=False, server_default="1"),
)
Index("ix_tickets_created_at_id", tickets.c.created_at.desc(), tickets.c.id.desc())
Index("ix_tickets_created_by_created_at", tickets.c.created_by, tickets.c.created_at.desc(), tickets.c.id.desc())
Index(
    "ix_tickets_unlinked_identity",
    tickets.c.requester_identity_kind,
    tickets.c.requester_identity_value,
    postgresql_where=tickets.c.customer_id.is_(None),
)
Index("ix_tickets_customer_id", tickets.c.customer_id)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("principal", Text, primary_key=True),
    Column("key", Text, primary_key=True),
    Column("request_hash", Text, nullable=False),
    Column("ticket_id", Uuid, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

customer_identities = Table(
    "customer_identity_projection",
    metadata,
    Column("kind", Text, primary_key=True),
    Column("value", Text, primary_key=True),
    Column("customer_id", Uuid, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
