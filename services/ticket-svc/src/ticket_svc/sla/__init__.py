"""What ticket-svc keeps of sla-svc's timers: a per-metric projection, the ticket's colour, and
the escalation actions sla-svc asks for."""
