"""sla-svc's part of data subject requests (docs/security.md "Erasure"): it holds ticket ids,
states, times and the policy-matching fields of tickets (no customer id, no requester), so an
erasure has nothing of the person to find here; it acknowledges.

Known limit: ``sla_tickets.custom_fields`` keeps the custom-field values policies may match on.
A free-text custom field holding the person's data stays there, because sla-svc cannot tell
which tickets were theirs (ticket.created's ``customer_id`` is not kept)."""
