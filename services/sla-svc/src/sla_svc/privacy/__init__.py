"""sla-svc's part of data subject requests (docs/security.md "Erasure"): it holds ticket ids,
states, times and the fields policies match on; of those only free-text custom-field values can
carry the person, so the person's tickets (``sla_tickets.customer_id``, from ticket.created) have
them redacted. A ticket linked to the customer only after creation is not known as theirs here."""
