"""Notification tables: rules and their team overrides, templates edited by admins, customers'
opt-outs, agents' chat ids, the projections of tickets and users the handlers read, and the log of
what each event sent or skipped (and why)."""

from sqlalchemy import (BigInteger, Boolean, CheckConstraint, Column, DateTime, ForeignKey, Index, Integer, Table,
                        Text, Uuid, func)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from ..db import metadata

notification_rules = Table(
    "notification_rules",
    metadata,
    #: one of catalogue.KEYS (seeded by migration 0004)
    Column("key", Text, primary_key=True),
    Column("enabled", Boolean, nullable=False),
    #: customer | assignee | team_supervisors | users
    Column("recipients", ARRAY(Text), nullable=False),
    #: the named users of the ``users`` recipient
    Column("user_ids", ARRAY(Text), nullable=False, server_default="{}"),
    #: how agents are reached; e-mail when the agent has no id on the chat channel
    Column("agent_channel", Text, nullable=False, server_default="email"),
    Column("version", Integer, nullable=False, server_default="1"),
    Column("updated_by", Text, nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("agent_channel IN ('email', 'wecom', 'dingtalk')", name="agent_channel"),
)

#: a team switches a rule on or off for its tickets. ``brand`` is reserved: brands do not exist
#: yet; when they do, an override keyed by brand gets its own unique index (docs/notifications.md)
notification_rule_teams = Table(
    "notification_rule_teams",
    metadata,
    Column("rule_key", Text, ForeignKey("notification_rules.key", ondelete="CASCADE"), primary_key=True),
    Column("team_id", Uuid, primary_key=True),
    Column("brand", Text, nullable=True),
    Column("enabled", Boolean, nullable=False),
    Column("updated_by", Text, nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

#: stored templates; a key and language without a row uses the built-in (catalogue.BUILTIN)
notification_templates = Table(
    "notification_templates",
    metadata,
    Column("key", Text, primary_key=True),
    Column("language", Text, primary_key=True),
    Column("subject", Text, nullable=False),
    Column("body_text", Text, nullable=False),
    Column("body_html", Text, nullable=False, server_default=""),
    Column("version", Integer, nullable=False, server_default="1"),
    Column("updated_by", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

#: customers' choice: ``kind`` customer (``value`` the customer id) or email (``value`` the
#: lower-cased address: the requester of a ticket is known by address before customer-svc links it)
notification_opt_outs = Table(
    "notification_opt_outs",
    metadata,
    Column("kind", Text, primary_key=True),
    Column("value", Text, primary_key=True),
    Column("opted_out", Boolean, nullable=False),
    Column("version", Integer, nullable=False, server_default="1"),
    Column("updated_by", Text, nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("kind IN ('customer', 'email')", name="kind"),
)

#: how to reach an agent on WeCom / DingTalk (the gateway knows only the e-mail)
notification_contacts = Table(
    "notification_contacts",
    metadata,
    Column("user_id", Uuid, primary_key=True),
    Column("wecom_userid", Text, nullable=True),
    Column("dingtalk_userid", Text, nullable=True),
    Column("version", Integer, nullable=False, server_default="1"),
    Column("updated_by", Text, nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

#: projection of users.events (the highest version wins)
notification_users = Table(
    "notification_users",
    metadata,
    Column("user_id", Uuid, primary_key=True),
    Column("version", Integer, nullable=False),
    Column("name", Text, nullable=True),
    Column("role", Text, nullable=False),
    Column("active", Boolean, nullable=False),
    Column("email", Text, nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

#: projection of tickets.events: what a notification about a ticket needs
notification_tickets = Table(
    "notification_tickets",
    metadata,
    Column("ticket_id", Uuid, primary_key=True),
    Column("number", BigInteger, nullable=True),
    Column("subject", Text, nullable=True),
    Column("status", Text, nullable=True),
    Column("priority", Text, nullable=True),
    Column("channel", Text, nullable=True),
    Column("language", Text, nullable=True),
    Column("requester", JSONB, nullable=False, server_default="{}"),
    Column("customer_id", Uuid, nullable=True),
    Column("team_id", Uuid, nullable=True),
    Column("assignee_id", Text, nullable=True),
    Column("created_by", Text, nullable=True),
    #: the ticket's version in the last event that carried one (older events change nothing)
    Column("version", Integer, nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

#: what each event did: one row per (event, key, recipient), queued with its delivery or skipped
#: with the reason (opted out, no address, deactivated, stale ...)
notification_log = Table(
    "notification_log",
    metadata,
    Column("event_id", Uuid, primary_key=True),
    Column("key", Text, primary_key=True),
    Column("recipient", Text, primary_key=True),
    Column("ticket_id", Uuid, nullable=True),
    Column("status", Text, nullable=False),
    Column("reason", Text, nullable=True),
    Column("channel", Text, nullable=True),
    Column("delivery_id", Uuid, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    #: the trigger or automation whose ``notify`` action asked for it (ticket.notification_requested)
    Column("rule", Text, nullable=True),
    CheckConstraint("status IN ('queued', 'skipped')", name="status"),
)
Index("ix_notification_log_ticket", notification_log.c.ticket_id, notification_log.c.created_at)
