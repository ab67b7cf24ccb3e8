"""Deflection tables: what was suggested to whom (never the text they typed), which suggested
articles were opened, what came of it, and the articles agents linked to tickets."""

from sqlalchemy import (CheckConstraint, Column, DateTime, ForeignKey, Index, PrimaryKeyConstraint, Table, Text,
                        Uuid, func, text)
from sqlalchemy.dialects.postgresql import ARRAY

from ..db import metadata

kb_suggestions = Table(
    "kb_suggestions",
    metadata,
    Column("id", Uuid, primary_key=True),
    #: where it was shown: web (the new-ticket form), agent (while answering), api, ...
    Column("channel", Text, nullable=False),
    Column("language", Text),
    #: SHA-256 of the normalised subject and description: repeated questions can be counted,
    #: the text itself is never stored
    Column("query_hash", Text, nullable=False),
    #: the articles shown, in rank order (at most 5)
    Column("article_ids", ARRAY(Uuid), nullable=False, server_default=text("'{}'::uuid[]")),
    Column("viewer_kind", Text, nullable=False),
    Column("customer_id", Uuid),
    Column("user_id", Text),
    #: the ticket an agent was answering when they asked
    Column("context_ticket_id", Uuid),
    #: the ticket created with this suggestion id (ticket.created's kb_suggestion_id)
    Column("followed_ticket_id", Uuid),
    Column("followed_at", DateTime(timezone=True)),
    #: null while the window is open; then deflected / abandoned / ticket_followed
    Column("outcome", Text),
    Column("decided_at", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("outcome IS NULL OR outcome IN ('deflected', 'abandoned', 'ticket_followed')",
                    name="outcome_known"),
    CheckConstraint("viewer_kind IN ('public', 'customer', 'staff', 'editor')", name="viewer_kind_known"),
)
Index("ix_kb_suggestions_created_at", kb_suggestions.c.created_at)
#: the sweep's work list: undecided suggestions, oldest first
Index("ix_kb_suggestions_open", kb_suggestions.c.created_at, postgresql_where=text("outcome IS NULL"))

kb_suggestion_views = Table(
    "kb_suggestion_views",
    metadata,
    Column("suggestion_id", Uuid, ForeignKey("kb_suggestions.id", ondelete="CASCADE"), nullable=False),
    Column("article_id", Uuid, nullable=False),
    Column("first_viewed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("suggestion_id", "article_id"),
)

kb_ticket_links = Table(
    "kb_ticket_links",
    metadata,
    Column("ticket_id", Uuid, nullable=False),
    Column("article_id", Uuid, ForeignKey("kb_articles.id", ondelete="CASCADE"), nullable=False),
    Column("linked_by", Text, nullable=False),
    Column("linked_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("ticket_id", "article_id"),
)
Index("ix_kb_ticket_links_article", kb_ticket_links.c.article_id)
