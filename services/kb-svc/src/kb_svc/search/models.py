"""The search tables: one document per published translation, and the index's vocabulary.

``kb_search_documents`` holds what a search needs without touching the content tables: the
translation's published title and text, the article's visibility, labels and place, and the
weighted ``tsvector`` (A title, B labels, C body, D the Chinese bigrams). ``words_en`` /
``words_zh`` are the document's distinct words, kept so that re-indexing or deleting it can
take its share back out of ``kb_search_vocabulary`` (word → how many documents hold it), which
spelling correction looks candidates up in by trigram similarity.
"""

from sqlalchemy import (CheckConstraint, Column, DateTime, ForeignKeyConstraint, Index, Integer,
                        PrimaryKeyConstraint, Table, Text, Uuid, func, text)
from sqlalchemy.dialects.postgresql import ARRAY, TSVECTOR

from ..db import metadata

kb_search_documents = Table(
    "kb_search_documents",
    metadata,
    Column("article_id", Uuid, nullable=False),
    Column("locale", Text, nullable=False),
    Column("visibility", Text, nullable=False),
    Column("labels", ARRAY(Text), nullable=False, server_default=text("'{}'::text[]")),
    Column("section_id", Uuid, nullable=False),
    Column("category_id", Uuid, nullable=False),
    Column("title", Text, nullable=False),
    Column("body_text", Text, nullable=False),
    Column("document", TSVECTOR, nullable=False),
    # the title's lexemes alone: a small vector whose index finds the title matches of a common
    # word without reading every document that mentions it
    Column("title_document", TSVECTOR, nullable=False),
    Column("words_en", ARRAY(Text), nullable=False, server_default=text("'{}'::text[]")),
    Column("words_zh", ARRAY(Text), nullable=False, server_default=text("'{}'::text[]")),
    Column("published_at", DateTime(timezone=True)),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("article_id", "locale", name="pk_kb_search_documents"),
    ForeignKeyConstraint(["article_id", "locale"], ["kb_article_translations.article_id",
                                                    "kb_article_translations.locale"],
                         ondelete="CASCADE", name="fk_kb_search_documents_translation"),
    CheckConstraint("visibility IN ('public', 'customers', 'agents')", name="visibility"),
)
Index("ix_kb_search_documents_document", kb_search_documents.c.document, postgresql_using="gin")
Index("ix_kb_search_documents_title_document", kb_search_documents.c.title_document, postgresql_using="gin")
Index("ix_kb_search_documents_section", kb_search_documents.c.section_id)
Index("ix_kb_search_documents_category", kb_search_documents.c.category_id)

kb_search_vocabulary = Table(
    "kb_search_vocabulary",
    metadata,
    Column("language", Text, nullable=False),
    Column("word", Text, nullable=False),
    Column("df", Integer, nullable=False),
    PrimaryKeyConstraint("language", "word", name="pk_kb_search_vocabulary"),
    CheckConstraint("language IN ('en', 'zh')", name="language"),
)
Index("ix_kb_search_vocabulary_word_trgm", kb_search_vocabulary.c.word, postgresql_using="gin",
      postgresql_ops={"word": "gin_trgm_ops"})
