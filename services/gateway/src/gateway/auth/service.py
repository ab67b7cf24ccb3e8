"""Who is calling: API keys and user tokens → Principal, with caches for the hot path; sign-in,
sessions and the limits that keep sign-in from being turned against the gateway."""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import jwt
from prometheus_client import Counter
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from helpdesk_common.identity import USER_ROLES, Principal
from helpdesk_common.pii_crypto import Keyring, PiiDecryptError
from helpdesk_common.problems import Problem

from ..clientaddr import parse_networks
from ..config import Settings
from ..ratelimit import TokenBuckets
from . import repository, security, totp
from .gate import HashingGate
from .keys import SigningKeys

UNAUTHORIZED_HEADERS = {"WWW-Authenticate": 'Bearer realm="helpdesk"'}
LOGINS = Counter("gateway_logins_total", "Sign-in attempts by outcome", ["outcome"])
AUTH_FAILURES = Counter("gateway_auth_failures_total", "Requests refused for a missing or invalid credential")


def unauthorized(detail: str) -> Problem:
    return Problem(401, "unauthorized", "Unauthorized", detail, headers=UNAUTHORIZED_HEADERS)


#: what an admin without two-factor sign-in may still do when GATEWAY_REQUIRE_TOTP_FOR_ADMINS is on
ENROLMENT_PATHS = frozenset({"/v1/users/me", "/v1/users/me/totp", "/v1/users/me/totp/confirm", "/v1/auth/logout"})


def rate_limited(wait_s: float) -> Problem:
    return Problem(429, "rate-limited", "Too many requests", "Slow down and retry later.",
                   headers={"Retry-After": str(max(1, math.ceil(wait_s)))})


