"""Personal data in customer-svc: encryption at rest (codec), who sees identities unmasked and the
audit of those reads (access), the re-encrypt command (``python -m customer_svc.pii reencrypt``)."""
