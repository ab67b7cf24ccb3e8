"""Intake channels: each parser turns one channel's payload into an InboundMessage."""
