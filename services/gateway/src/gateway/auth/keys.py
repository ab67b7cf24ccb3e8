"""The keys user tokens are signed with: Ed25519 (EdDSA) under a keyring, each token naming its key.

``GATEWAY_SIGNING_KEYS`` is ``kid:base64url(32-byte Ed25519 private key)`` pairs separated by
commas; the **first** signs every new access token and stream ticket, the others only verify.
Rotating: put a new pair first and keep the old one until the last token it signed has expired
(``GATEWAY_ACCESS_TOKEN_TTL_S``, 15 minutes by default; refresh tokens are not JWTs and survive a
rotation), then drop it. Nobody is signed out. ``GET /.well-known/jwks.json`` publishes the public
halves, so anything that wants to check a gateway token needs no secret. The services themselves
never see user tokens: they trust the gateway's signed internal identity (helpdesk_common.identity).

``python -m gateway.auth.keys [kid]`` prints a new pair for the setting.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

ALGORITHM = "EdDSA"
_KID = re.compile(r"[A-Za-z0-9_.-]{1,40}")


class SigningKeyError(ValueError):
    """A ``GATEWAY_SIGNING_KEYS`` value that cannot be used (the message says why)."""


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64url(text: str) -> bytes:
    text = text.strip()
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def new_key_spec(kid: str | None = None) -> str:
    """A fresh ``kid:key`` pair (devstack, tests, rotation)."""
    kid = kid or time.strftime("k%Y%m%d") + "-" + secrets.token_hex(2)
    raw = Ed25519PrivateKey.generate().private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                                     serialization.NoEncryption())
    return f"{kid}:{_b64url(raw)}"


@dataclass(frozen=True)
class _Key:
    kid: str
    private: Ed25519PrivateKey
    public: Ed25519PublicKey


class SigningKeys:
    def __init__(self, keys: list[_Key]) -> None:
        if not keys:
            raise SigningKeyError("GATEWAY_SIGNING_KEYS is not set (python -m gateway.auth.keys prints a key)")
        self._keys = keys
        self._by_kid = {k.kid: k for k in keys}
        if len(self._by_kid) != len(keys):
            raise SigningKeyError("GATEWAY_SIGNING_KEYS names a kid twice")

    @classmethod
    def from_settings(cls, spec: str) -> SigningKeys:
        keys = []
        for part in (p.strip() for p in spec.split(",")):
            if not part:
                continue
            kid, sep, value = part.partition(":")
            if not sep or not _KID.fullmatch(kid):
                raise SigningKeyError("GATEWAY_SIGNING_KEYS entries are kid:base64url-key (kid: letters, digits, _.-)")
            try:
                raw = _unb64url(value)
                private = Ed25519PrivateKey.from_private_bytes(raw)
            except (binascii.Error, ValueError) as exc:
                raise SigningKeyError(f"GATEWAY_SIGNING_KEYS key {kid!r} is not a base64url 32-byte Ed25519 key") from exc
            keys.append(_Key(kid, private, private.public_key()))
        return cls(keys)

    @property
    def current_kid(self) -> str:
        return self._keys[0].kid

    @property
    def kids(self) -> tuple[str, ...]:
        return tuple(k.kid for k in self._keys)

    def sign(self, claims: dict[str, Any]) -> str:
        key = self._keys[0]
        return jwt.encode(claims, key.private, algorithm=ALGORITHM, headers={"kid": key.kid})

    def verify(self, token: str, **options: Any) -> dict[str, Any]:
        """The claims of a token signed by one of the keys; ``jwt.PyJWTError`` otherwise (an
        unknown or missing ``kid`` included: no key is tried blindly)."""
        kid = jwt.get_unverified_header(token).get("kid")
        key = self._by_kid.get(kid) if isinstance(kid, str) else None
        if key is None:
            raise jwt.InvalidKeyError("unknown signing key")
        return jwt.decode(token, key.public, algorithms=[ALGORITHM], **options)

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        """The public keys as a JSON Web Key Set (RFC 7517, OKP keys of RFC 8037)."""
        return {"keys": [{"kty": "OKP", "crv": "Ed25519", "use": "sig", "alg": ALGORITHM, "kid": k.kid,
                          "x": _b64url(k.public.public_bytes(serialization.Encoding.Raw,
                                                             serialization.PublicFormat.Raw))}
                         for k in self._keys]}


if __name__ == "__main__":  # pragma: no cover - an operator's tool
    import sys

    print(new_key_spec(sys.argv[1] if len(sys.argv) > 1 else None))
