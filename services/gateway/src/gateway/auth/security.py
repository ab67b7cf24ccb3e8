"""Credentials: channel API keys and per-user API tokens (random, SHA-256 at rest), argon2id
passwords, local-issuer JWTs signed under the keyring of auth/keys.py, refresh tokens (random,
SHA-256 at rest)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets
import time
import uuid

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from .keys import SigningKeys

API_KEY_PREFIX = "hdk_"
REFRESH_TOKEN_PREFIX = "hdr_"
USER_API_TOKEN_PREFIX = "hdu_"  # a person's API token: acts as that user with the user's current role
AUDIENCE = "helpdesk-api"
STREAM_AUDIENCE = "helpdesk-stream"  # a stream ticket opens the stream and is refused anywhere else


def new_api_key() -> str:
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def hash_api_key(key: str) -> str:
    """Keys carry 256 random bits, so a fast hash is enough (no brute force to slow down)."""
    return hashlib.sha256(key.encode()).hexdigest()


def new_refresh_token() -> str:
    return REFRESH_TOKEN_PREFIX + secrets.token_urlsafe(32)


hash_refresh_token = hash_api_key  # the same reasoning: 256 random bits


def new_user_api_token() -> str:
    return USER_API_TOKEN_PREFIX + secrets.token_urlsafe(32)


hash_user_api_token = hash_api_key  # 256 random bits again

#: the user name suffix of Zendesk's API-token Basic credentials (``email/token:API_TOKEN``)
BASIC_TOKEN_SUFFIX = "/token"


def basic_api_token(credentials: str) -> tuple[str, str] | None:
    """``(email, token)`` from the base64 part of ``Authorization: Basic``, when it is Zendesk's
    API-token form ``email/token:API_TOKEN`` (what zenpy and Zendesk scripts send); None for
    anything else, a password included: an account's password is only ever taken by the
    sign-in, behind its guessing limits and two-factor step."""
    try:
        decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    user, colon, token = decoded.partition(":")
    if not colon or not token or not user.endswith(BASIC_TOKEN_SUFFIX):
        return None
    email = user[:-len(BASIC_TOKEN_SUFFIX)].strip().lower()
    return (email, token) if email else None


class Passwords:
    """argon2id with the deployment's cost parameters.

    Every verification costs ``memory_kib`` of memory for its duration, which is why callers
    run them through ``HashingGate`` rather than straight in the thread pool.
    """

    def __init__(self, *, memory_kib: int, time_cost: int, parallelism: int) -> None:
        self._hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism)
        # verified against when the e-mail is unknown, so both failures take the same time
        self._dummy_hash = self._hasher.hash(secrets.token_urlsafe(16))

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, password_hash: str | None, password: str) -> tuple[bool, bool]:
        """(valid, needs_rehash). Always does one argon2 verification."""
        try:
            self._hasher.verify(password_hash or self._dummy_hash, password)
        except (VerificationError, InvalidHashError):
            return False, False
        if password_hash is None:
            return False, False
        return True, self._hasher.check_needs_rehash(password_hash)


def issue_access_token(*, keys: SigningKeys, issuer: str, ttl_s: int, user_id: uuid.UUID, role: str, email: str,
                       session_id: uuid.UUID) -> str:
    now = int(time.time())
    claims = {"sub": str(user_id), "sid": str(session_id), "role": role, "email": email, "iss": issuer,
              "aud": AUDIENCE, "iat": now, "exp": now + ttl_s, "jti": uuid.uuid4().hex}
    return keys.sign(claims)


def decode_access_token(token: str, *, keys: SigningKeys, issuer: str, audience: str = AUDIENCE) -> dict:
    return keys.verify(token, audience=audience, issuer=issuer,
                       options={"require": ["exp", "iat", "sub", "sid", "iss", "aud"]})


def issue_stream_ticket(*, keys: SigningKeys, issuer: str, ttl_s: int, user_id: str, role: str, session_id: str) -> str:
    now = int(time.time())
    claims = {"sub": user_id, "sid": session_id, "role": role, "iss": issuer, "aud": STREAM_AUDIENCE,
              "iat": now, "exp": now + ttl_s}
    return keys.sign(claims)
