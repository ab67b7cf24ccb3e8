"""Tables of the metric read model (migration 0007).

``ticket_history`` keeps every metric-relevant fact of a ticket so the ticket can be re-folded
whenever a fact arrives, in any order; ``ticket_metrics`` is the per-ticket fact row (dimensions
plus the figures of ``metrics.rules.metric_values``) and remembers in ``contributions`` what it
last added to the rollups, so a re-fold applies only the difference: a late event fixes the
rollups and nothing is ever counted twice. Rollups are keyed by UTC hour, dimension and value;
requests sum hours into the caller's buckets and never scan the fact rows.
"""

from sqlalchemy import (
    ARRAY, BigInteger, Boolean, Column, DateTime, Float, Index, Integer, SmallInteger, Table, Text, Uuid, text,
)
from sqlalchemy.dialects.postgresql import JSONB

from ..db import metadata

#: one row per metric-relevant fact; ``fact_key`` is the fact's natural identity (not the envelope
#: id: a re-published event with a new id is still the same fact), so a redelivery is a no-op
ticket_history = Table(
    "ticket_history",
    metadata,
    Column("ticket_id", Uuid, primary_key=True),
    Column("fact_key", Text, primary_key=True),
    Column("kind", Text, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("body", JSONB, nullable=False),
)

_OPEN = text("created_at IS NOT NULL AND NOT resolved AND NOT merged")

ticket_metrics = Table(
    "ticket_metrics",
    metadata,
    Column("ticket_id", Uuid, primary_key=True),
    Column("number", BigInteger, nullable=True),
    # null until ticket.created is folded: such rows are in no figure
    Column("created_at", DateTime(timezone=True), nullable=True),
    Column("status", Text, nullable=True),
    Column("first_reply_at", DateTime(timezone=True), nullable=True),
    Column("resolved_at", DateTime(timezone=True), nullable=True),
    # dimensions (the ticket's current ones: every figure follows the ticket's present team/agent)
    Column("team_id", Uuid, nullable=True),
    Column("assignee_id", Text, nullable=True),
    Column("channel", Text, nullable=True),
    Column("ticket_type", Text, nullable=True),
    Column("priority", Text, nullable=True),
    Column("customer_id", Uuid, nullable=True),
    Column("customer_tier", Text, nullable=True),
    Column("organization_id", Uuid, nullable=True),
    Column("brand", Text, nullable=True),
    Column("tags", ARRAY(Text), nullable=False, server_default=text("'{}'::text[]")),
    # the business calendar the business minutes were counted in (null: none known, 24x7)
    Column("calendar_id", Uuid, nullable=True),
    # metrics.rules.metric_values
    Column("first_reply_minutes", Float, nullable=True),
    Column("first_reply_business_minutes", Float, nullable=True),
    Column("full_resolution_minutes", Float, nullable=True),
    Column("full_resolution_business_minutes", Float, nullable=True),
    Column("requester_wait_minutes", Float, nullable=True),
    Column("requester_wait_business_minutes", Float, nullable=True),
    Column("agent_wait_minutes", Float, nullable=True),
    Column("agent_wait_business_minutes", Float, nullable=True),
    Column("on_hold_minutes", Float, nullable=True),
    Column("on_hold_business_minutes", Float, nullable=True),
    Column("next_replies_total_minutes", Float, nullable=True),
    Column("next_replies_total_business_minutes", Float, nullable=True),
    Column("next_replies", Integer, nullable=False, server_default=text("0")),
    Column("reopens", Integer, nullable=False, server_default=text("0")),
    Column("replies", Integer, nullable=False, server_default=text("0")),
    Column("assignee_hops", Integer, nullable=False, server_default=text("0")),
    Column("team_hops", Integer, nullable=False, server_default=text("0")),
    Column("resolved", Boolean, nullable=False, server_default=text("false")),
    Column("one_touch", Boolean, nullable=False, server_default=text("false")),
    Column("first_contact", Boolean, nullable=False, server_default=text("false")),
    Column("merged", Boolean, nullable=False, server_default=text("false")),
    Column("csat", SmallInteger, nullable=True),
    Column("nps", SmallInteger, nullable=True),
    Column("sla_achieved", Integer, nullable=False, server_default=text("0")),
    Column("sla_breached", Integer, nullable=False, server_default=text("0")),
    # while open: when the ticket becomes overdue / at risk (readmodel.targets.sla_clock; None
    # without a running target with a due time); the board counts the current hour's exactly here
    Column("sla_overdue_at", DateTime(timezone=True), nullable=True),
    Column("sla_at_risk_at", DateTime(timezone=True), nullable=True),
    # what this row last added to metric_rollups / sla_rollups (the re-fold subtracts exactly it)
    Column("contributions", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    # the newest folded fact's time (kpis' as_of), and the wall clock of the last fold
    Column("event_at", DateTime(timezone=True), nullable=True),
    Column("folded_at", DateTime(timezone=True), nullable=False, server_default=text("clock_timestamp()")),
)
Index("ix_ticket_metrics_created_at", ticket_metrics.c.created_at)
Index("ix_ticket_metrics_first_reply_at", ticket_metrics.c.first_reply_at)
Index("ix_ticket_metrics_resolved_at", ticket_metrics.c.resolved_at)
Index("ix_ticket_metrics_event_at", ticket_metrics.c.event_at)
Index("ix_ticket_metrics_customer", ticket_metrics.c.customer_id)
Index("ix_ticket_metrics_open_team", ticket_metrics.c.team_id, ticket_metrics.c.created_at, postgresql_where=_OPEN)
Index("ix_ticket_metrics_open_assignee", ticket_metrics.c.assignee_id, ticket_metrics.c.created_at,
      postgresql_where=_OPEN)
# the board's backlog ages count the hour that straddles an age bound exactly here (open_rollups
# holds the other hours); team and assignee included so that a scoped count, or a scoped join that
# picks this index, reads no ticket row
Index("ix_ticket_metrics_open_created", ticket_metrics.c.created_at, postgresql_where=_OPEN,
      postgresql_include=["team_id", "assignee_id"])
# the board's overdue / at-risk counts: the current hour's part exactly here (open_rollups holds
# the earlier hours)
Index("ix_ticket_metrics_open_overdue", ticket_metrics.c.sla_overdue_at, postgresql_where=_OPEN,
      postgresql_include=["team_id", "assignee_id"])
Index("ix_ticket_metrics_open_at_risk", ticket_metrics.c.sla_at_risk_at, postgresql_where=_OPEN,
      postgresql_include=["team_id", "assignee_id"])


def _sum(name: str) -> Column:
    return Column(name, Float, nullable=False, server_default=text("0"))


def _count(name: str) -> Column:
    return Column(name, BigInteger, nullable=False, server_default=text("0"))


def _rollup_columns() -> list[Column]:
    """The sums of a rollup row; the hourly and the daily tables hold the same ones."""
    return [
        _count("created"),
        _count("solved"),
        _count("first_reply_n"), _sum("first_reply_sum"), _sum("first_reply_bsum"),
        Column("first_reply_hist", ARRAY(Integer), nullable=True),
        _sum("resolution_sum"), _sum("resolution_bsum"),
        Column("resolution_hist", ARRAY(Integer), nullable=True),
        _sum("requester_wait_sum"), _sum("requester_wait_bsum"),
        _sum("agent_wait_sum"), _sum("agent_wait_bsum"),
        _sum("on_hold_sum"), _sum("on_hold_bsum"),
        _count("next_reply_n"), _sum("next_reply_sum"), _sum("next_reply_bsum"),
        _count("reopens"), _count("replies"), _count("assignee_hops"), _count("team_hops"),
        _count("one_touch"), _count("first_contact"),
        _count("csat_n"), _count("csat_satisfied"), _count("csat_rating_sum"),
        _count("nps_n"), _count("nps_promoters"), _count("nps_detractors"),
        _count("sla_n"), _count("sla_achieved"),
        _count("delivery_failures"),
        _count("deflections"),
        # at created_at: the ticket is linked to a customer / has at least one SLA target (the
        # board's all-time counters come from these instead of a count over ticket_metrics)
        _count("linked"),
        _count("with_sla"),
    ]


#: per UTC hour x dimension value, the sums every figure is derived from (docs/metrics.md,
#: "Rollups"): means are sum / n, shares are count / n; ``*_hist`` are counts per bin of
#: ``readmodel.histogram.HIST_EDGES_MINUTES`` for percentiles
metric_rollups = Table(
    "metric_rollups",
    metadata,
    Column("dim", Text, primary_key=True),
    Column("bucket", DateTime(timezone=True), primary_key=True),
    Column("dim_value", Text, primary_key=True),
    *_rollup_columns(),
)

#: the same sums per UTC day (bucket = UTC midnight), written with the hourly rows: a long range
#: reads whole UTC days here and only its edge hours from metric_rollups (leaderboards and
#: breakdowns over 30 days read ~30 rows per value instead of ~720)
metric_rollups_daily = Table(
    "metric_rollups_daily",
    metadata,
    Column("dim", Text, primary_key=True),
    Column("bucket", DateTime(timezone=True), primary_key=True),
    Column("dim_value", Text, primary_key=True),
    *_rollup_columns(),
)

#: the open backlog per dimension value x UTC hour of creation (migration 0009), maintained by the
#: fold like the rollups: an open ticket (created, not resolved, not merged) adds ``open`` = 1 and,
#: without an assignee, ``unassigned`` = 1 at its created_at hour for each of its dimension values;
#: the board sums it instead of counting the open tickets
open_rollups = Table(
    "open_rollups",
    metadata,
    Column("dim", Text, primary_key=True),
    Column("bucket", DateTime(timezone=True), primary_key=True),
    Column("dim_value", Text, primary_key=True),
    _count("open"),
    _count("unassigned"),
    # (migration 0010) open tickets becoming overdue / at risk in this hour (``sla_clock``)
    _count("overdue_from"),
    _count("at_risk_from"),
)

#: SLA outcomes per UTC hour x dimension value x policy x SLA metric (``step:<key>`` for steps)
sla_rollups = Table(
    "sla_rollups",
    metadata,
    Column("dim", Text, primary_key=True),
    Column("bucket", DateTime(timezone=True), primary_key=True),
    Column("dim_value", Text, primary_key=True),
    Column("policy", Text, primary_key=True),
    Column("metric", Text, primary_key=True),
    _count("achieved"),
    _count("breached"),
)

#: each SLA target's current state, from sla.* events (the newest event time wins): at-risk and
#: overdue are read here with the due time index
sla_targets = Table(
    "sla_targets",
    metadata,
    Column("ticket_id", Uuid, primary_key=True),
    Column("metric", Text, primary_key=True),
    Column("policy", Text, nullable=True),
    Column("target_minutes", Integer, nullable=True),
    Column("started_at", DateTime(timezone=True), nullable=True),
    Column("due_at", DateTime(timezone=True), nullable=True),
    # running | paused | fulfilled | cancelled
    Column("state", Text, nullable=False),
    # green | yellow | red | breached (sla-svc's colour; breached stays until the target ends)
    Column("colour", Text, nullable=False, server_default=text("'green'")),
    Column("event_at", DateTime(timezone=True), nullable=False),
)
Index("ix_sla_targets_running_due", sla_targets.c.due_at, postgresql_where=text("state = 'running'"))

#: business calendars as sla-svc announces them (sla.team_calendar_changed); team_key is the
#: team id or 'default'
business_calendars = Table(
    "business_calendars",
    metadata,
    Column("team_key", Text, primary_key=True),
    Column("calendar_id", Uuid, nullable=True),
    Column("calendar", JSONB, nullable=True),
    Column("version", BigInteger, nullable=False),
)

#: a customer's tier and organisation (customer.* events), the dimensions a ticket takes from it
customer_dims = Table(
    "customer_dims",
    metadata,
    Column("customer_id", Uuid, primary_key=True),
    Column("tier", Text, nullable=True),
    Column("organization_id", Uuid, nullable=True),
    Column("event_at", DateTime(timezone=True), nullable=False),
)

#: one row per failed outbound delivery (delivery.failed), so a redelivery counts once
delivery_failures = Table(
    "delivery_failures",
    metadata,
    Column("delivery_id", Uuid, primary_key=True),
    Column("ticket_id", Uuid, nullable=True),
    Column("channel", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
)

#: the last outcome of each knowledge-base suggestion (kb.suggestion_outcome): a correction moves
#: its deflection from the old outcome's hour to the new one's, a replay changes nothing
kb_suggestion_outcomes = Table(
    "kb_suggestion_outcomes",
    metadata,
    Column("suggestion_id", Uuid, primary_key=True),
    Column("deflected", Boolean, nullable=False),
    Column("channel", Text, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
)
