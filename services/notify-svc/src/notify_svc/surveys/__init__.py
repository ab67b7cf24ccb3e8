"""Survey invitations: customer-svc's ``survey.delivery_requested`` becomes one delivery of kind
``survey`` per (survey, channel), sent by the same engine as replies (docs/deliveries.md)."""
