"""Suggestions for deflection, their outcomes, and articles linked to tickets."""
