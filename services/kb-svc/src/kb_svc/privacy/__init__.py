"""kb-svc's part of data subject requests (docs/security.md "Erasure")."""
