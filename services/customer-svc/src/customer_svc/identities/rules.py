"""Identities as the API takes them (pure): strict where a channel's requester is lenient.

A requester from a channel is never refused (``helpdesk_common.identities`` keys whatever it
gets); an identity an agent types in is checked against its kind, so a typo does not become a
key no message will ever carry. Both give the same key for a valid value.
"""

from __future__ import annotations

import re

from helpdesk_common.identities import EMAIL, EXTERNAL_PREFIX, PHONE, InvalidIdentity, is_kind, normalize_phone

_EMAIL = re.compile(r"[^\s@\"(),:;<>\[\\\]]{1,64}@[^\s@\"(),:;<>\[\\\]/]+\.[^\s@\"(),:;<>\[\\\]/.]+")
#: ids issued by WeChat and WeCom (openid, unionid, external_userid): letters, digits, - and _
_PLATFORM_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")
_TOKEN = re.compile(r"[^\s\x00-\x1f\x7f]{1,128}")
PLATFORM_KINDS = frozenset({"wechat_openid", "wechat_unionid", "wecom_external_userid"})
EXTERNAL_MAX = 255


def strict_key(kind: str, value: str) -> str:
    """The key of ``value`` as an identity of ``kind``; InvalidIdentity with a message otherwise."""
    if not is_kind(kind):
        raise InvalidIdentity("unknown identity kind")
    text = value.strip()
    if kind == EMAIL:
        if len(text) > 254 or not _EMAIL.fullmatch(text):
            raise InvalidIdentity("must be an e-mail address")
        return text.lower()
    if kind == PHONE:
        return normalize_phone(text, strict=True)
    if kind in PLATFORM_KINDS:
        if not _PLATFORM_ID.fullmatch(text):
            raise InvalidIdentity("must be the platform's id: 1 to 128 letters, digits, - or _")
        return text
    if kind == "dingtalk_userid":
        if not _TOKEN.fullmatch(text):
            raise InvalidIdentity("must be DingTalk's user id: 1 to 128 characters without spaces")
        return text
    assert kind.startswith(EXTERNAL_PREFIX)
    if not text or len(text) > EXTERNAL_MAX or any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise InvalidIdentity(f"must be 1 to {EXTERNAL_MAX} characters without control characters")
    return text


def email_domain(identities: list[tuple[str, str]]) -> str | None:
    """The domain of the first e-mail identity (keys are lower-cased already)."""
    for kind, value in identities:
        if kind == EMAIL and "@" in value:
            return value.rpartition("@")[2]
    return None
