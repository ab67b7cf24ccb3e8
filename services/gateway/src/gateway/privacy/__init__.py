"""The gateway's part of data subject requests (docs/security.md "Erasure"): the live stream's
copy of ticket events (``stream_events``, 24 h) carries ``ticket.created``'s requester."""
