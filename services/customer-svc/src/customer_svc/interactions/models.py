from sqlalchemy import Column, DateTime, Index, Table, Text, Uuid, func, text
from sqlalchemy.dialects.postgresql import JSONB

from ..db import metadata

#: behaviour events: one narrow table, append-mostly; every index leads with customer_id, so it
#: can be hash-partitioned by customer (or range-partitioned by occurred_at with the key added)
#: without changing a query
interactions = Table(
    "interactions",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("customer_id", Uuid, nullable=False),
    Column("kind", Text, nullable=False),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("external_id", Text, nullable=True),
    Column("properties", JSONB, nullable=False, server_default=text("'{}'")),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
Index("ix_interactions_customer_occurred_at", interactions.c.customer_id, interactions.c.occurred_at.desc(),
      interactions.c.id.desc())
Index("uq_interactions_customer_external_id", interactions.c.customer_id, interactions.c.external_id, unique=True,
      postgresql_where=text("external_id IS NOT NULL"))
