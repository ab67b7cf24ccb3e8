"""Delivery records and their attempt log.

``deliveries.id`` is the stable id carried to the receiver (the e-mail ``Message-ID`` comes from
ticket-svc's event, a webhook's ``webhook-id`` is this id), so a resend after a crash is
recognisably the same message. ``dedupe_key`` makes a redelivered event harmless: one delivery
per (message, channel) for replies, per (event, subscription) for webhooks (a trigger's
``call_webhook`` included), per (survey, channel) for survey invitations, per (step, channel) for
confirmation requests.
"""

from sqlalchemy import (CheckConstraint, Column, DateTime, Float, ForeignKey, Index, Integer, Table,
                        Text, Uuid, func, text)
from sqlalchemy.dialects.postgresql import JSONB

from ..db import metadata

KINDS = ("reply", "notification", "webhook", "survey", "confirmation")
STATUSES = ("queued", "sending", "sent", "failed", "undeliverable")
#: what asked for an attempt: the retry schedule, a manual retry, a webhook replay
TRIGGERS = ("schedule", "retry", "replay")

deliveries = Table(
    "deliveries",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("kind", Text, nullable=False),
    Column("channel", Text, nullable=False),
    #: the key of per-destination limits: one SMTP server, one WeChat app, one webhook host
    Column("destination", Text, nullable=False),
    Column("ticket_id", Uuid, nullable=True),
    Column("message_id", Uuid, nullable=True),
    Column("subscription_id", Uuid, nullable=True),
    #: the event that asked for this delivery
    Column("event_id", Uuid, nullable=True),
    Column("dedupe_key", Text, nullable=False),
    #: what to send (the reply event's data, the webhook's CloudEvent)
    Column("payload", JSONB, nullable=False),
    Column("status", Text, nullable=False, server_default="queued"),
    Column("attempts", Integer, nullable=False, server_default="0"),
    #: attempts allowed before the record is dead; a manual retry grants a fresh budget
    Column("max_attempts", Integer, nullable=False),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    #: while ``sending``: the claim expires then, and another dispatcher may take the row
    Column("lease_until", DateTime(timezone=True), nullable=True),
    #: the agent-facing reason of the current state (failed, undeliverable, deferred)
    Column("reason", Text, nullable=True),
    Column("last_code", Text, nullable=True),
    Column("provider_id", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("sent_at", DateTime(timezone=True), nullable=True),
    #: what asked for the next attempt; written into that attempt's log row, then back to
    #: ``schedule`` (so the log tells a replay or a manual retry from the schedule's attempts)
    Column("next_trigger", Text, nullable=False, server_default="schedule"),
    #: how many times an admin replayed this webhook delivery
    Column("replays", Integer, nullable=False, server_default="0"),
    CheckConstraint("kind IN ('reply', 'notification', 'webhook', 'survey', 'confirmation')", name="kind"),
    CheckConstraint("status IN ('queued', 'sending', 'sent', 'failed', 'undeliverable')", name="status"),
    CheckConstraint("next_trigger IN ('schedule', 'retry', 'replay')", name="next_trigger"),
)
Index("uq_deliveries_dedupe_key", deliveries.c.dedupe_key, unique=True)
#: the dispatcher's claim: due queued rows and expired leases
Index("ix_deliveries_due", deliveries.c.next_attempt_at,
      postgresql_where=text("status IN ('queued', 'sending')"))
Index("ix_deliveries_created", deliveries.c.created_at, deliveries.c.id)
Index("ix_deliveries_ticket", deliveries.c.ticket_id, deliveries.c.created_at,
      postgresql_where=text("ticket_id IS NOT NULL"))
#: a webhook subscription's delivery log (newest first), and ending its queued rows when disabled
Index("ix_deliveries_subscription", deliveries.c.subscription_id, deliveries.c.created_at, deliveries.c.id,
      postgresql_where=text("subscription_id IS NOT NULL"))

delivery_attempts = Table(
    "delivery_attempts",
    metadata,
    Column("delivery_id", Uuid, ForeignKey("deliveries.id", ondelete="CASCADE"), primary_key=True),
    Column("number", Integer, primary_key=True),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("duration_ms", Float, nullable=False),
    #: sent | transient | permanent | undeliverable
    Column("outcome", Text, nullable=False),
    Column("code", Text, nullable=True),
    Column("error", Text, nullable=True),
    #: schedule | retry | replay (``deliveries.next_trigger`` when the attempt was claimed)
    Column("trigger", Text, nullable=False, server_default="schedule"),
    CheckConstraint("trigger IN ('schedule', 'retry', 'replay')", name="trigger"),
)
