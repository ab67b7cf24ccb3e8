from sqlalchemy import Column, DateTime, Integer, Table, Text, Uuid, func

from ..db import metadata

sla_timers = Table(
    "sla_timers",
    metadata,
    Column("ticket_id", Uuid, primary_key=True),
    Column("metric", Text, primary_key=True),
    Column("policy", Text, nullable=False),
    Column("target_minutes", Integer, nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("due_at", DateTime(timezone=True), nullable=False),
    Column("status", Text, nullable=False, server_default="running"),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
