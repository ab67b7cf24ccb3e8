from sqlalchemy import Column, DateTime, Index, Integer, SmallInteger, Table, Text, Uuid, text

from ..db import metadata

# One row per ticket, filled by whichever event arrives first; every column except the key is
# nullable so that events can be folded in any order (a link or an SLA may precede the
# creation). KPIs count only rows whose ticket.created has arrived (created_at not null).
ticket_facts = Table(
    "ticket_facts",
    metadata,
    Column("ticket_id", Uuid, primary_key=True),
    Column("created_at", DateTime(timezone=True), nullable=True),  # the event's data.created_at
    Column("priority", Text, nullable=True),
    Column("status", Text, nullable=True),
    # the ticket version the status came from: the newest wins whatever the arrival order
    Column("status_version", Integer, nullable=True),
    Column("first_response_at", DateTime(timezone=True), nullable=True),
    Column("channel", Text, nullable=True),
    Column("customer_id", Uuid, nullable=True),
    Column("first_response_due_at", DateTime(timezone=True), nullable=True),
    # ticket.created's type, then ticket.updated's changes of it (process steps are per type)
    Column("ticket_type", Text, nullable=True),
    # wall clock (not transaction start) when ticket.created was folded in (the end of its fold
    # transaction's batch, kpis/batch.py): ingested_at -
    # created_at is the propagation lag. Null while only later events have arrived.
    Column("ingested_at", DateTime(timezone=True), nullable=True, server_default=text("clock_timestamp()")),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=text("clock_timestamp()")),
)
Index("ix_ticket_facts_created_at", ticket_facts.c.created_at)

# One row per answered survey (customer-svc answers a survey once, so survey_id is the answer's
# identity and a redelivery or re-publication folds to nothing). The comment is not kept:
# counting needs the figure only, and the text is personal data.
survey_answers = Table(
    "survey_answers",
    metadata,
    Column("survey_id", Uuid, primary_key=True),
    Column("kind", Text, nullable=False),  # csat | nps
    Column("customer_id", Uuid, nullable=False),
    Column("ticket_id", Uuid, nullable=True),
    Column("rating", SmallInteger, nullable=True),  # CSAT 1-5
    Column("score", SmallInteger, nullable=True),  # NPS 0-10
    Column("answered_at", DateTime(timezone=True), nullable=False),  # the event's data.at
    Column("ingested_at", DateTime(timezone=True), nullable=False, server_default=text("clock_timestamp()")),
)
Index("ix_survey_answers_answered_at", survey_answers.c.answered_at)
