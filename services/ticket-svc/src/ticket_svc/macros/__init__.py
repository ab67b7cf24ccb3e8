"""Macros: a named set of field changes plus reply text, applied to a ticket in one request."""
