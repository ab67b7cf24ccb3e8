from sqlalchemy import Column, DateTime, Index, Integer, Table, Text, Uuid, func, text

from ..db import metadata

customers = Table(
    "customers",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("name", Text, nullable=True),
    #: commercial level (vip, gold, ...) routing rules and SLA policies match on; free text, set by supervisors
    Column("tier", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("version", Integer, nullable=False, server_default="1"),
)
Index("ix_customers_created_at_id", customers.c.created_at.desc(), customers.c.id.desc())
Index("ix_customers_tier_created_at_id", customers.c.tier, customers.c.created_at.desc(), customers.c.id.desc(),
      postgresql_where=text("tier IS NOT NULL"))

customer_identities = Table(
    "customer_identities",
    metadata,
    Column("kind", Text, primary_key=True),
    Column("value", Text, primary_key=True),  # normalised (helpdesk_common.identities)
    Column("customer_id", Uuid, nullable=False, index=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
