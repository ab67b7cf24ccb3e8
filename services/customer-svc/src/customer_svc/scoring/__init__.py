"""Insight scoring wired to storage: RFM and churn scores kept per customer, recomputed for the
customers whose facts changed (incremental) and for everyone nightly, with the events that
follow a change. The formulas are the pure ones in :mod:`customer_svc.insights`."""
