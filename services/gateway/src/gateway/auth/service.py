"""Who is calling: API keys and user tokens → Principal, with caches for the hot path."""

from __future__ import annotations

import math
import time
import uuid
from typing import Any

import anyio
import jwt
from sqlalchemy.ext.asyncio import AsyncEngine

from helpdesk_common.identity import USER_ROLES, Principal
from helpdesk_common.problems import Problem

from ..config import Settings
from ..ratelimit import TokenBuckets
from . import repository, security

UNAUTHORIZED_HEADERS = {"WWW-Authenticate": 'Bearer realm="helpdesk"'}


def unauthorized(detail: str) -> Problem:
    return Problem(401, "unauthorized", "Unauthorized", detail, headers=UNAUTHORIZED_HEADERS)


def rate_limited(wait_s: float) -> Problem:
    return Problem(429, "rate-limited", "Too many requests", "Slow down and retry later.",
                   headers={"Retry-After": str(max(1, math.ceil(wait_s)))})


class Authenticator:
    def __init__(self, settings: Settings, engine: AsyncEngine) -> None:
        self.settings = settings
        self.engine = engine
        self._jwt_secret = settings.jwt_secret.get_secret_value()
        if not self._jwt_secret:
            raise RuntimeError("GATEWAY_JWT_SECRET is not set")
        self._keys: dict[str, tuple[Principal | None, float]] = {}
        self._tokens: dict[str, tuple[Principal, float]] = {}
        self._users: dict[str, tuple[str | None, float]] = {}
        self.requests = TokenBuckets(settings.rate_limit_rps, settings.rate_limit_burst)
        self.logins = TokenBuckets(settings.login_attempts_per_minute / 60.0, settings.login_attempts_per_minute)

    # ---- authentication ------------------------------------------------------------
    async def authenticate(self, authorization: str | None) -> Principal:
        if not authorization:
            raise unauthorized("Missing bearer token.")
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise unauthorized("Use 'Authorization: Bearer <token>'.")
        if token.startswith(security.API_KEY_PREFIX):
            principal = await self._api_key(token)
        else:
            principal = await self._current_user(self._user_token(token))
        wait = self.requests.take(principal.ref)
        if wait:
            raise rate_limited(wait)
        return principal

    async def _api_key(self, key: str) -> Principal:
        digest = security.hash_api_key(key)
        now = time.monotonic()
        cached = self._keys.get(digest)
        if cached is None or cached[1] < now:
            async with self.engine.connect() as conn:
                row = await repository.active_key_by_hash(conn, digest)
            principal = None if row is None else Principal(kind="channel", id=str(row.id), channel=row.channel, name=row.name)
            if len(self._keys) > 100_000:
                self._keys.clear()
            cached = (principal, now + self.settings.api_key_cache_ttl_s)
            self._keys[digest] = cached
        if cached[0] is None:
            raise unauthorized("Unknown or revoked API key.")
        return cached[0]

    def _user_token(self, token: str) -> Principal:
        now = time.time()
        cached = self._tokens.get(token)
        if cached and cached[1] > now:
            return cached[0]
        try:
            claims = security.decode_access_token(token, secret=self._jwt_secret, issuer=self.settings.jwt_issuer)
        except jwt.PyJWTError as exc:
            raise unauthorized("Invalid or expired token.") from exc
        if claims.get("role") not in USER_ROLES:
            raise unauthorized("Invalid token role.")
        principal = Principal(kind="user", id=str(claims["sub"]), role=claims["role"])
        if len(self._tokens) > 100_000:
            self._tokens.clear()
        self._tokens[token] = (principal, float(claims["exp"]))
        return principal

    async def _current_user(self, principal: Principal) -> Principal:
        """The user as they are now: a deactivated user or a changed role takes effect within
        the key-cache TTL (30 s), not when the token expires."""
        now = time.monotonic()
        cached = self._users.get(principal.id)
        if cached is None or cached[1] < now:
            async with self.engine.connect() as conn:
                row = await repository.user_by_id(conn, uuid.UUID(principal.id))
            state = (row.role if row is not None and row.active else None)
            if len(self._users) > 100_000:
                self._users.clear()
            cached = (state, now + self.settings.api_key_cache_ttl_s)
            self._users[principal.id] = cached
        if cached[0] is None:
            raise unauthorized("This user is deactivated.")
        return principal if cached[0] == principal.role else Principal(kind="user", id=principal.id, role=cached[0])

    def forget_user(self, user_id: str) -> None:
        self._users.pop(user_id, None)

    def forget_key(self, key_hash: str) -> None:
        self._keys.pop(key_hash, None)

    # ---- login ---------------------------------------------------------------------
    async def login(self, *, email: str, password: str, client_ip: str) -> dict[str, Any]:
        email = email.strip().lower()
        wait = self.logins.take(f"{email}|{client_ip}")
        if wait:
            raise rate_limited(wait)
        async with self.engine.connect() as conn:
            user = await repository.user_by_email(conn, email)
        stored = user.password_hash if user is not None and user.active else None
        valid, rehash = await anyio.to_thread.run_sync(security.verify_password, stored, password)
        if not valid or user is None:
            raise unauthorized("Wrong e-mail or password.")
        if rehash:
            new_hash = await anyio.to_thread.run_sync(security.hash_password, password)
            async with self.engine.begin() as conn:
                await repository.set_password_hash(conn, user.id, new_hash)
        token = security.issue_access_token(
            secret=self._jwt_secret, issuer=self.settings.jwt_issuer, ttl_s=self.settings.access_token_ttl_s,
            user_id=user.id, role=user.role, email=user.email,
        )
        return {"access_token": token, "token_type": "bearer", "expires_in": self.settings.access_token_ttl_s}

    # ---- API keys ------------------------------------------------------------------
    async def create_api_key(self, *, name: str, channel: str, created_by: str) -> tuple[Any, str]:
        key = security.new_api_key()
        async with self.engine.begin() as conn:
            row = await repository.insert_api_key(
                conn, name=name, channel=channel, key_prefix=key[:8], key_hash=security.hash_api_key(key),
                created_by=created_by,
            )
        return row, key

    async def revoke_api_key(self, key_id: uuid.UUID) -> None:
        async with self.engine.begin() as conn:
            key_hash = await repository.revoke_api_key(conn, key_id)
        if key_hash is None:
            raise Problem(404, "not-found", "API key not found", f"No active API key {key_id}.")
        self.forget_key(key_hash)
