"""Identity propagation from the gateway to the services.

The gateway authenticates the caller and forwards a short-lived token in
``X-Internal-Identity``, signed with Ed25519 (EdDSA). Only the gateway holds the private key
(``INTERNAL_AUTH_PRIVATE_KEY``); every service holds the public key
(``INTERNAL_AUTH_PUBLIC_KEY``), so a compromised service can verify identities but cannot mint
them for the others — which one shared HMAC secret allowed. Services check the signature, the
audience, the issuer and the lifetime (at most ``INTERNAL_TOKEN_MAX_LIFETIME_S``, 10 minutes:
a token with a far ``exp`` is refused however it was signed), with a small cache, and never
trust bare identity headers. A token is minted per principal and reused until shortly before
it expires, so signing costs nothing on the hot path.
"""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass
from typing import Annotated, Literal

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PrivateFormat, PublicFormat, NoEncryption
from fastapi import Depends, Request

from .openapi import authenticates
from .problems import Problem

IDENTITY_HEADER = "x-internal-identity"
AUDIENCE = "helpdesk-internal"
ISSUER = "helpdesk-gateway"
TOKEN_TTL_S = 300
#: the longest lifetime (exp - iat) a service accepts
TOKEN_MAX_LIFETIME_S = 600
_CLOCK_SKEW_S = 30
_REFRESH_MARGIN_S = 60
_ALGORITHM = "EdDSA"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    text = text.strip()
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def generate_keypair() -> tuple[str, str]:
    """(private key, public key), each the base64url of its 32 raw bytes (one env line each)."""
    private = Ed25519PrivateKey.generate()
    raw_private = private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    raw_public = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return _b64(raw_private), _b64(raw_public)


def _private_key(text: str) -> Ed25519PrivateKey:
    if not text:
        raise RuntimeError("INTERNAL_AUTH_PRIVATE_KEY is not set (the gateway signs identities with it)")
    try:
        return Ed25519PrivateKey.from_private_bytes(_unb64(text))
    except ValueError as exc:
        raise RuntimeError("INTERNAL_AUTH_PRIVATE_KEY is not a base64url Ed25519 private key") from exc


def _public_key(text: str) -> Ed25519PublicKey:
    if not text:
        raise RuntimeError("INTERNAL_AUTH_PUBLIC_KEY is not set (services verify identities with it)")
    try:
        return Ed25519PublicKey.from_public_bytes(_unb64(text))
    except ValueError as exc:
        raise RuntimeError("INTERNAL_AUTH_PUBLIC_KEY is not a base64url Ed25519 public key") from exc

Role = Literal["admin", "supervisor", "agent", "editor"]
USER_ROLES: tuple[str, ...] = ("admin", "supervisor", "agent", "editor")
#: the roles that work tickets (every service but kb-svc takes only these): an ``editor`` writes
#: the knowledge base (kb-svc, which reads the identity itself) and is an agent nowhere
AGENT_ROLES: tuple[str, ...] = ("admin", "supervisor", "agent")


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a user (with a role), a channel API key (with a channel), or a chat
    visitor (``visitor``: the gateway forwards a visitor token to the one route that takes it,
    where the owning service verifies it; the id is a digest of that token)."""

    kind: Literal["user", "channel", "visitor"]
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
    """Mints identity tokens with the gateway's private key."""

    def __init__(self, private_key: str, *, ttl_s: int = TOKEN_TTL_S) -> None:
        self._key = _private_key(private_key)
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
            "iss": ISSUER,
            "iat": int(now),
            "exp": int(exp),
        }
        if principal.role:
            claims["rol"] = principal.role
        if principal.channel:
            claims["chn"] = principal.channel
        if principal.name:
            claims["nam"] = principal.name
        token = jwt.encode(claims, self._key, algorithm=_ALGORITHM)
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[principal] = (token, exp)
        return token


class IdentityVerifier:
    """Checks identity tokens with the gateway's public key."""

    def __init__(self, public_key: str, *, max_lifetime_s: int = TOKEN_MAX_LIFETIME_S) -> None:
        self._key = _public_key(public_key)
        self._max_lifetime_s = max_lifetime_s
        self._cache: dict[str, tuple[Principal, float]] = {}

    def verify(self, token: str) -> Principal:
        now = time.time()
        cached = self._cache.get(token)
        if cached and cached[1] > now:
            return cached[0]
        try:
            claims = jwt.decode(
                token, self._key, algorithms=[_ALGORITHM], audience=AUDIENCE, issuer=ISSUER,
                options={"require": ["exp", "iat", "sub", "aud", "iss"]}, leeway=_CLOCK_SKEW_S,
            )
        except jwt.PyJWTError as exc:
            raise Problem(401, "unauthorized", "Unauthorized", "Invalid internal identity.") from exc
        kind = claims.get("knd")
        lifetime = claims["exp"] - claims["iat"]
        if kind not in ("user", "channel", "visitor") or not 0 < lifetime <= self._max_lifetime_s:
            raise Problem(401, "unauthorized", "Unauthorized", "Invalid internal identity.")
        principal = Principal(
            kind=kind, id=str(claims["sub"]), role=claims.get("rol"),
            channel=claims.get("chn"), name=claims.get("nam"),
        )
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[token] = (principal, float(claims["exp"]))
        return principal


@authenticates
async def current_principal(request: Request) -> Principal:
    """Async on purpose: a sync dependency would run in the thread pool on every request."""
    token = request.headers.get(IDENTITY_HEADER)
    if not token:
        raise Problem(401, "unauthorized", "Unauthorized", "Missing identity.")
    verifier: IdentityVerifier = request.app.state.identity_verifier
    principal = verifier.verify(token)
    if principal.kind == "visitor":  # a visitor reads its conversation (current_visitor), nothing else
        raise Problem(403, "forbidden", "Forbidden", "This operation is not allowed for the caller.")
    if principal.kind == "user" and principal.role not in AGENT_ROLES:
        # an editor (or a role this build does not know) has no rights in the ticketing services;
        # the gateway already keeps editors to /v1/kb, this is the second line
        raise Problem(403, "forbidden", "Forbidden", "This operation is not allowed for the caller.")
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


async def current_visitor(request: Request) -> Principal:
    """A chat visitor, as the gateway marked it (the visitor's token itself is the owning
    service's to verify); any other caller is refused."""
    token = request.headers.get(IDENTITY_HEADER)
    if not token:
        raise Problem(401, "unauthorized", "Unauthorized", "Missing identity.")
    verifier: IdentityVerifier = request.app.state.identity_verifier
    principal = verifier.verify(token)
    if principal.kind != "visitor":
        raise Problem(401, "unauthorized", "Unauthorized", "A visitor token is required.",
                      headers={"WWW-Authenticate": "Bearer"})
    return principal


def require_user(principal: Principal, *roles: str) -> None:
    """Coarse check used by endpoints that channels must not reach."""
    if not principal.is_user or (roles and principal.role not in roles):
        raise Problem(403, "forbidden", "Forbidden", "This operation is not allowed for the caller.")


if __name__ == "__main__":  # a new key pair, as env-file lines for a Kubernetes Secret
    _private, _public = generate_keypair()
    print(f"internal-auth-private-key={_private}\ninternal-auth-public-key={_public}")
