"""Pure rules of feedback: who a vote belongs to, and when an article needs review."""

from __future__ import annotations

import hashlib
import re
import uuid

#: what an anonymous reader's client sends as ``X-KB-Voter`` (a random id it keeps in a cookie
#: or local storage): 16 to 128 URL-safe characters
VOTER_PATTERN = re.compile(r"[A-Za-z0-9_-]{16,128}")
MAX_COMMENT_CHARS = 2000


def voter_key(*, kind: str, user_id: str | None, customer_id: uuid.UUID | None, anonymous: str | None) -> str | None:
    """The one key a viewer votes under: ``user:<id>``, ``customer:<id>``, or for an anonymous
    reader ``anon:`` and a digest of their voter id (the raw id is never stored); None when an
    anonymous reader sent no valid voter id."""
    if kind in ("staff", "editor"):
        return f"user:{user_id}"
    if kind == "customer":
        return f"customer:{customer_id}"
    if anonymous is None or not VOTER_PATTERN.fullmatch(anonymous):
        return None
    return "anon:" + hashlib.sha256(anonymous.encode()).hexdigest()[:40]


def needs_review(*, votes: int, not_helpful: int, share: float, min_votes: int) -> bool:
    """Flagged when there are at least ``min_votes`` votes and the "not helpful" share passes
    (is above) ``share``."""
    return votes >= min_votes and not_helpful > share * votes


def clean_comment(comment: str | None) -> str | None:
    """A comment without surrounding white space; empty is none."""
    if comment is None:
        return None
    comment = comment.strip()
    return comment or None
