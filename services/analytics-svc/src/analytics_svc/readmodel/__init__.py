"""The metric read model: per-ticket fact rows and pre-aggregated rollups, built only from events
(docs/metrics.md, "Read model")."""
