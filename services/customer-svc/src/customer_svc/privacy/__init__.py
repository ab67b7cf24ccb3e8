"""Data subject requests: export and erasure of one customer across every service
(docs/security.md "Erasure")."""
