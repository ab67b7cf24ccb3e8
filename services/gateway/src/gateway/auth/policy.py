"""The password policy: what a new password must be (creation, one's own change, an admin's reset).

- at least ``GATEWAY_PASSWORD_MIN_LENGTH`` characters (12 by default), at most 256 (argon2 would
  take longer ones, but nobody types them and they only cost hashing time);
- not one of the 30,000 most common passwords (``common_passwords.txt``, see its header for the
  source), compared case-insensitively and with whitespace removed, so ``QWERTY 123456`` is as
  refused as ``qwerty123456``;
- not the user's e-mail address nor its local part.

Length is counted in Unicode code points: a Chinese passphrase of 12 characters is as long as an
English one. There are no composition rules (digits, symbols): NIST SP 800-63B advises against them.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from helpdesk_common.problems import Problem

MAX_LENGTH = 256


@dataclass(frozen=True)
class Violation:
    code: str
    message: str


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    text = resources.files(__package__).joinpath("common_passwords.txt").read_text(encoding="utf-8")
    return frozenset(line for line in text.splitlines() if line and not line.startswith("#"))


def _folded(text: str) -> str:
    return "".join(unicodedata.normalize("NFKC", text).casefold().split())


def violations(password: str, *, email: str | None, min_length: int) -> list[Violation]:
    """Every rule ``password`` breaks (empty: acceptable)."""
    found = []
    if len(password) < min_length:
        found.append(Violation("password_too_short", f"Use at least {min_length} characters."))
    if len(password) > MAX_LENGTH:
        found.append(Violation("password_too_long", f"Use at most {MAX_LENGTH} characters."))
    folded = _folded(password)
    if folded in common_passwords():
        found.append(Violation("password_common", "This password is one of the most common ones; choose another."))
    if email:
        address = _folded(email)
        if folded and folded in {address, address.partition("@")[0]}:
            found.append(Violation("password_is_email", "The password must not be the e-mail address or its name part."))
    return found


def enforce(password: str, *, email: str | None, min_length: int, field: str = "body.password") -> None:
    """A 422 problem naming ``field`` with a code per broken rule."""
    found = violations(password, email=email, min_length=min_length)
    if found:
        raise Problem(422, "validation-error", "Validation failed", found[0].message,
                      errors=[{"field": field, "message": v.message, "code": v.code} for v in found])
