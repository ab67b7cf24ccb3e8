"""Process steps in analytics (issue 12): one row per run of a step, from ticket.step_started,
ticket.step_completed and ticket.approval_decided, so the slow and the often-rejected steps of
each ticket type can be found. A new event kind is a new handler here, nothing else."""
