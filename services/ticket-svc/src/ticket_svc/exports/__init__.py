"""Ticket exports (issue 13): the incremental export and the report downloads (docs/exports.md)."""
