"""A Zendesk-compatible surface under ``/api/v2/`` (docs/zendesk-api.md), so the scripts and
clients (zenpy) a team brings from Zendesk work unchanged.

A thin translation layer: every call becomes one or two calls of the owning services' own API,
made as the caller (their signed identity, so every object-level check stays in the service);
what it adds is only the shapes, Zendesk's error envelope and its integer ids (``ids.py``)."""
