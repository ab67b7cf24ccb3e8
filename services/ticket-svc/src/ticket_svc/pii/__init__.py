"""The requester's personal data in ticket-svc: encryption at rest (codec), who sees it unmasked
(access), the re-encrypt and re-index commands (``python -m ticket_svc.pii reencrypt`` | ``reindex``)."""
