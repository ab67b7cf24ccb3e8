"""Intake: turning a request from any channel into a ticket or a message, exactly once."""
