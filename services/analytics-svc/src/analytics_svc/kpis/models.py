from sqlalchemy import Column, DateTime, Index, Table, Text, Uuid, text

from ..db import metadata

ticket_facts = Table(
    "ticket_facts",
    metadata,
    Column("ticket_id", Uuid, primary_key=True),
    # event time (the ticket's created_at); null while only later events have arrived
    Column("created_at", DateTime(timezone=True), nullable=True),
    Column("priority", Text, nullable=True),
    Column("status", Text, nullable=True),
    Column("channel", Text, nullable=True),
    Column("customer_id", Uuid, nullable=True),
    Column("first_response_due_at", DateTime(timezone=True), nullable=True),
    # wall clock when ticket.created was folded in: ingested_at - created_at is the propagation lag
    Column("ingested_at", DateTime(timezone=True), nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=text("clock_timestamp()")),
)
Index("ix_ticket_facts_created_at", ticket_facts.c.created_at)
