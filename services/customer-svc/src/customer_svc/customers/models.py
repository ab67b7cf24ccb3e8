from sqlalchemy import (ARRAY, Column, DateTime, ForeignKey, Index, Integer, Table, Text, Uuid, func, text)
from sqlalchemy.dialects.postgresql import JSONB, TSVECTOR

from ..db import metadata
from ..organizations.models import organizations  # noqa: F401  (the foreign key's target)

customers = Table(
    "customers",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("name", Text, nullable=True),
    #: commercial level (vip, gold, ...) routing rules and SLA policies match on; free text, set by supervisors
    Column("tier", Text, nullable=True),
    Column("organization_id", Uuid, ForeignKey("organizations.id"), nullable=True),
    #: the agent (a gateway user id) who looks after the customer; names are resolved by readers
    Column("account_owner_id", Uuid, nullable=True),
    Column("language", Text, nullable=True),  # BCP 47, canonical case (zh-CN)
    Column("time_zone", Text, nullable=True),  # IANA name
    Column("tags", ARRAY(Text), nullable=False, server_default=text("'{}'")),
    Column("notes", Text, nullable=True),
    #: custom attribute values by key, validated against attribute_definitions (scope customer)
    Column("attributes", JSONB, nullable=False, server_default=text("'{}'")),
    #: name lexemes computed by the application (customers/search.py): CJK bigrams, words
    Column("search", TSVECTOR, nullable=False, server_default=text("''")),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("version", Integer, nullable=False, server_default="1"),
)
Index("ix_customers_created_at_id", customers.c.created_at.desc(), customers.c.id.desc())
Index("ix_customers_tier_created_at_id", customers.c.tier, customers.c.created_at.desc(), customers.c.id.desc(),
      postgresql_where=text("tier IS NOT NULL"))
Index("ix_customers_organization_created_at_id", customers.c.organization_id, customers.c.created_at.desc(),
      customers.c.id.desc(), postgresql_where=text("organization_id IS NOT NULL"))
Index("ix_customers_account_owner_created_at_id", customers.c.account_owner_id, customers.c.created_at.desc(),
      customers.c.id.desc(), postgresql_where=text("account_owner_id IS NOT NULL"))
Index("ix_customers_search", customers.c.search, postgresql_using="gin")
Index("ix_customers_tags", customers.c.tags, postgresql_using="gin")
Index("ix_customers_attributes", customers.c.attributes, postgresql_using="gin")

customer_identities = Table(
    "customer_identities",
    metadata,
    Column("kind", Text, primary_key=True),
    Column("value", Text, primary_key=True),  # normalised (helpdesk_common.identities)
    Column("customer_id", Uuid, nullable=False, index=True),
    #: what DELETE /v1/customers/{id}/identities/{identity_id} names
    Column("id", Uuid, nullable=False, unique=True, server_default=text("gen_random_uuid()")),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
#: search by any identity value without knowing its kind (?q=)
Index("ix_customer_identities_value", customer_identities.c.value)
