"""Saved views: an agent's named list filters."""
