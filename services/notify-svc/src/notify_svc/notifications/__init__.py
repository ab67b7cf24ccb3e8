"""Notifications: rules on events, templates per language rendered in a sandbox, customers'
opt-out, and the projections the handlers need; each notification becomes a delivery of kind
``notification`` (docs/notifications.md)."""
