from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Identity,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    Table,
    Text,
    Uuid,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, TSVECTOR

from ..db import metadata

tickets = Table(
    "tickets",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("number", BigInteger, Identity(), nullable=False, unique=True),
    Column("subject", Text, nullable=False),
    Column("description", Text, nullable=False, server_default=""),
    Column("status", Text, nullable=False),
    Column("priority", Text, nullable=False),
    Column("type", Text, nullable=True),
    Column("channel", Text, nullable=True),
    Column("tags", ARRAY(Text), nullable=False, server_default="{}"),
    Column("custom_fields", JSONB, nullable=False, server_default="{}"),
    # the requester as {"sealed": token} (AES-GCM, pii/codec.py; a plaintext object on rows written
    # before migration 0018 until the re-encrypt command moves them)
    Column("requester", JSONB, nullable=False),
    Column("requester_identity_kind", Text, nullable=True),
    # plaintext primary identity of rows written before 0018 (new rows: NULL, the index below)
    Column("requester_identity_value", Text, nullable=True),
    # blind indexes (pii/codec.py): the primary identity, and every identity of the requester
    Column("requester_identity_bidx", Text, nullable=True),
    Column("requester_bidx", ARRAY(Text), nullable=False, server_default="{}"),
    Column("customer_id", Uuid, nullable=True),
    Column("created_by", Text, nullable=False),
    Column("first_response_due_at", DateTime(timezone=True), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("version", Integer, nullable=False, server_default="1"),
    Column("language", Text),
    Column("custom_status_id", Uuid),
    Column("team_id", Uuid),
    Column("assignee_id", Text),
    Column("assignment_state", Text),  # offered | accepted
    Column("offered_at", DateTime(timezone=True)),
    Column("offered_to", ARRAY(Text), nullable=False, server_default="{}"),
    Column("cc", JSONB, nullable=False, server_default="[]"),
    Column("followers", ARRAY(Text), nullable=False, server_default="{}"),
    Column("form_version", Integer),
    Column("conversation_key", Text),
    Column("follow_up_of", Uuid),
    Column("merged_into", Uuid),
    Column("first_response_at", DateTime(timezone=True)),
    Column("awaiting_agent_since", DateTime(timezone=True)),
    Column("status_changed_at", DateTime(timezone=True)),
    Column("solved_at", DateTime(timezone=True)),
    Column("closed_at", DateTime(timezone=True)),
    Column("updated_by", Text),
    Column("message_count", Integer, nullable=False, server_default="0"),
    # public messages only: the count a channel key (the customer's side) is shown
    Column("public_message_count", Integer, nullable=False, server_default="0"),
    # CJK bigrams + folded words of subject (weight A), public text (B), internal notes (C); see search.py
    Column("search", TSVECTOR, nullable=False, server_default="''::tsvector"),
    # the worst state of the ticket's running SLA timers (green/yellow/red/breached), from sla-svc events
    Column("sla_state", Text),
    Column("sla_due_at", DateTime(timezone=True)),
    # the customer's tier (vip, gold, ...) as customer-svc last said; kept on open tickets for routing and SLA
    Column("customer_tier", Text),
    # the answer to the ticket's CSAT survey (customer-svc's survey.answered; migration 0010)
    Column("csat_rating", SmallInteger),
    Column("csat_comment", Text),
    Column("csat_answered_at", DateTime(timezone=True)),
    Column("csat_survey_id", Uuid),
    # a care ticket's customer while the ticket is not solved or closed (unique: one open care
    # ticket per customer; migration 0010)
    Column("care_of", Uuid),
    # soft deletion (migration 0022): closed and hidden from every read until restored
    Column("deleted_at", DateTime(timezone=True)),
    Column("deleted_by", Text),
    Column("status_before_delete", Text),
)
Index("ix_tickets_created_at_id", tickets.c.created_at.desc(), tickets.c.id.desc())
Index("ix_tickets_created_by_created_at", tickets.c.created_by, tickets.c.created_at.desc(), tickets.c.id.desc())
Index("ix_tickets_requester_bidx", tickets.c.requester_bidx, postgresql_using="gin")
Index("ix_tickets_customer_id", tickets.c.customer_id)
Index("ux_tickets_open_care", tickets.c.care_of, unique=True, postgresql_where=tickets.c.care_of.isnot(None))
Index("ix_tickets_deleted", tickets.c.deleted_at.desc(), tickets.c.id.desc(),
      postgresql_where=tickets.c.deleted_at.isnot(None))

# what opened a system task (``survey:<id>``), claimed with it: never a second for one origin
task_origins = Table(
    "ticket_task_origins",
    metadata,
    Column("origin", Text, primary_key=True),
    Column("ticket_id", Uuid, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("principal", Text, primary_key=True),
    Column("key", Text, primary_key=True),
    Column("request_hash", Text, nullable=False),
    Column("ticket_id", Uuid, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("scope", Text, nullable=False, server_default="ticket.create"),
    Column("response", JSONB),
)

customer_identities = Table(
    "customer_identity_projection",
    metadata,
    # unique on (kind, value_bidx) since migration 0018; ``value`` is the plaintext of older rows
    Column("kind", Text, nullable=False),
    Column("value", Text, nullable=True),
    Column("value_enc", Text, nullable=True),
    Column("value_bidx", Text, nullable=True),
    Column("customer_id", Uuid, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
Index("ix_customer_identity_projection_customer", customer_identities.c.customer_id)
Index("uq_customer_identity_projection_bidx", customer_identities.c.kind, customer_identities.c.value_bidx, unique=True)


custom_statuses = Table(
    "custom_statuses",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("key", Text, nullable=False, unique=True),
    Column("label", Text, nullable=False),
    Column("category", Text, nullable=False),
    Column("active", Boolean, nullable=False, server_default="true"),
    Column("position", Integer, nullable=False, server_default="0"),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

messages = Table(
    "messages",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("ticket_id", Uuid, ForeignKey("tickets.id"), nullable=False),
    Column("author_kind", Text, nullable=False),  # customer | agent | system
    Column("author_id", Text),
    Column("public", Boolean, nullable=False),
    Column("body_text", Text, nullable=False),
    Column("body_html", Text),  # sanitised
    Column("channel", Text),
    Column("external_id", Text),
    Column("email_message_id", Text),
    Column("attachments", JSONB, nullable=False, server_default="[]"),
    Column("metadata", JSONB, nullable=False, server_default="{}"),
    Column("created_at", DateTime(timezone=True), nullable=False),
    # public agent messages only (null otherwise): queued | sent | failed | undeliverable (migration 0008)
    Column("delivery_status", Text),
    Column("delivery_reason", Text),
    Column("delivery_attempts", Integer),
    Column("delivery_updated_at", DateTime(timezone=True)),
)

# the newest way to reach the customer per ticket and channel (a DingTalk session webhook is a
# bearer URL: kept only here, never in message metadata an API answer could show)
reply_routes = Table(
    "reply_routes",
    metadata,
    Column("ticket_id", Uuid, ForeignKey("tickets.id"), primary_key=True),
    Column("channel", Text, primary_key=True),
    Column("route", JSONB, nullable=False, server_default="{}"),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

attachment_blobs = Table(
    "attachment_blobs",
    metadata,
    Column("sha256", Text, primary_key=True),
    Column("content", LargeBinary, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

channel_deliveries = Table(
    "channel_deliveries",
    metadata,
    Column("channel", Text, primary_key=True),
    Column("external_id", Text, primary_key=True),
    Column("ticket_id", Uuid),
    Column("message_id", Uuid),
    Column("created_ticket", Boolean, nullable=False, server_default="false"),
    Column("ignored", Text),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

links = Table(
    "ticket_links",
    metadata,
    Column("ticket_id", Uuid, ForeignKey("tickets.id"), primary_key=True),
    Column("other_id", Uuid, ForeignKey("tickets.id"), primary_key=True),
    Column("kind", Text, primary_key=True),
    Column("created_by", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

audit = Table(
    "ticket_audit",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("ticket_id", Uuid, nullable=False),
    Column("actor", Text, nullable=False),
    Column("action", Text, nullable=False),
    Column("changes", JSONB, nullable=False, server_default="{}"),
    Column("at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

sla_projection = Table(
    "sla_projection",
    metadata,
    Column("ticket_id", Uuid, primary_key=True),
    Column("metric", Text, primary_key=True),
    Column("state", Text, nullable=False),  # green | yellow | red | breached | done
    Column("due_at", DateTime(timezone=True)),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
