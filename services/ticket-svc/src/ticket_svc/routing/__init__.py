"""Routing: which team, priority, tags and agent a new ticket gets.

``rules`` and ``strategies`` are pure (plain values in, a decision out) so they can run inside
the intake transaction while the team's agent rows are locked, and be tested without a
database. ``service``, ``repository`` and ``endpoints`` feed them from PostgreSQL.
Model and worked example: docs/routing.md.
"""
