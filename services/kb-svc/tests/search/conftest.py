"""Search fixtures: published articles written straight into the content tables (as the
content package leaves them after a publish) and indexed through the real indexer."""

from __future__ import annotations

import html
import uuid
from dataclasses import dataclass, field

import pytest
from sqlalchemy import text

from kb_svc.search.indexer import index_translation


@dataclass
class Library:
    """Categories and sections made on demand; ``publish`` adds one published translation."""

    engine: object
    categories: dict[str, uuid.UUID] = field(default_factory=dict)
    sections: dict[str, uuid.UUID] = field(default_factory=dict)

    async def section(self, conn, name: str, category: str = "General") -> uuid.UUID:
        if category not in self.categories:
            self.categories[category] = uuid.uuid4()
            await conn.execute(text("INSERT INTO kb_categories (id, name, locale, position) VALUES (:id, :n, 'en', 0)"),
                               {"id": self.categories[category], "n": category})
        key = f"{category}/{name}"
        if key not in self.sections:
            self.sections[key] = uuid.uuid4()
            await conn.execute(text("INSERT INTO kb_sections (id, category_id, name, locale, position) "
                                    "VALUES (:id, :c, :n, 'en', 0)"),
                               {"id": self.sections[key], "c": self.categories[category], "n": name})
        return self.sections[key]

    async def publish(self, *, title: str, body: str, locale: str = "en", visibility: str = "public",
                      labels: list[str] | None = None, section: str = "Basics", category: str = "General",
                      article_id: uuid.UUID | None = None, state: str = "active") -> uuid.UUID:
        async with self.engine.begin() as conn:
            section_id = await self.section(conn, section, category)
            if article_id is None:
                article_id = uuid.uuid4()
                await conn.execute(text("""
                    INSERT INTO kb_articles (id, section_id, owner_id, visibility, labels, state, created_by)
                    VALUES (:id, :s, 'u-editor-1', :v, :l, :st, 'u-editor-1')"""),
                    {"id": article_id, "s": section_id, "v": visibility, "l": labels or [], "st": state})
            await conn.execute(text("""
                INSERT INTO kb_article_translations (article_id, locale, draft_title, draft_body_html, draft_updated_by,
                    published_title, published_body_html, published_body_text, published_version, published_at,
                    published_by, status)
                VALUES (:id, :loc, :t, :h, 'u-editor-1', :t, :h, :b, 1, now(), 'u-editor-1', 'published')"""),
                {"id": article_id, "loc": locale, "t": title, "h": f"<p>{html.escape(body)}</p>", "b": body})
            await index_translation(conn, article_id=article_id, locale=locale)
        return article_id


@pytest.fixture
async def library(db):
    return Library(db)