class Authenticator:
    def __init__(self, settings: Settings, engine: AsyncEngine) -> None:
        self.settings = settings
        self.engine = engine
        self.signing_keys = SigningKeys.from_settings(settings.signing_keys.get_secret_value())
        self.trusted_proxies = parse_networks(settings.trusted_proxies)
        self.passwords = security.Passwords(memory_kib=settings.argon2_memory_kib, time_cost=settings.argon2_time_cost,
                                            parallelism=settings.argon2_parallelism)
        self.hashing = HashingGate(concurrency=settings.password_hash_concurrency,
                                   max_waiting=settings.password_hash_max_waiting, wait_s=settings.password_hash_wait_s)
        self._keys: dict[str, tuple[Principal | None, float]] = {}
        self._tokens: dict[str, tuple[Principal, float, str]] = {}  # token → (principal, exp, session id)
        self._sessions: dict[str, tuple[str | None, float]] = {}  # session id → (current role or None, cached until)
        self.user_requests = TokenBuckets(settings.rate_limit_rps, settings.rate_limit_burst)
        channel_rps = settings.channel_rate_limit_rps if settings.rate_limit_rps > 0 else 0.0
        self.channel_requests = TokenBuckets(channel_rps, settings.channel_rate_limit_burst)
        self.failures_by_address = TokenBuckets(settings.auth_failures_per_minute_per_address / 60.0,
                                                settings.auth_failures_per_minute_per_address)
        self.login_failures_by_address = TokenBuckets(settings.login_failures_per_minute_per_address / 60.0,
                                                      settings.login_failures_per_minute_per_address)
        # keyed on (account, address): a guessing loop elsewhere never spends the owner's failures
        self.login_failures_by_account_address = TokenBuckets(settings.login_failures_per_minute_per_account / 60.0,
                                                              settings.login_failures_per_minute_per_account)
        # all addresses together: bounds a distributed loop; known addresses are exempt (check_login_limits)
        self.login_failures_by_account = TokenBuckets(settings.login_failures_per_hour_per_account / 3600.0,
                                                      settings.login_failures_per_hour_per_account)
        pii_keys = settings.pii_keys.get_secret_value()
        self.secrets_at_rest = Keyring.from_settings(pii_keys, setting="GATEWAY_PII_KEYS") if pii_keys else None
        self._user_api_tokens: dict[str, tuple[Principal | None, float]] = {}  # token hash → (user, cached until)
        from .oidc import parse_providers  # noqa: PLC0415 - oidc imports this module

        self.oidc_providers = parse_providers(settings.oidc_providers.get_secret_value())

    # ---- authentication ------------------------------------------------------------
    async def authenticate(self, authorization: str | None, client_address: str = "unknown",
                           path: str | None = None) -> Principal:
        """The caller behind ``Authorization``. A client that keeps presenting bad credentials
        is refused with 429 before any lookup (unknown API keys each cost a database query).
        With GATEWAY_REQUIRE_TOTP_FOR_ADMINS an admin without two-factor sign-in reaches the
        enrolment routes only (``path``; None: the caller checks)."""
        wait = self.failures_by_address.peek(client_address)
        if wait:
            raise rate_limited(wait)
        try:
            principal = await self._principal(authorization)
        except Problem as exc:
            if exc.status == 401:
                self.failures_by_address.take(client_address)
                AUTH_FAILURES.inc()
            raise
        buckets = self.user_requests if principal.is_user else self.channel_requests
        wait = buckets.take(principal.ref)
        if wait:
            raise rate_limited(wait)
        if (self.settings.require_totp_for_admins and principal.role == "admin" and path is not None
                and path not in ENROLMENT_PATHS and not await self._totp_enrolled(authorization, principal)):
            raise Problem(403, "totp-enrolment-required", "Two-factor sign-in required",
                          "Admins must turn on two-factor sign-in first: POST /v1/users/me/totp.",
                          code="totp_enrolment_required")
        return principal

    async def _totp_enrolled(self, authorization: str | None, principal: Principal) -> bool:
        session_id = self.session_of(authorization)
        cached = self._sessions.get(str(session_id)) if session_id else None
        if cached is not None:
            return cached[2]
        async with self.engine.connect() as conn:  # an API token: no session cache to ask
            row = await repository.totp_state(conn, uuid.UUID(principal.id))
        return row is not None and row.totp_confirmed_at is not None

    async def _principal(self, authorization: str | None) -> Principal:
        if not authorization:
            raise unauthorized("Missing bearer token.")
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() == "basic" and token:
            basic = security.basic_api_token(token)
            if basic is None:
                raise unauthorized("Basic credentials are 'email/token:API_TOKEN' with a personal API token "
                                   "(POST /v1/users/me/api-tokens); or use 'Authorization: Bearer <token>'.")
            return await self._user_api_token(basic[1], email=basic[0])
        if scheme.lower() != "bearer" or not token:
            raise unauthorized("Use 'Authorization: Bearer <token>'.")
        if token.startswith(security.API_KEY_PREFIX):
            return await self._api_key(token)
        if token.startswith(security.USER_API_TOKEN_PREFIX):
            return await self._user_api_token(token)
        principal, session_id = self._user_token(token)
        return await self._current_user(principal, session_id)

    async def _cached_principal(self, cache: dict[str, tuple[Principal | None, float]], digest: str,
                                load: Callable[[AsyncConnection], Awaitable[Principal | None]],
                                refused: str) -> Principal:
        """A secret's principal (None: unknown or revoked), cached ``api_key_cache_ttl_s``."""
        now = time.monotonic()
        cached = cache.get(digest)
        if cached is None or cached[1] < now:
            async with self.engine.begin() as conn:
                principal = await load(conn)
            if len(cache) > 100_000:
                cache.clear()
            cached = (principal, now + self.settings.api_key_cache_ttl_s)
            cache[digest] = cached
        if cached[0] is None:
            raise unauthorized(refused)
        return cached[0]

    async def _api_key(self, key: str) -> Principal:
        digest = security.hash_api_key(key)

        async def load(conn: AsyncConnection) -> Principal | None:
            row = await repository.active_key_by_hash(conn, digest)
            return None if row is None else Principal(kind="channel", id=str(row.id), channel=row.channel, name=row.name)

        return await self._cached_principal(self._keys, digest, load, "Unknown or revoked API key.")

    async def _user_api_token(self, token: str, email: str | None = None) -> Principal:
        """A person's API token: the user as they are now (role, active), cached like API keys.
        Sent as Zendesk's Basic ``email/token:TOKEN``, the e-mail must be its user's (cached
        under the pair, so a wrong e-mail never finds the token's entry)."""
        digest = security.hash_user_api_token(token)

        async def load(conn: AsyncConnection) -> Principal | None:
            row = await repository.user_of_api_token(conn, digest)
            if row is None or (email is not None and row.email != email):
                return None
            return Principal(kind="user", id=str(row.id), role=row.role)

        return await self._cached_principal(self._user_api_tokens, digest if email is None else f"{digest} {email}",
                                            load, "Unknown or revoked API token, or its user is deactivated"
                                            + (" (or not the token of that e-mail address)." if email else "."))

    def _user_token(self, token: str, audience: str = security.AUDIENCE) -> tuple[Principal, str]:
        """The user and session a token names. Only access tokens are cached: a stream ticket is
        read once per stream, and sharing the cache would let it pass as a bearer token."""
        api = audience == security.AUDIENCE
        cached = self._tokens.get(token) if api else None
        if cached and cached[1] > time.time():
            return cached[0], cached[2]
        try:
            claims = security.decode_access_token(token, keys=self.signing_keys, issuer=self.settings.jwt_issuer,
                                                  audience=audience)
            user_id, session_id = str(uuid.UUID(str(claims["sub"]))), str(uuid.UUID(str(claims["sid"])))
        except (jwt.PyJWTError, ValueError, TypeError, AttributeError) as exc:
            raise unauthorized("Invalid or expired token.") from exc
        if claims.get("role") not in USER_ROLES:
            raise unauthorized("Invalid token role.")
        principal = Principal(kind="user", id=user_id, role=claims["role"])
        if api:
            if len(self._tokens) > 100_000:
                self._tokens.clear()
            self._tokens[token] = (principal, float(claims["exp"]), session_id)
        return principal, session_id

    async def _current_user(self, principal: Principal, session_id: str) -> Principal:
        """The user as they are now: a logout, a password reset, a deactivation or a role change
        applies at once on this replica and within ``api_key_cache_ttl_s`` on the others."""
        now = time.monotonic()
        cached = self._sessions.get(session_id)
        if cached is None or cached[1] < now:
            async with self.engine.connect() as conn:
                row = await repository.session_state(conn, uuid.UUID(session_id), uuid.UUID(principal.id))
            state = row.role if row is not None and row.live else None
            if len(self._sessions) > 100_000:
                self._sessions.clear()
            cached = (state, now + self.settings.api_key_cache_ttl_s, bool(row is not None and row.totp))
            self._sessions[session_id] = cached
        if cached[0] is None:
            raise unauthorized("This session has ended; sign in again.")
        return principal if cached[0] == principal.role else Principal(kind="user", id=principal.id, role=cached[0])

    async def authenticate_stream_ticket(self, ticket: str, client_address: str) -> Principal:
        """A user from a stream ticket (valid for ``stream_ticket_ttl_s``, only for the stream,
        and only while the session it was issued in stands)."""
        wait = self.failures_by_address.peek(client_address)
        if wait:
            raise rate_limited(wait)
        try:
            principal, session_id = self._user_token(ticket, audience=security.STREAM_AUDIENCE)
            return await self._current_user(principal, session_id)
        except Problem as exc:
            if exc.status == 401:
                self.failures_by_address.take(client_address)
                AUTH_FAILURES.inc()
            raise

    def stream_ticket(self, principal: Principal, authorization: str | None) -> str:
        session_id = self.session_of(authorization)
        if session_id is None or principal.role is None:  # pragma: no cover - authenticated just before
            raise unauthorized("Sign in again.")
        return security.issue_stream_ticket(keys=self.signing_keys, issuer=self.settings.jwt_issuer,
                                            ttl_s=self.settings.stream_ticket_ttl_s, user_id=principal.id,
                                            role=principal.role, session_id=str(session_id))

    def is_session(self, authorization: str | None) -> bool:
        """Whether the caller signed in (an access token), rather than holding an API token."""
        return self.session_of(authorization) is not None

    def session_of(self, authorization: str | None) -> uuid.UUID | None:
        """The session id of an already authenticated user token."""
        token = (authorization or "").partition(" ")[2].strip()
        cached = self._tokens.get(token)
        return uuid.UUID(cached[2]) if cached else None

    def forget_sessions(self, *, user_id: str | None = None, session_id: str | None = None) -> None:
        """Drop cached session states (this replica at once; others within the cache TTL)."""
        if session_id is not None:
            self._sessions.pop(session_id, None)
        if user_id is not None:
            stale = {sid for _, _, sid in (v for v in self._tokens.values() if v[0].id == user_id)}
            for sid in stale:
                self._sessions.pop(sid, None)
            for digest in [d for d, (p, _) in self._user_api_tokens.items() if p is not None and p.id == user_id]:
                self._user_api_tokens.pop(digest, None)

    def forget_user_api_token(self, token_hash: str) -> None:
        for key in [k for k in self._user_api_tokens if k == token_hash or k.startswith(token_hash + " ")]:
            self._user_api_tokens.pop(key, None)

    def forget_key(self, key_hash: str) -> None:
        self._keys.pop(key_hash, None)

    # ---- passwords -------------------------------------------------------------------
    async def hash_password(self, password: str) -> str:
        return await self.hashing.run(self.passwords.hash, password)

    async def check_password(self, stored_hash: str | None, password: str) -> tuple[bool, bool]:
        return await self.hashing.run(self.passwords.verify, stored_hash, password)

    async def check_login_limits(self, *, email: str, client_address: str) -> None:
        """Refuse before any hashing when this address, or this account from this address, or
        this account from everywhere has failed too often. Only failures count, so a whole office
        signing in from one address is never limited.

        The guessing window (docs/security.md, "Sign-in"): guesses from other addresses never
        spend the (account, address) failures of the owner's address, and the account-wide
        bucket, which a distributed loop does empty, does not hold an address the account signed
        in from within ``login_known_address_days``. So the owner signs in at once from any
        address they used before, however long the loop runs; from a new one, within an hour of
        the loop stopping (the bucket refills in an hour)."""
        for buckets, key in ((self.login_failures_by_address, client_address),
                             (self.login_failures_by_account_address, f"{email}\x00{client_address}")):
            wait = buckets.peek(key)
            if wait:
                LOGINS.labels("rate_limited").inc()
                raise rate_limited(wait)
        wait = self.login_failures_by_account.peek(email)
        if wait:
            async with self.engine.connect() as conn:
                known = await repository.signed_in_from(conn, email, client_address,
                                                        within_s=self.settings.login_known_address_days * 86400)
            if not known:
                LOGINS.labels("rate_limited").inc()
                raise rate_limited(wait)

    def record_login_failure(self, *, email: str, client_address: str) -> None:
        LOGINS.labels("failed").inc()
        self.login_failures_by_address.take(client_address)
        self.login_failures_by_account_address.take(f"{email}\x00{client_address}")
        self.login_failures_by_account.take(email)

    # ---- sign-in and sessions ------------------------------------------------------
    async def login(self, *, email: str, password: str, client_address: str,
                    totp_code: str | None = None) -> dict[str, Any]:
        email = email.strip().lower()
        await self.check_login_limits(email=email, client_address=client_address)
        async with self.engine.connect() as conn:
            user = await repository.user_by_email(conn, email)
        stored = user.password_hash if user is not None and user.active else None
        valid, rehash = await self.check_password(stored, password)
        if not valid or user is None:
            self.record_login_failure(email=email, client_address=client_address)
            raise unauthorized("Wrong e-mail or password.")
        if user.totp_confirmed_at is not None:
            if not totp_code:
                LOGINS.labels("totp_required").inc()
                raise Problem(401, "totp-required", "Two-factor code required",
                              "Send the code from the authenticator app (or a recovery code) as totp_code.",
                              headers=UNAUTHORIZED_HEADERS, code="totp_required")
            if not await self.second_factor(user, totp_code):
                self.record_login_failure(email=email, client_address=client_address)
                raise Problem(401, "unauthorized", "Unauthorized", "Wrong or already used two-factor code.",
                              headers=UNAUTHORIZED_HEADERS, code="totp_invalid")
        new_hash = await self.hash_password(password) if rehash else None
        refresh = security.new_refresh_token()
        async with self.engine.begin() as conn:
            if new_hash is not None:
                await repository.set_password_hash(conn, user.id, new_hash)
            session_id = await repository.insert_session(
                conn, user_id=user.id, refresh_hash=security.hash_refresh_token(refresh),
                ttl_s=self.settings.session_ttl_s, client_address=client_address)
        LOGINS.labels("ok").inc()
        return self._tokens_for(user_id=user.id, role=user.role, email=user.email, session_id=session_id,
                                refresh=refresh)

    async def session_for(self, user: Any, *, client_address: str) -> dict[str, Any]:
        """A new session and its tokens for a user signed in some other way (OIDC: oidc.py)."""
        refresh = security.new_refresh_token()
        async with self.engine.begin() as conn:
            session_id = await repository.insert_session(
                conn, user_id=user.id, refresh_hash=security.hash_refresh_token(refresh),
                ttl_s=self.settings.session_ttl_s, client_address=client_address)
        LOGINS.labels("ok").inc()
        return self._tokens_for(user_id=user.id, role=user.role, email=user.email, session_id=session_id,
                                refresh=refresh)

    # ---- two-factor sign-in (totp.py) ---------------------------------------------
    def totp_keyring(self) -> Keyring:
        if self.secrets_at_rest is None:
            raise Problem(409, "totp-unavailable", "Two-factor sign-in unavailable",
                          "This deployment has no GATEWAY_PII_KEYS to keep two-factor secrets with.")
        return self.secrets_at_rest

    def totp_secret(self, row: Any) -> str | None:
        if row.totp_secret is None or self.secrets_at_rest is None:
            return None
        try:
            return self.secrets_at_rest.decrypt(row.totp_secret, context=totp.SECRET_CONTEXT)
        except PiiDecryptError:  # a key removed too early: the code cannot be checked
            return None

    async def second_factor(self, user: Any, code: str, *, confirm: bool = False) -> bool:
        """A valid, unused code (marked used), or an unused recovery code (marked used)."""
        if totp.is_code(code):
            secret = self.totp_secret(user)
            step = None if secret is None else totp.matching_step(secret, code, last_step=user.totp_last_step)
            if step is None:
                return False
            async with self.engine.begin() as conn:
                return await repository.accept_totp_step(conn, user.id, step, confirm=confirm)
        code_hash = None if confirm else totp.hash_recovery_code(code)
        if code_hash is None:
            return False
        async with self.engine.begin() as conn:
            return await repository.use_recovery_code(conn, user.id, code_hash)

    async def refresh(self, *, refresh_token: str, client_address: str) -> dict[str, Any]:
        """A new access token and a new refresh token for a live session. A refresh token can be
        used once: presenting a replaced one again ends the session (it was copied)."""
        wait = self.failures_by_address.peek(client_address)
        if wait:
            raise rate_limited(wait)
        digest = security.hash_refresh_token(refresh_token)
        new_refresh = security.new_refresh_token()
        async with self.engine.begin() as conn:
            row = await repository.session_by_refresh_hash(conn, digest)
            if row is not None:
                await repository.rotate_refresh(conn, row.id, old_hash=digest,
                                                new_hash=security.hash_refresh_token(new_refresh))
            else:
                reused = await repository.revoke_session_by_previous_hash(conn, digest)
                if reused is not None:
                    self.forget_sessions(session_id=str(reused))
        if row is None:
            self.failures_by_address.take(client_address)
            raise unauthorized("Invalid, used or expired refresh token; sign in again.")
        return self._tokens_for(user_id=row.user_id, role=row.role, email=row.email, session_id=row.id,
                                refresh=new_refresh)

    def _tokens_for(self, *, user_id: uuid.UUID, role: str, email: str, session_id: uuid.UUID,
                    refresh: str) -> dict[str, Any]:
        token = security.issue_access_token(
            keys=self.signing_keys, issuer=self.settings.jwt_issuer, ttl_s=self.settings.access_token_ttl_s,
            user_id=user_id, role=role, email=email, session_id=session_id,
        )
        return {"access_token": token, "token_type": "bearer", "expires_in": self.settings.access_token_ttl_s,
                "refresh_token": refresh}

    async def logout(self, *, user_id: str, session_id: uuid.UUID, all_sessions: bool) -> None:
        async with self.engine.begin() as conn:
            if all_sessions:
                await repository.revoke_user_sessions(conn, uuid.UUID(user_id))
            else:
                await repository.revoke_session(conn, session_id)
        self.forget_sessions(session_id=str(session_id), user_id=user_id if all_sessions else None)

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
