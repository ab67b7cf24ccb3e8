"""Probable duplicate customers for a supervisor to confirm (merge) or dismiss: pairs that share a
phone number, a WeChat unionid, an e-mail local part and a name, or a name in one organisation.
Every query is served by an index on the key it compares (docs/customers.md, "Duplicates")."""
