from sqlalchemy import (CHAR, Column, DateTime, ForeignKey, Index, Integer, Numeric, Table, Text, UniqueConstraint, Uuid,
                        func, text)
from sqlalchemy.dialects.postgresql import JSONB

from ..customers.models import customers  # noqa: F401  (the foreign key's target)
from ..db import metadata

orders = Table(
    "orders",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("customer_id", Uuid, ForeignKey("customers.id"), nullable=False),
    Column("source", Text, nullable=False),
    Column("external_id", Text, nullable=False),
    Column("ordered_at", DateTime(timezone=True), nullable=False),
    Column("amount", Numeric(18, 3), nullable=False),
    Column("currency", CHAR(3), nullable=False),
    Column("status", Text, nullable=False),
    Column("items", JSONB, nullable=False, server_default=text("'[]'")),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("version", Integer, nullable=False, server_default="1"),
    UniqueConstraint("source", "external_id", name="uq_orders_source_external_id"),
)
#: a customer's orders newest first, and RFM per customer (count, sum, max over a window) read
#: from the index alone: the values it needs are included
Index("ix_orders_customer_ordered_at", orders.c.customer_id, orders.c.ordered_at.desc(), orders.c.id.desc(),
      postgresql_include=["amount", "currency", "status"])
