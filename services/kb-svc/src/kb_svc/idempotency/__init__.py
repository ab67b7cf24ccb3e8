"""``Idempotency-Key`` on the POSTs that create something (DESIGN: every one of them)."""
