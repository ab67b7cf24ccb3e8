"""The customer's side of a customer-confirmation step: the signed link, its page, and answers
by reply (docs/workflow.md, "Customer confirmation")."""
