"""Durable per-ticket timers fired exactly once (process step deadlines, time-based automations)."""
