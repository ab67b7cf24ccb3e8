"""A customer's timeline: one row per thing that happened to them (tickets and messages, orders,
behaviour events, surveys, tier and segment changes, care tasks), read newest first with a
cursor. Writers call :func:`customer_svc.timeline.repository.record` in the transaction of the
fact itself; the row id comes from :func:`entry_id`, so replaying the same event writes nothing."""
