"""ticket-svc's part of data subject requests: erasure and export of one customer's tickets
(docs/security.md "Erasure")."""
