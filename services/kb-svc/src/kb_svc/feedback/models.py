"""Feedback tables: one vote per viewer and article, view counts per translation."""

from sqlalchemy import (BigInteger, Boolean, CheckConstraint, Column, DateTime, ForeignKey, PrimaryKeyConstraint,
                        Table, Text, Uuid, func)

from ..db import metadata

kb_article_votes = Table(
    "kb_article_votes",
    metadata,
    Column("article_id", Uuid, ForeignKey("kb_articles.id", ondelete="CASCADE"), nullable=False),
    #: user:<id>, customer:<id> or voter:<the anonymous reader's X-KB-Voter id>
    Column("voter", Text, nullable=False),
    Column("locale", Text, nullable=False),
    Column("helpful", Boolean, nullable=False),
    Column("comment", Text),
    Column("viewer_kind", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("article_id", "voter"),
    CheckConstraint("viewer_kind IN ('public', 'customer', 'staff', 'editor')", name="viewer_kind_known"),
)

kb_article_view_counts = Table(
    "kb_article_view_counts",
    metadata,
    Column("article_id", Uuid, ForeignKey("kb_articles.id", ondelete="CASCADE"), nullable=False),
    Column("locale", Text, nullable=False),
    Column("views", BigInteger, nullable=False),
    Column("last_viewed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("article_id", "locale"),
)
