"""Requester identity normalisation, shared by ticket-svc (projection lookup) and customer-svc.

Both services must compute the same key for the same person, so the rules live here once:
ticket-svc links a new ticket at intake by looking up ``primary_identity(requester)`` in the
projection customer-svc's events fill with the keys ``identities_of`` computes there.

Identity kinds (docs/customers.md, "Identities"):

- ``email``: trimmed and lower-cased, local part and domain alike;
- ``phone``: E.164 (``+8613800138000``), parsed with ``phonenumbers`` in the default region
  ``PHONE_DEFAULT_REGION`` (a deployment-wide setting, CN unless set) so that ``138 0013 8000``,
  ``+86 138-0013-8000`` and ``0086 13800138000`` are one person;
- ``wechat_openid``, ``wechat_unionid``, ``wecom_external_userid``, ``dingtalk_userid``: the
  platform's id, trimmed, case kept (they are case-sensitive);
- ``external:<system>``: an id in another system (a CRM, a shop, the chat widget), ``<system>``
  lower-case ``[a-z0-9][a-z0-9_.-]{0,39}``.

A ticket's requester carries ``email``, ``phone``, ``wechat_openid`` and ``external_id``; the
channel parsers write the last one as ``dingtalk:<id>``, ``wecom:<id>`` or ``chat:<id>``, API
callers as they like. ``requester_identities`` maps ``dingtalk:`` and ``wecom:`` to their kinds,
any other ``<system>:<id>`` to ``external:<system>`` and a value without a system prefix to
``external:api``.
"""

from __future__ import annotations

import os
import re
from functools import cache, lru_cache
from typing import Iterable

import phonenumbers

EMAIL, PHONE = "email", "phone"
#: kinds with a fixed name, in priority order (the first one present is a requester's primary identity)
IDENTITY_KINDS: tuple[str, ...] = (
    "email", "phone", "wechat_openid", "wechat_unionid", "wecom_external_userid", "dingtalk_userid",
)
EXTERNAL_PREFIX = "external:"
#: the system of a requester's ``external_id`` that names none
DEFAULT_EXTERNAL_SYSTEM = "api"
SYSTEM_PATTERN = r"[a-z0-9][a-z0-9_.-]{0,39}"
_SYSTEM = re.compile(SYSTEM_PATTERN)
KIND_PATTERN = "^(?:" + "|".join(IDENTITY_KINDS) + "|" + EXTERNAL_PREFIX + SYSTEM_PATTERN + ")$"
_KIND = re.compile(KIND_PATTERN)
#: prefixes ticket-svc's channel parsers put on a requester's external_id, and their kinds
CHANNEL_KINDS = {"dingtalk": "dingtalk_userid", "wecom": "wecom_external_userid"}
#: requester fields, in priority order
REQUESTER_FIELDS: tuple[str, ...] = ("email", "phone", "wechat_openid", "external_id")

_PHONE_STRIP = re.compile(r"[\s\-().]")


class InvalidIdentity(ValueError):
    """A value that is not an identity of its kind (strict normalisation, the API's)."""


@cache
def default_region() -> str:
    """The region a phone number without a country code is read in: one value for every
    process of a deployment (``PHONE_DEFAULT_REGION``), or two services would key one number
    two ways."""
    return (os.environ.get("PHONE_DEFAULT_REGION") or "CN").strip().upper()


def is_kind(kind: str) -> bool:
    return bool(_KIND.fullmatch(kind))


def _legacy_phone(value: str) -> str:
    """Separators dropped, ``00`` read as ``+``: the key of a number ``phonenumbers`` cannot
    place (so a channel's odd number still finds its customer again)."""
    digits = _PHONE_STRIP.sub("", value)
    if digits.startswith("00"):
        digits = "+" + digits[2:]
    return digits


@lru_cache(maxsize=8192)
def normalize_phone(value: str, region: str | None = None, *, strict: bool = False) -> str:
    """E.164 when the number is possible in ``region`` (default: ``default_region()``);
    otherwise the separators-dropped form, or InvalidIdentity when ``strict``."""
    try:
        number = phonenumbers.parse(value, region or default_region())
    except phonenumbers.NumberParseException:
        number = None
    if number is not None and phonenumbers.is_possible_number(number):
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    if strict:
        raise InvalidIdentity("must be a phone number, e.g. +86 138 0013 8000")
    return _legacy_phone(value)


def normalize(kind: str, value: str, *, region: str | None = None) -> str:
    """The key of ``value`` as an identity of ``kind`` (lenient: never refuses a value)."""
    value = value.strip()
    if kind == EMAIL:
        return value.lower()
    if kind == PHONE:
        return normalize_phone(value, region) if value else value
    return value


def requester_identity(field: str, raw: str) -> tuple[str, str] | None:
    """The (kind, key) of one requester field, or None when it holds nothing."""
    if field != "external_id":
        value = normalize(field, raw)
        return (field, value) if value else None
    value = raw.strip()
    system, sep, rest = value.partition(":")
    rest = rest.strip()
    if sep and rest:
        if system in CHANNEL_KINDS:
            return CHANNEL_KINDS[system], rest
        if _SYSTEM.fullmatch(system):
            return EXTERNAL_PREFIX + system, rest
    return (EXTERNAL_PREFIX + DEFAULT_EXTERNAL_SYSTEM, value) if value else None


def identities_of(requester: dict) -> list[tuple[str, str]]:
    """All (kind, normalised value) pairs present in a requester, in priority order."""
    found = []
    for field in REQUESTER_FIELDS:
        raw = requester.get(field)
        if raw:
            pair = requester_identity(field, str(raw))
            if pair is not None:
                found.append(pair)
    return found


def primary_identity(requester: dict) -> tuple[str, str] | None:
    found = identities_of(requester)
    return found[0] if found else None


def mask(kind: str, value: str) -> str:
    """PII masking for roles that may not see contact details.

    E-mail: the first character of the local part and the domain (``l***@example.com``). Phone:
    the national number's first three and last four digits, the rest as four stars, as Chinese
    services print it (``+86 138****5678``); a number of fewer than 9 national digits keeps two
    at each end. Anything else: the first and last two characters.
    """
    if kind == "email" and "@" in value:
        local, _, domain = value.partition("@")
        return (local[:1] + "***@" + domain) if local else "***@" + domain
    if kind == PHONE and value.startswith("+") and (masked := _masked_e164(value)) is not None:
        return masked
    if len(value) <= 4:
        return "***"
    return value[:2] + "*" * (len(value) - 4) + value[-2:]


@lru_cache(maxsize=8192)
def _masked_e164(value: str) -> str | None:
    """``mask``'s form of an international number, or None when it does not parse. Cached like
    ``normalize_phone``: parsing costs about 10 µs, and a masked list page of 100 phone or WeChat
    tickets, most of them from returning customers, would otherwise parse each number again."""
    try:
        number = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:
        return None
    national = str(number.national_number)
    if len(national) >= 9:
        return f"+{number.country_code} {national[:3]}****{national[-4:]}"
    if len(national) > 4:
        return f"+{number.country_code} {national[:2]}{'*' * (len(national) - 4)}{national[-2:]}"
    return None


def unique(pairs: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    seen: set[tuple[str, str]] = set()
    out = []
    for pair in pairs:
        if pair not in seen:
            seen.add(pair)
            out.append(pair)
    return out
