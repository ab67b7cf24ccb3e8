"""Search over the published articles, in Chinese and English (docs/kb.md "Search")."""
