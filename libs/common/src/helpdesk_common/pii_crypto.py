"""Personal data at rest: AES-256-GCM under a keyring, and keyed blind indexes for lookups.

A service that stores personal data (e-mail addresses, phone numbers, names, addresses) keeps it
encrypted in its tables, so that a database dump, a backup or a read-only SQL account alone does
not reveal who the customers are. Two pieces:

- ``Keyring`` encrypts and decrypts. Its setting (``<SVC>_PII_KEYS``) lists keys as
  ``kid:base64key`` pairs separated by commas; the **first** is the current key (every new
  write), the others only decrypt, so a key is rotated by putting a new pair first and keeping
  the old one until the service's re-encrypt command has moved every row (docs/security.md,
  "Personal data at rest"). A token is ``v1.<kid>.<base64url(nonce | ciphertext | tag)>``: it
  names its key, so the reader picks it without trying each one. The ``context`` (e.g.
  ``"customer_identities.value"``) is the associated data: a ciphertext copied into another
  column, or another service's, does not decrypt.
- ``blind_index`` is an HMAC-SHA256 (``<SVC>_PII_INDEX_KEY``) of a value, for equality lookups
  and unique constraints without the plaintext: the same value always gives the same index, so
  ``WHERE value_bidx = :bidx`` finds a requester, and nobody without the key can test guesses
  against the column. The caller normalises first (``identities.normalize`` for identities,
  its own folding for names: customer-svc's ``pii/codec.py``); this function only makes
  Unicode-equivalent spellings one (NFC) and trims, so two values that differ in any other way keep different indexes (WeChat openids are
  case-sensitive). The context separates the indexes of different columns.

There are no built-in keys: a key derived from something in the code would be known to everyone
who reads it. ``python -m helpdesk_common.pii_crypto`` prints a new pair of settings.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import unicodedata
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

VERSION = "v1"
_NONCE_BYTES = 12
_TAG_BYTES = 16
KEY_BYTES = 32
_KID = re.compile(r"[A-Za-z0-9_-]{1,32}")


class PiiKeyError(ValueError):
    """A ``<SVC>_PII_KEYS`` / ``<SVC>_PII_INDEX_KEY`` value that cannot be used (the message says why)."""


class PiiDecryptError(ValueError):
    """A token that is not ours, names a key no longer configured, was altered, or belongs to
    another context."""


def _b64decode(text: str) -> bytes:
    """Standard or URL-safe base64, padding optional; anything outside the alphabet is an error
    (``binascii.Error``, or ValueError for non-ASCII text). ``a2b_base64``'s strict mode checks
    what ``b64decode(validate=True)`` checked with a regular expression: every decryption runs
    this (a page of 25 tickets, 25 times)."""
    text = text.strip()
    padded = text + "=" * (-len(text) % 4)
    return binascii.a2b_base64(padded.replace("-", "+").replace("_", "/"), strict_mode=True)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def generate_key() -> str:
    """A new 256-bit key, base64url without padding."""
    return _b64url(os.urandom(KEY_BYTES))


def _parse_key(text: str, *, setting: str, what: str) -> bytes:
    try:
        key = _b64decode(text)
    except (binascii.Error, ValueError) as exc:
        raise PiiKeyError(f"{setting}: {what} is not base64") from exc
    if len(key) != KEY_BYTES:
        raise PiiKeyError(f"{setting}: {what} must be {KEY_BYTES} bytes (base64: 43 or 44 characters), got {len(key)}")
    return key


def parse_index_key(text: str, *, setting: str = "PII_INDEX_KEY") -> bytes:
    """The 32-byte key of a ``<SVC>_PII_INDEX_KEY`` value (base64)."""
    if not text or not text.strip():
        raise PiiKeyError(f"{setting} is empty")
    return _parse_key(text, setting=setting, what="the key")


class Keyring:
    """Encrypts with the current (first) key, decrypts with whichever configured key a token names."""

    __slots__ = ("current_kid", "_aeads")

    def __init__(self, keys: list[tuple[str, bytes]]) -> None:
        if not keys:
            raise PiiKeyError("a keyring needs at least one key")
        aeads: dict[str, AESGCM] = {}
        for kid, key in keys:
            if not _KID.fullmatch(kid):
                raise PiiKeyError(f"key id {kid!r}: 1-32 characters of A-Z a-z 0-9 _ -")
            if kid in aeads:
                raise PiiKeyError(f"key id {kid!r} is listed twice")
            if len(key) != KEY_BYTES:
                raise PiiKeyError(f"key {kid!r} must be {KEY_BYTES} bytes")
            aeads[kid] = AESGCM(key)
        self.current_kid = keys[0][0]
        self._aeads = aeads

    @classmethod
    def from_settings(cls, spec: str, *, setting: str = "PII_KEYS") -> Keyring:
        """``"kid1:base64key,kid2:base64key"`` (first = current); ``PiiKeyError`` says what is wrong."""
        if not spec or not spec.strip():
            raise PiiKeyError(f"{setting} is empty: set it to kid:base64key[,kid:base64key...]")
        keys: list[tuple[str, bytes]] = []
        for number, item in enumerate(spec.split(","), start=1):
            item = item.strip()
            if not item:
                raise PiiKeyError(f"{setting}: entry {number} is empty")
            kid, sep, encoded = item.partition(":")
            kid = kid.strip()
            if not sep or not kid or not encoded.strip():
                raise PiiKeyError(f"{setting}: entry {number} is not kid:base64key")
            keys.append((kid, _parse_key(encoded, setting=setting, what=f"the key of {kid!r}")))
        try:
            return cls(keys)
        except PiiKeyError as exc:
            raise PiiKeyError(f"{setting}: {exc}") from None

    @property
    def kids(self) -> tuple[str, ...]:
        return tuple(self._aeads)

    @staticmethod
    def _aad(context: str) -> bytes:
        return b"helpdesk-pii.v1:" + context.encode("utf-8")

    def encrypt(self, plaintext: str, *, context: str) -> str:
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aeads[self.current_kid].encrypt(nonce, plaintext.encode("utf-8"), self._aad(context))
        return f"{VERSION}.{self.current_kid}.{_b64url(nonce + sealed)}"

    def encrypt_optional(self, plaintext: str | None, *, context: str) -> str | None:
        return None if plaintext is None else self.encrypt(plaintext, context=context)

    def decrypt(self, token: str, *, context: str) -> str:
        version, kid, body = _split(token)
        if version != VERSION:
            raise PiiDecryptError(f"unknown token version {version!r}")
        aead = self._aeads.get(kid)
        if aead is None:
            raise PiiDecryptError(f"encrypted under key {kid!r}, which is not configured")
        try:
            raw = _b64decode(body)
        except (binascii.Error, ValueError) as exc:
            raise PiiDecryptError("the token's body is not base64") from exc
        if len(raw) < _NONCE_BYTES + _TAG_BYTES:
            raise PiiDecryptError("the token is too short")
        try:
            plain = aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], self._aad(context))
        except InvalidTag as exc:
            raise PiiDecryptError("the token does not authenticate (altered, or another context)") from exc
        return plain.decode("utf-8")

    def decrypt_optional(self, token: str | None, *, context: str) -> str | None:
        return None if token is None else self.decrypt(token, context=context)

    def is_current(self, token: str) -> bool:
        """True when ``token`` is under the current key (the re-encrypt command skips it)."""
        try:
            version, kid, _ = _split(token)
        except PiiDecryptError:
            return False
        return version == VERSION and kid == self.current_kid


def key_id_of(token: str) -> str:
    """The key id a token names (``PiiDecryptError`` when it is not a token)."""
    return _split(token)[1]


def looks_encrypted(value: str) -> bool:
    """True when ``value`` has the shape of a token (for mixed columns during a migration)."""
    try:
        _split(value)
    except PiiDecryptError:
        return False
    return True


def _split(token: str) -> tuple[str, str, str]:
    parts = token.split(".")
    if len(parts) != 3 or not parts[0] or not _KID.fullmatch(parts[1]) or not parts[2]:
        raise PiiDecryptError("not a PII token (v1.<kid>.<data>)")
    return parts[0], parts[1], parts[2]


def normalize_for_index(value: str) -> str:
    """What ``blind_index`` hashes: NFC (Unicode-equivalent spellings are one) and trimmed."""
    return unicodedata.normalize("NFC", value).strip()


#: (key, context) → an HMAC that has taken the context's prefix: ``blind_index`` copies it and
#: adds the value, instead of keying a new HMAC each time (1.8 → 1.3 µs; a new requester's
#: identities and name terms take about 25 in customer-svc, round 19). A process has a handful
#: of keys and contexts; past ``_KEYED_MAX`` nothing more is kept.
_KEYED: dict[tuple[bytes, str], Any] = {}
_KEYED_MAX = 64


def blind_index(value: str, *, key: bytes, context: str) -> str:
    """HMAC-SHA256 hex of the normalised value, separated by context (64 hex characters)."""
    keyed = _KEYED.get((key, context))
    if keyed is None:
        label = context.encode("utf-8")
        keyed = hmac.new(key, len(label).to_bytes(4, "big") + label, hashlib.sha256)
        if len(_KEYED) < _KEYED_MAX:
            _KEYED[(key, context)] = keyed
    mac = keyed.copy()
    mac.update(normalize_for_index(value).encode("utf-8"))
    return mac.hexdigest()


def new_settings(prefix: str, *, kid: str = "k1") -> dict[str, str]:
    """Fresh ``<PREFIX>PII_KEYS`` and ``<PREFIX>PII_INDEX_KEY`` values (devstack, tests)."""
    return {f"{prefix}PII_KEYS": f"{kid}:{generate_key()}", f"{prefix}PII_INDEX_KEY": generate_key()}


if __name__ == "__main__":  # new settings, as env lines (the service prefix as the only argument)
    import sys

    prefix = (sys.argv[1] if len(sys.argv) > 1 else "CUSTOMER").upper().rstrip("_") + "_"
    for name, value in new_settings(prefix).items():
        print(f"{name}={value}")
