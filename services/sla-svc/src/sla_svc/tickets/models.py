"""sla-svc's own projection of tickets, fed by ticket events: what policy matching and
alerts need (no reads of ticket-svc's tables)."""

from sqlalchemy import Column, DateTime, Index, Table, Text, Uuid, func, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from ..db import metadata

sla_tickets = Table(
    "sla_tickets",
    metadata,
    Column("ticket_id", Uuid, primary_key=True),
    Column("status", Text, nullable=False),
    Column("priority", Text, nullable=False),
    Column("type", Text, nullable=True),
    Column("channel", Text, nullable=True),
    Column("tags", ARRAY(Text), nullable=False, server_default="{}"),
    Column("customer_tier", Text, nullable=True),
    #: the ticket's customer at creation (ticket.created), for erasure (privacy/)
    Column("customer_id", Uuid, nullable=True),
    Column("custom_fields", JSONB, nullable=False, server_default="{}"),
    Column("team_id", Uuid, nullable=True),
    Column("assignee_id", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
Index("ix_sla_tickets_customer", sla_tickets.c.customer_id, postgresql_where=text("customer_id IS NOT NULL"))
