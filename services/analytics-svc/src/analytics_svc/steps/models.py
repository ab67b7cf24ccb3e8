from sqlalchemy import Boolean, Column, DateTime, Float, Index, Integer, Table, Text, Uuid, text

from ..db import metadata

# One row per run of a step (``step_id`` is the run: a step entered again is a new id). Every
# column but the key is nullable and each event fills only its own, so the events of a run
# fold to the same row in any arrival order, and a replay (a rebuild) folds to the same table.
step_runs = Table(
    "step_runs",
    metadata,
    Column("step_id", Uuid, primary_key=True),
    Column("ticket_id", Uuid, nullable=False),
    Column("step", Text, nullable=True),  # the step's key in the process definition
    Column("kind", Text, nullable=True),  # approval / countersign / customer_confirmation / task
    # the ticket's type when the step started (process definitions are per type)
    Column("ticket_type", Text, nullable=True),
    Column("process_version", Integer, nullable=True),
    Column("started_at", DateTime(timezone=True), nullable=True),
    Column("completed_at", DateTime(timezone=True), nullable=True),
    Column("outcome", Text, nullable=True),
    # the step ended rejected (its outcome, or an approval decision that ended it so)
    Column("rejected", Boolean, nullable=False, server_default=text("false")),
    Column("duration_s", Float, nullable=True),  # completed_at - started_at, once both are known
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=text("clock_timestamp()")),
)
Index("ix_step_runs_step_started", step_runs.c.step, step_runs.c.started_at)
Index("ix_step_runs_open", step_runs.c.step, postgresql_where=text("completed_at IS NULL"))

# One row per person's decision on a run (an approver decides once per step, so the pair is
# the decision's identity and a re-published event folds to nothing).
step_decisions = Table(
    "step_decisions",
    metadata,
    Column("step_id", Uuid, primary_key=True),
    Column("decided_by", Text, primary_key=True),
    Column("decision", Text, nullable=False),  # approve / reject / sign
    Column("decided_at", DateTime(timezone=True), nullable=False),
)
