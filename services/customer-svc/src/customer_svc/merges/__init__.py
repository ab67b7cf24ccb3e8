"""Merging two customers into one (a supervisor's decision) and splitting an identity off again.

A merge moves everything that belongs to the merged customer onto the survivor in one
transaction, keeps the merged row as a tombstone that answers 410 naming the survivor, audits
it in ``customer_merges`` and tells every other service through ``customer.merged``
(docs/customers.md, "Merge")."""
