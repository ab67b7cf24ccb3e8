"""Policies: ordered; the definition (conditions, targets, pauses, warnings, escalations)
is one validated JSON document, so adding a condition kind needs no migration."""

from sqlalchemy import Boolean, Column, DateTime, Index, Integer, Table, Text, Uuid, func
from sqlalchemy.dialects.postgresql import JSONB

from ..db import metadata

policies = Table(
    "policies",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("name", Text, nullable=False),
    Column("position", Integer, nullable=False),
    Column("enabled", Boolean, nullable=False, server_default="true"),
    Column("definition", JSONB, nullable=False),
    Column("version", Integer, nullable=False, server_default="1"),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
Index("ix_policies_position", policies.c.position, policies.c.id)
