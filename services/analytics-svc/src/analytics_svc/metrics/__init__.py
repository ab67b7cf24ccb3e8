"""Metric rules: the exact, documented definition of every analytics figure, as pure functions.

Read models call these; they never re-derive a metric themselves, so one rule holds everywhere
(docs/metrics.md).
"""
