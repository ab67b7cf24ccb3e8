"""Content: categories, sections, articles with translations, drafts, published versions,
version history and attachments (docs/kb.md "Content")."""
