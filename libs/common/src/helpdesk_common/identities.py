"""Requester identity normalisation, shared by ticket-svc (projection lookup) and customer-svc.

Both services must compute the same key for the same person, so the rules live here once.
"""

from __future__ import annotations

import re
from typing import Iterable

IDENTITY_KINDS: tuple[str, ...] = ("email", "phone", "wechat_openid", "external_id")
"""In priority order: the first one present is a ticket's primary requester identity."""

_PHONE_STRIP = re.compile(r"[\s\-().]")


def normalize(kind: str, value: str) -> str:
    value = value.strip()
    if kind == "email":
        return value.lower()
    if kind == "phone":
        digits = _PHONE_STRIP.sub("", value)
        if digits.startswith("00"):
            digits = "+" + digits[2:]
        return digits
    return value


def identities_of(requester: dict) -> list[tuple[str, str]]:
    """All (kind, normalised value) pairs present in a requester, in priority order."""
    found = []
    for kind in IDENTITY_KINDS:
        raw = requester.get(kind)
        if raw:
            value = normalize(kind, str(raw))
            if value:
                found.append((kind, value))
    return found


def primary_identity(requester: dict) -> tuple[str, str] | None:
    found = identities_of(requester)
    return found[0] if found else None


def mask(kind: str, value: str) -> str:
    """PII masking for roles that may not see contact details."""
    if kind == "email" and "@" in value:
        local, _, domain = value.partition("@")
        return (local[:1] + "***@" + domain) if local else "***@" + domain
    if len(value) <= 4:
        return "***"
    return value[:2] + "*" * (len(value) - 4) + value[-2:]


def unique(pairs: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    seen: set[tuple[str, str]] = set()
    out = []
    for pair in pairs:
        if pair not in seen:
            seen.add(pair)
            out.append(pair)
    return out
