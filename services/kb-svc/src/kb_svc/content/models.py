"""The knowledge base's content tables.

Categories hold sections, sections hold articles; an article has one row per locale in
``kb_article_translations`` carrying both its draft and its published copy (so editing the draft
never touches what readers see), and every draft save, publish, unpublish, archive and restore
appends a row to ``kb_article_versions``.
"""

from sqlalchemy import (CheckConstraint, Column, DateTime, ForeignKey, ForeignKeyConstraint, Index, Integer,
                        LargeBinary, PrimaryKeyConstraint, Table, Text, Uuid, func, text)
from sqlalchemy.dialects.postgresql import ARRAY

from ..db import metadata

kb_categories = Table(
    "kb_categories",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("name", Text, nullable=False),
    Column("locale", Text, nullable=False),
    Column("position", Integer, nullable=False),
    Column("description", Text, nullable=False, server_default=""),
    Column("version", Integer, nullable=False, server_default="1"),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
Index("ix_kb_categories_position", kb_categories.c.position, kb_categories.c.id)

kb_sections = Table(
    "kb_sections",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("category_id", Uuid, ForeignKey("kb_categories.id"), nullable=False),
    Column("name", Text, nullable=False),
    Column("locale", Text, nullable=False),
    Column("position", Integer, nullable=False),
    Column("description", Text, nullable=False, server_default=""),
    Column("version", Integer, nullable=False, server_default="1"),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
Index("ix_kb_sections_category_position", kb_sections.c.category_id, kb_sections.c.position, kb_sections.c.id)

kb_articles = Table(
    "kb_articles",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("section_id", Uuid, ForeignKey("kb_sections.id"), nullable=False),
    Column("owner_id", Text, nullable=False),
    Column("visibility", Text, nullable=False),
    Column("labels", ARRAY(Text), nullable=False, server_default=text("'{}'::text[]")),
    Column("review_at", DateTime(timezone=True)),
    Column("state", Text, nullable=False, server_default="active"),
    Column("version", Integer, nullable=False, server_default="1"),
    Column("created_by", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("visibility IN ('public', 'customers', 'agents')", name="visibility"),
    CheckConstraint("state IN ('active', 'archived')", name="state"),
)
Index("ix_kb_articles_created", kb_articles.c.created_at, kb_articles.c.id)
Index("ix_kb_articles_section", kb_articles.c.section_id, kb_articles.c.created_at, kb_articles.c.id)
Index("ix_kb_articles_labels", kb_articles.c.labels, postgresql_using="gin")
Index("ix_kb_articles_review_at", kb_articles.c.review_at, postgresql_where=kb_articles.c.review_at.isnot(None))

kb_article_translations = Table(
    "kb_article_translations",
    metadata,
    Column("article_id", Uuid, ForeignKey("kb_articles.id", ondelete="CASCADE"), nullable=False),
    Column("locale", Text, nullable=False),
    Column("draft_title", Text, nullable=False),
    Column("draft_body_html", Text, nullable=False),
    Column("draft_updated_by", Text, nullable=False),
    Column("draft_updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("published_title", Text),
    Column("published_body_html", Text),
    Column("published_body_text", Text),
    Column("published_version", Integer),
    Column("published_at", DateTime(timezone=True)),
    Column("published_by", Text),
    Column("status", Text, nullable=False, server_default="draft"),
    PrimaryKeyConstraint("article_id", "locale", name="pk_kb_article_translations"),
    CheckConstraint("status IN ('draft', 'published', 'unpublished')", name="status"),
)

kb_article_versions = Table(
    "kb_article_versions",
    metadata,
    Column("article_id", Uuid, nullable=False),
    Column("locale", Text, nullable=False),
    Column("number", Integer, nullable=False),
    Column("action", Text, nullable=False),
    Column("title", Text, nullable=False),
    Column("body_html", Text, nullable=False),
    Column("actor", Text, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("article_id", "locale", "number", name="pk_kb_article_versions"),
    # on the article, not the translation: a deleted translation's history stays
    ForeignKeyConstraint(["article_id"], ["kb_articles.id"], ondelete="CASCADE",
                         name="fk_kb_article_versions_article_id_kb_articles"),
    CheckConstraint("action IN ('draft', 'published', 'unpublished', 'archived', 'restored')", name="action"),
)

kb_article_attachments = Table(
    "kb_article_attachments",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("article_id", Uuid, ForeignKey("kb_articles.id", ondelete="CASCADE"), nullable=False),
    Column("filename", Text, nullable=False),
    Column("content_type", Text, nullable=False),
    Column("size", Integer, nullable=False),
    Column("sha256", Text, nullable=False),
    Column("content", LargeBinary, nullable=False),
    Column("created_by", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
Index("ix_kb_article_attachments_article", kb_article_attachments.c.article_id, kb_article_attachments.c.created_at)
