"""Timer tables. One live timer per (ticket, metric); ``cycle`` counts its restarts.

``fire_at``/``fractions`` are the precomputed fire points (warnings at fractions of the
target, then the due time at 1.0); ``fired_count`` says how many are behind us and
``next_fire_at`` = ``fire_at[fired_count + 1]`` while running, indexed only for running rows,
so the scheduler's "what is due" query never touches paused or finished timers.
"""

from sqlalchemy import (
    BigInteger, Column, DateTime, Float, Identity, Index, Integer, Table, Text, UniqueConstraint, Uuid, func, text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from ..db import metadata

sla_timers = Table(
    "sla_timers",
    metadata,
    Column("ticket_id", Uuid, primary_key=True),
    Column("metric", Text, primary_key=True),
    Column("policy", Text, nullable=False),
    Column("target_minutes", Integer, nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("due_at", DateTime(timezone=True), nullable=True),
    Column("status", Text, nullable=False, server_default="running"),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("id", BigInteger, Identity(always=False), nullable=False),
    Column("cycle", Integer, nullable=False, server_default="1"),
    Column("policy_id", Uuid, nullable=True),
    Column("calendar_id", Uuid, nullable=True),
    Column("running_since", DateTime(timezone=True), nullable=True),
    Column("consumed_s", Float, nullable=False, server_default="0"),
    Column("fire_at", ARRAY(DateTime(timezone=True)), nullable=True),
    Column("fractions", ARRAY(Float), nullable=True),
    Column("fired_count", Integer, nullable=False, server_default="0"),
    Column("next_fire_at", DateTime(timezone=True), nullable=True),
    Column("pause_statuses", ARRAY(Text), nullable=False, server_default="{pending,on_hold}"),
    Column("escalation", JSONB, nullable=True),
    Column("generation", BigInteger, nullable=False, server_default="1"),
    Column("paused_at", DateTime(timezone=True), nullable=True),
    Column("fulfilled_at", DateTime(timezone=True), nullable=True),
    Column("breached_at", DateTime(timezone=True), nullable=True),
    Column("cancelled_at", DateTime(timezone=True), nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    #: "policy", or "step": a workflow step's own target from its process definition
    Column("target_from", Text, nullable=False, server_default="policy"),
    UniqueConstraint("id", name="uq_sla_timers_id"),
)
Index("ix_sla_timers_next_fire", sla_timers.c.next_fire_at, postgresql_where=text("status = 'running'"))
Index("ix_sla_timers_live_generation", sla_timers.c.generation,
      postgresql_where=text("status IN ('running', 'paused')"))

#: one row per finished cycle (fulfilled on time or breached): what compliance counts
sla_outcomes = Table(
    "sla_outcomes",
    metadata,
    Column("ticket_id", Uuid, primary_key=True),
    Column("metric", Text, primary_key=True),
    Column("cycle", Integer, primary_key=True),
    Column("outcome", Text, nullable=False),
    Column("due_at", DateTime(timezone=True), nullable=True),
    Column("at", DateTime(timezone=True), nullable=False),
)
Index("ix_sla_outcomes_at", sla_outcomes.c.at)

#: a single row: bumped by every policy or calendar write; timers computed under an older
#: generation are recalculated by the sweep
sla_state = Table(
    "sla_state",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("generation", BigInteger, nullable=False, server_default="1"),
)
