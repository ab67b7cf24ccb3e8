"""Webhook subscriptions: signed CloudEvents posted to URLs that admins register (docs/webhooks.md)."""
