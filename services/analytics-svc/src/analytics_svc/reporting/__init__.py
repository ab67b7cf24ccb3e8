"""Reporting: pure building blocks for the analytics API (time buckets, exports, metric definitions).

Nothing here touches the database or HTTP, so every rule can be tested on plain data; the read
models and endpoints call these functions at the edges.
"""
