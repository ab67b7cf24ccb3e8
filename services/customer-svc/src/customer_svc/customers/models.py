from sqlalchemy import (ARRAY, Column, DateTime, ForeignKey, Index, Integer, Table, Text, Uuid, func, text)
from sqlalchemy.dialects.postgresql import JSONB, TSVECTOR

from ..db import metadata
from ..organizations.models import organizations  # noqa: F401  (the foreign key's target)

customers = Table(
    "customers",
    metadata,
    Column("id", Uuid, primary_key=True),
    #: plaintext of rows written before migration 0008, NULL once re-encrypted (pii/codec.py)
    Column("name", Text, nullable=True),
    Column("name_enc", Text, nullable=True),  # AES-GCM (customers.name)
    Column("name_key", Text, nullable=True),  # blind index of the folded name (duplicates)
    #: commercial level (vip, gold, ...) routing rules and SLA policies match on; free text, set by supervisors
    Column("tier", Text, nullable=True),
    Column("organization_id", Uuid, ForeignKey("organizations.id"), nullable=True),
    #: the agent (a gateway user id) who looks after the customer; names are resolved by readers
    Column("account_owner_id", Uuid, nullable=True),
    Column("language", Text, nullable=True),  # BCP 47, canonical case (zh-CN)
    Column("time_zone", Text, nullable=True),  # IANA name
    Column("tags", ARRAY(Text), nullable=False, server_default=text("'{}'")),
    Column("notes", Text, nullable=True),  # legacy plaintext, as name
    Column("notes_enc", Text, nullable=True),
    #: custom attribute values by key, validated against attribute_definitions (scope customer)
    Column("attributes", JSONB, nullable=False, server_default=text("'{}'")),
    #: the name's search terms, HMAC'd (pii/codec.py; plaintext lexemes on rows not yet re-encrypted)
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
    #: what DELETE /v1/customers/{id}/identities/{identity_id} names
    Column("id", Uuid, primary_key=True, server_default=text("gen_random_uuid()")),
    Column("kind", Text, nullable=False),
    #: plaintext of rows written before migration 0008 (normalised), NULL once re-encrypted
    Column("value", Text, nullable=True),
    Column("value_enc", Text, nullable=True),  # AES-GCM of the normalised value
    Column("value_bidx", Text, nullable=True),  # its blind index: lookups and uniqueness
    Column("phone_key", Text, nullable=True),  # blind index of a phone's last digits (duplicates)
    Column("email_local", Text, nullable=True),  # blind index of an e-mail's local part (duplicates)
    Column("customer_id", Uuid, nullable=False, index=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
Index("uq_customer_identities_bidx", customer_identities.c.kind, customer_identities.c.value_bidx, unique=True,
      postgresql_where=text("value_bidx IS NOT NULL"))
Index("uq_customer_identities_plain", customer_identities.c.kind, customer_identities.c.value, unique=True,
      postgresql_where=text("value IS NOT NULL"))
