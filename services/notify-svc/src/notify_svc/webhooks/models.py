"""Webhook subscriptions. Secrets are stored encrypted (crypto.py): the current one, and the
one it replaced while that stays valid (24 h after a rotation)."""

from sqlalchemy import Boolean, Column, DateTime, Index, Integer, LargeBinary, Table, Text, Uuid, func
from sqlalchemy.dialects.postgresql import ARRAY

from ..db import metadata

webhook_subscriptions = Table(
    "webhook_subscriptions",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("url", Text, nullable=False),
    Column("event_types", ARRAY(Text), nullable=False),
    Column("description", Text, nullable=False, server_default=""),
    Column("enabled", Boolean, nullable=False, server_default="true"),
    #: why it is disabled: "disabled by an admin", "the receiver answered 410", "failing since …"
    Column("disabled_reason", Text, nullable=True),
    Column("secret_encrypted", LargeBinary, nullable=False),
    Column("previous_secret_encrypted", LargeBinary, nullable=True),
    Column("previous_secret_expires_at", DateTime(timezone=True), nullable=True),
    #: start of the current run of failed deliveries (schedule.py: auto-disable after 5 days)
    Column("failing_since", DateTime(timezone=True), nullable=True),
    Column("created_by", Text, nullable=False),
    Column("version", Integer, nullable=False, server_default="1"),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
Index("ix_webhook_subscriptions_created", webhook_subscriptions.c.created_at, webhook_subscriptions.c.id)
#: the delivery engine looks up the enabled subscriptions of an event type
Index("ix_webhook_subscriptions_event_types", webhook_subscriptions.c.event_types, postgresql_using="gin",
      postgresql_where=webhook_subscriptions.c.enabled)

#: ``Idempotency-Key`` of subscription creates: a replay answers the subscription, never the
#: secret again (it was shown once)
webhook_idempotency_keys = Table(
    "webhook_idempotency_keys",
    metadata,
    Column("caller", Text, primary_key=True),
    Column("key", Text, primary_key=True),
    Column("request_hash", Text, nullable=False),
    Column("subscription_id", Uuid, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
