"""customer-svc's projection of ticket-svc's tickets (``customer_tickets``), fed by tickets.events,
sla.events and customer-svc's own requester resolution. The 360 view's counts, timings and last
contact, and the churn score's ticket factors, are read from it: customer-svc never asks
ticket-svc (each service owns its data)."""
