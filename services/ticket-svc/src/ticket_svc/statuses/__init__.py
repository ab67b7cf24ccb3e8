"""Admin-defined custom statuses, each mapped to one of the six status categories."""
