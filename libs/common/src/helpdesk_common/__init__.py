"""Shared plumbing for the help-desk services."""
