from sqlalchemy import BigInteger, Column, DateTime, Identity, Table, Text, UniqueConstraint, func

from ..db import metadata

#: Zendesk's integer ids for our UUIDs (migration 0008): one sequence for every kind, so an id
#: names one thing whatever endpoint it is sent to; tickets use their own number instead
zendesk_ids = Table(
    "zendesk_ids",
    metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column("kind", Text, nullable=False),  # customer | user | team | comment | identity | organization | field
    Column("native", Text, nullable=False),  # the owning service's id
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    UniqueConstraint("kind", "native", name="uq_zendesk_ids_kind_native"),
)
