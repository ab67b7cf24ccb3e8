"""The customer 360 view: one read of everything customer-svc knows about a customer (profile,
identities, organisation, tickets from its projection, surveys, stored insight scores, orders)."""
