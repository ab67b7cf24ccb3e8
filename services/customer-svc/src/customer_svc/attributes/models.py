from sqlalchemy import Boolean, Column, DateTime, Integer, Table, Text, Uuid, func
from sqlalchemy.dialects.postgresql import JSONB

from ..db import metadata

attribute_definitions = Table(
    "attribute_definitions",
    metadata,
    Column("scope", Text, primary_key=True),  # customer | organization
    Column("key", Text, primary_key=True),
    Column("label", JSONB, nullable=False),  # {"zh-CN": ..., "en": ...}
    Column("type", Text, nullable=False),
    Column("options", JSONB, nullable=True),  # [{"value", "label": {...}}] for select / multiselect
    Column("scale", Integer, nullable=True),  # decimal places of a decimal
    Column("required", Boolean, nullable=False),
    Column("unique", Boolean, nullable=False),
    Column("position", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("version", Integer, nullable=False, server_default="1"),
)

#: values of attributes defined ``unique``: the primary key is the rule
attribute_unique_values = Table(
    "attribute_unique_values",
    metadata,
    Column("scope", Text, primary_key=True),
    Column("key", Text, primary_key=True),
    Column("value", Text, primary_key=True),
    Column("owner_id", Uuid, nullable=False, index=True),
)
