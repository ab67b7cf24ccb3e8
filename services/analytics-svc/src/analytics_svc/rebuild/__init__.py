"""Rebuild the read models from the topics into a fresh schema and swap it in (docs/metrics.md,
"Rebuild"). ``python -m analytics_svc.rebuild`` runs it; the package stays import-light because
``main`` imports the fold lock from ``rebuild.repository``."""
