"""Webhook secrets at rest: AES-256-GCM under ``NOTIFY_SECRET_KEY``.

A webhook secret must be available in clear to sign each delivery, so it cannot be hashed like
an API key; it is encrypted instead, so that a database dump or backup alone does not let
anyone forge our webhooks. The key comes from the environment (a Kubernetes Secret), never from
the database, and there is no built-in default: a key derived from something in the code would
be known to everyone who reads it. Without a key, webhook endpoints answer 503 and say why.

``NOTIFY_SECRET_KEY`` is the base64url of 32 random bytes (``python -m
notify_svc.webhooks.crypto`` prints a new one). To replace it, set ``new,old``: the first key
encrypts, every listed key decrypts (each ciphertext names its key by a 4-byte id), so existing
secrets keep working; rotating each subscription's secret re-encrypts it under the new key.

Format: ``0x01 | key id (4) | nonce (12) | ciphertext+tag``; the associated data binds each
ciphertext to its subscription, so a secret copied onto another row does not decrypt.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import uuid

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_VERSION = b"\x01"
_NONCE_BYTES = 12


def _unb64(text: str) -> bytes:
    text = text.strip()
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def generate_key() -> str:
    return base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=")


def parse_keys(text: str) -> list[bytes]:
    """The keys of a ``NOTIFY_SECRET_KEY`` value (comma-separated); ``ValueError`` for a
    malformed one (the service does not start with a key it cannot use)."""
    keys = []
    for item in text.split(","):
        if not item.strip():
            continue
        try:
            key = _unb64(item)
        except (binascii.Error, ValueError) as exc:
            raise ValueError("NOTIFY_SECRET_KEY: each key is base64url") from exc
        if len(key) != 32:
            raise ValueError("NOTIFY_SECRET_KEY: each key is 32 bytes (base64url, 43 characters)")
        keys.append(key)
    return keys


def _key_id(key: bytes) -> bytes:
    return hashlib.sha256(b"notify-secret-key-id\0" + key).digest()[:4]


class SecretBox:
    """Encrypts with the first key, decrypts with whichever key the ciphertext names."""

    def __init__(self, keys: list[bytes]) -> None:
        if not keys:
            raise ValueError("no key")
        self._primary = keys[0]
        self._by_id = {_key_id(key): AESGCM(key) for key in keys}

    @classmethod
    def from_setting(cls, text: str) -> SecretBox | None:
        keys = parse_keys(text)
        return cls(keys) if keys else None

    @staticmethod
    def _aad(owner: uuid.UUID) -> bytes:
        return b"notify.webhook-secret\0" + owner.bytes

    def encrypt(self, plaintext: str, *, owner: uuid.UUID) -> bytes:
        nonce = os.urandom(_NONCE_BYTES)
        key_id = _key_id(self._primary)
        sealed = self._by_id[key_id].encrypt(nonce, plaintext.encode(), self._aad(owner))
        return _VERSION + key_id + nonce + sealed

    def decrypt(self, blob: bytes, *, owner: uuid.UUID) -> str:
        """Raises ``ValueError`` when the blob is not ours, its key is gone, or it was altered."""
        blob = bytes(blob)
        if len(blob) < 1 + 4 + _NONCE_BYTES + 16 or blob[:1] != _VERSION:
            raise ValueError("not an encrypted webhook secret")
        aead = self._by_id.get(blob[1:5])
        if aead is None:
            raise ValueError("encrypted under a key that is no longer configured")
        try:
            return aead.decrypt(blob[5:5 + _NONCE_BYTES], blob[5 + _NONCE_BYTES:], self._aad(owner)).decode()
        except InvalidTag as exc:
            raise ValueError("the encrypted secret does not authenticate") from exc


if __name__ == "__main__":  # a new key, as one env line
    print(f"NOTIFY_SECRET_KEY={generate_key()}")
