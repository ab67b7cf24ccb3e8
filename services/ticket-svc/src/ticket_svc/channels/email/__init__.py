"""E-mail intake: raw RFC 5322 bytes to the normalised ``InboundMessage`` (see docs/channels/email.md).

Modules: ``parse`` (the entry point), ``decode`` (charsets, encoded words, parameters,
addresses), ``html_text`` (HTML-only bodies to text), ``quotes`` (quoted history and
signatures), ``classify`` (bounces, auto-replies, bulk and list mail), ``language``.
"""

from .parse import parse_email

__all__ = ["parse_email"]
