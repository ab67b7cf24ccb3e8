"""analytics-svc's part of data subject requests (docs/security.md "Erasure"): its rows keyed to a
customer hold ids, numbers and bounded dimensions (channel, type, priority, tags, brand, tier),
never a name, an address or free text (``readmodel.facts.ticket_facts`` keeps only the ``brand``
of custom fields), so an erasure leaves them as they are and acknowledges."""
