"""Deliveries: one record per outbound message (a reply, a notification, a webhook event),
its attempts, and the dispatcher that sends due records through the channel adapters."""
