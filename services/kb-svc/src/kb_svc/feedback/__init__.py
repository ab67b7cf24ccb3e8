"""Readers' feedback: votes, view counts, the review queue."""
