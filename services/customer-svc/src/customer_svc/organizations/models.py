from sqlalchemy import ARRAY, Column, DateTime, ForeignKey, Index, Integer, Table, Text, Uuid, func, text
from sqlalchemy.dialects.postgresql import JSONB

from ..db import metadata

organizations = Table(
    "organizations",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("name", Text, nullable=False),
    #: the name folded (NFKC, case-folded): unique, and what the name filter compares
    Column("name_key", Text, nullable=False, unique=True),
    #: normalised e-mail domains whose customers join automatically (also in organization_domains)
    Column("domains", ARRAY(Text), nullable=False, server_default=text("'{}'")),
    Column("tier", Text, nullable=True),
    Column("attributes", JSONB, nullable=False, server_default=text("'{}'")),
    Column("notes", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("version", Integer, nullable=False, server_default="1"),
)
Index("ix_organizations_created_at_id", organizations.c.created_at.desc(), organizations.c.id.desc())
Index("ix_organizations_name_key_prefix", organizations.c.name_key, postgresql_ops={"name_key": "text_pattern_ops"})
Index("ix_organizations_tier", organizations.c.tier, postgresql_where=text("tier IS NOT NULL"))

#: one row per domain: a domain belongs to one organisation, and the requester path finds it by key
organization_domains = Table(
    "organization_domains",
    metadata,
    Column("domain", Text, primary_key=True),
    Column("organization_id", Uuid, ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False, index=True),
)
