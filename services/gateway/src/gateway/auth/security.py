"""Credentials: API keys (random, SHA-256 at rest), argon2id passwords, local-issuer JWTs."""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

API_KEY_PREFIX = "hdk_"
AUDIENCE = "helpdesk-api"
_hasher = PasswordHasher()
# verified against when the e-mail is unknown, so both failures take the same time
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def new_api_key() -> str:
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def hash_api_key(key: str) -> str:
    """Keys carry 256 random bits, so a fast hash is enough (no brute force to slow down)."""
    return hashlib.sha256(key.encode()).hexdigest()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> tuple[bool, bool]:
    """(valid, needs_rehash). Always does one argon2 verification."""
    try:
        _hasher.verify(password_hash or _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return False, False
    if password_hash is None:
        return False, False
    return True, _hasher.check_needs_rehash(password_hash)


def issue_access_token(*, secret: str, issuer: str, ttl_s: int, user_id: uuid.UUID, role: str, email: str) -> str:
    now = int(time.time())
    claims = {"sub": str(user_id), "role": role, "email": email, "iss": issuer, "aud": AUDIENCE,
              "iat": now, "exp": now + ttl_s, "jti": uuid.uuid4().hex}
    return jwt.encode(claims, secret, algorithm="HS256")


def decode_access_token(token: str, *, secret: str, issuer: str) -> dict:
    return jwt.decode(token, secret, algorithms=["HS256"], audience=AUDIENCE, issuer=issuer,
                      options={"require": ["exp", "sub", "iss", "aud"]})
