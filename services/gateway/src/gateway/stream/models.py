"""The gateway's copy of the events the live stream serves.

Every replica reads the same table, so a client may reconnect to any replica and resume with
``Last-Event-ID`` (the ``seq``). Rows are kept for ``GATEWAY_STREAM_RETENTION_S`` (24 h).
The visibility columns are copied out of the event data so the filter is plain SQL.
"""

from sqlalchemy import BigInteger, Column, DateTime, Index, Table, Text, Uuid, func
from sqlalchemy.dialects.postgresql import JSONB

from ..db import metadata

stream_events = Table(
    "stream_events",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=True),  # bigserial: the SSE id
    Column("event_id", Uuid, nullable=False, unique=True),
    Column("type", Text, nullable=False),
    Column("ticket_id", Uuid, nullable=False),
    Column("team_id", Uuid, nullable=True),
    Column("assignee_id", Text, nullable=True),
    # ticket.assigned only: the agent / team the ticket moved away from also hears about it
    Column("previous_team_id", Uuid, nullable=True),
    Column("previous_assignee_id", Text, nullable=True),
    Column("payload", JSONB, nullable=False),  # the event's data, as published
    Column("occurred_at", DateTime(timezone=True), nullable=False),  # the event's time
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_stream_events_created_at", "created_at"),
)

#: whose each recent ticket is, from ``ticket.customer_linked`` (a requester resolved after
#: intake leaves ``customer_id`` null in the ticket's stream rows): what an erasure of that
#: customer needs to find them. Pruned once past the retention and without rows.
stream_ticket_customers = Table(
    "stream_ticket_customers",
    metadata,
    Column("ticket_id", Uuid, primary_key=True),
    Column("customer_id", Uuid, nullable=False),
    Column("linked_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # no index on linked_at: a link is written per new requester's ticket, and the prune that
    # reads linked_at runs every 10 minutes
    Index("ix_stream_ticket_customers_customer_id", "customer_id"),
)

#: customers erased within the stream's retention: a link to one of them that arrives after the
#: erasure (another topic, so no order between them) drops the ticket's rows instead of keeping
#: them for the retention
stream_erased_customers = Table(
    "stream_erased_customers",
    metadata,
    Column("customer_id", Uuid, primary_key=True),
    Column("erased_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
