"""kb-svc: the knowledge base and self-service deflection (docs/kb.md)."""
