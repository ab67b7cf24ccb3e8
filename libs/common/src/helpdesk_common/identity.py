"""Identity propagation from the gateway to the services.

The gateway authenticates the caller and forwards a short-lived HS256 token in
``X-Internal-Identity``, signed with a secret shared only by the deployment's processes.
Services verify it on every request (with a small cache) and never trust bare identity
headers. A token is minted per principal and reused until shortly before it expires, so
signing costs nothing on the hot path.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Annotated, Literal

import jwt
from fastapi import Depends, Request

from .problems import Problem

IDENTITY_HEADER = "x-internal-identity"
AUDIENCE = "helpdesk-internal"
TOKEN_TTL_S = 300
_REFRESH_MARGIN_S = 60

Role = Literal["admin", "supervisor", "agent"]
USER_ROLES: tuple[str, ...] = ("admin", "supervisor", "agent")


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a user (with a role) or a channel API key (with a channel)."""

    kind: Literal["user", "channel"]
    id: str
    role: str | None = None
    channel: str | None = None
    name: str | None = None

    @property
    def ref(self) -> str:
        """Stable string used for ownership (created_by) and idempotency scoping."""
        return f"{self.kind}:{self.id}"

    @property
    def is_user(self) -> bool:
        return self.kind == "user"

    def has_role(self, *roles: str) -> bool:
        return self.kind == "user" and self.role in roles


class IdentitySigner:
    def __init__(self, secret: str, *, ttl_s: int = TOKEN_TTL_S) -> None:
        if not secret:
            raise RuntimeError("INTERNAL_AUTH_SECRET is not set")
        self._secret = secret
        self._ttl_s = ttl_s
        self._cache: dict[Principal, tuple[str, float]] = {}

    def token_for(self, principal: Principal) -> str:
        now = time.time()
        cached = self._cache.get(principal)
        if cached and cached[1] - _REFRESH_MARGIN_S > now:
            return cached[0]
        exp = now + self._ttl_s
        claims = {
            "sub": principal.id,
            "knd": principal.kind,
            "aud": AUDIENCE,
            "iat": int(now),
            "exp": int(exp),
        }
        if principal.role:
            claims["rol"] = principal.role
        if principal.channel:
            claims["chn"] = principal.channel
        if principal.name:
            claims["nam"] = principal.name
        token = jwt.encode(claims, self._secret, algorithm="HS256")
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[principal] = (token, exp)
        return token


class IdentityVerifier:
    def __init__(self, secret: str) -> None:
        if not secret:
            raise RuntimeError("INTERNAL_AUTH_SECRET is not set")
        self._secret = secret
        self._cache: dict[str, tuple[Principal, float]] = {}

    def verify(self, token: str) -> Principal:
        now = time.time()
        cached = self._cache.get(token)
        if cached and cached[1] > now:
            return cached[0]
        try:
            claims = jwt.decode(
                token, self._secret, algorithms=["HS256"], audience=AUDIENCE,
                options={"require": ["exp", "sub", "aud"]},
            )
        except jwt.PyJWTError as exc:
            raise Problem(401, "unauthorized", "Unauthorized", "Invalid internal identity.") from exc
        kind = claims.get("knd")
        if kind not in ("user", "channel"):
            raise Problem(401, "unauthorized", "Unauthorized", "Invalid internal identity.")
        principal = Principal(
            kind=kind, id=str(claims["sub"]), role=claims.get("rol"),
            channel=claims.get("chn"), name=claims.get("nam"),
        )
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[token] = (principal, float(claims["exp"]))
        return principal


async def current_principal(request: Request) -> Principal:
    """Async on purpose: a sync dependency would run in the thread pool on every request."""
    token = request.headers.get(IDENTITY_HEADER)
    if not token:
        raise Problem(401, "unauthorized", "Unauthorized", "Missing identity.")
    verifier: IdentityVerifier = request.app.state.identity_verifier
    return verifier.verify(token)


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def require_user(principal: Principal, *roles: str) -> None:
    """Coarse check used by endpoints that channels must not reach."""
    if not principal.is_user or (roles and principal.role not in roles):
        raise Problem(403, "forbidden", "Forbidden", "This operation is not allowed for the caller.")
