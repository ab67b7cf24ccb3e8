"""Sign-in through an external OpenID Connect provider (authorization code flow with PKCE).

``GET /v1/auth/oidc/{provider}/start`` sends the browser to the provider's authorization
endpoint with a fresh ``state`` (kept hashed in ``oidc_logins``, used once, 10 minutes), a
``nonce`` and a PKCE challenge (S256). The provider sends it back to
``/v1/auth/oidc/{provider}/callback`` (GET with a query, or POST with a form or JSON: an SPA
can catch the redirect and post ``code`` and ``state`` itself). The gateway then

- takes the state (unknown, expired or used once already: 401 ``oidc_state_invalid``),
- exchanges the code at the token endpoint (client secret, PKCE verifier),
- verifies the ID token with the provider's keys from its discovery document's ``jwks_uri``
  (only asymmetric algorithms; ``iss`` must be the configured issuer, ``aud`` the client id,
  ``azp`` if present the client id, ``exp``/``iat`` present and current, ``nonce`` the one this
  sign-in sent),
- finds our user: the ``subjects`` mapping of the provider's configuration first, else the
  token's ``email`` when ``email_verified`` is true. No account is created: someone the help
  desk does not know gets 403 ``oidc_no_account``. A deactivated user is refused the same way.

The answer is our usual token pair: from then on the session is the gateway's (refresh,
logout, revocation) and the provider is not asked again. Two-factor sign-in is the provider's
business for these sign-ins. Discovery documents and key sets are cached for an hour; a token
naming an unknown ``kid`` fetches the key set again once (the provider rotated).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Annotated, Any
from urllib.parse import quote_plus, urlencode

import aiohttp
import jwt
from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse
from prometheus_client import Counter

from helpdesk_common.openapi import problem_responses
from helpdesk_common.problems import Problem

from ..deps import ClientAddress
from . import repository
from .schemas import TokenResponse
from .service import UNAUTHORIZED_HEADERS

router = APIRouter(prefix="/v1/auth/oidc", tags=["auth"])
OIDC_SIGN_INS = Counter("gateway_oidc_sign_ins_total", "OIDC sign-ins by provider and outcome", ["provider", "outcome"])
ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA")
_CACHE_S = 3600.0
_LEEWAY_S = 60


@dataclass
class Provider:
    name: str
    issuer: str
    client_id: str
    client_secret: str
    scopes: str = "openid email profile"
    subjects: dict[str, str] = field(default_factory=dict)


def parse_providers(spec: str) -> dict[str, Provider]:
    """``GATEWAY_OIDC_PROVIDERS`` → providers; a bad value is a configuration error at start."""
    if not spec.strip():
        return {}
    raw = json.loads(spec)
    providers = {}
    for name, conf in raw.items():
        if not name.isidentifier() and not name.replace("-", "").isalnum():
            raise ValueError(f"GATEWAY_OIDC_PROVIDERS: bad provider name {name!r}")
        providers[name] = Provider(name=name, issuer=str(conf["issuer"]).rstrip("/"), client_id=str(conf["client_id"]),
                                   client_secret=str(conf["client_secret"]),
                                   scopes=str(conf.get("scopes", "openid email profile")),
                                   subjects={str(k): str(v).lower() for k, v in conf.get("subjects", {}).items()})
    return providers


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def pkce_challenge(verifier: str) -> str:
    return _b64url(hashlib.sha256(verifier.encode()).digest())


def _hash(state: str) -> str:
    return hashlib.sha256(state.encode()).hexdigest()


def refused(kind: str, detail: str, *, status: int = 401) -> Problem:
    return Problem(status, "unauthorized" if status == 401 else "forbidden",
                   "Unauthorized" if status == 401 else "Forbidden", detail,
                   headers=UNAUTHORIZED_HEADERS if status == 401 else None, code=kind)


def verify_id_token(id_token: str, *, keys: dict[str, Any], provider: Provider, nonce: str,
                    allowed_algs: tuple[str, ...] = ALGORITHMS) -> dict[str, Any]:
    """The claims of a valid ID token; ``Problem`` 401 with a code saying what was wrong."""
    try:
        header = jwt.get_unverified_header(id_token)
    except jwt.PyJWTError as exc:
        raise refused("oidc_token_invalid", "The ID token is malformed.") from exc
    alg = header.get("alg")
    if alg not in allowed_algs:
        raise refused("oidc_token_invalid", f"ID tokens signed with {alg!r} are not accepted.")
    key = keys.get(header.get("kid")) if header.get("kid") is not None else (
        next(iter(keys.values())) if len(keys) == 1 else None)
    if key is None:
        raise refused("oidc_token_invalid", "The ID token names a key the provider does not publish.")
    try:
        claims = jwt.decode(id_token, key, algorithms=[alg], audience=provider.client_id, issuer=provider.issuer,
                            leeway=_LEEWAY_S, options={"require": ["iss", "aud", "exp", "iat", "sub"]})
    except jwt.InvalidIssuerError as exc:
        raise refused("oidc_wrong_issuer", "The ID token is from another issuer.") from exc
    except jwt.InvalidAudienceError as exc:
        raise refused("oidc_wrong_audience", "The ID token is for another client.") from exc
    except jwt.InvalidSignatureError as exc:
        raise refused("oidc_bad_signature", "The ID token's signature does not verify.") from exc
    except jwt.PyJWTError as exc:
        raise refused("oidc_token_invalid", f"The ID token is not valid: {type(exc).__name__}.") from exc
    if "azp" in claims and claims["azp"] != provider.client_id:
        raise refused("oidc_wrong_audience", "The ID token was issued to another party.")
    got = claims.get("nonce")
    if not isinstance(got, str) or not hmac.compare_digest(got, nonce):
        raise refused("oidc_nonce_mismatch", "The ID token does not carry this sign-in's nonce.")
    return claims


def account_email(claims: dict[str, Any], provider: Provider) -> str:
    """Our user's e-mail for verified claims: the subject mapping, else a verified e-mail."""
    mapped = provider.subjects.get(str(claims["sub"]))
    if mapped:
        return mapped
    email = claims.get("email")
    if not isinstance(email, str) or not email:
        raise refused("oidc_no_email", "The provider sent no e-mail address.", status=403)
    if claims.get("email_verified") is not True:
        raise refused("oidc_email_unverified", "The provider has not verified this e-mail address.", status=403)
    return email.strip().lower()


class OidcClient:
    """Discovery and key sets per provider, cached; the HTTP calls of a sign-in."""

    def __init__(self, providers: dict[str, Provider], *, session: Any, timeout_s: float) -> None:
        self.providers = providers
        self._session = session
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._discovery: dict[str, tuple[dict[str, Any], float]] = {}
        self._keys: dict[str, tuple[dict[str, Any], float]] = {}
        self._lock = asyncio.Lock()

    def provider(self, name: str) -> Provider:
        provider = self.providers.get(name)
        if provider is None:
            raise Problem(404, "not-found", "Unknown provider", f"No OIDC provider {name!r} is configured.")
        return provider

    async def _get_json(self, url: str) -> dict[str, Any]:
        try:
            async with self._session().get(url, timeout=self._timeout) as r:
                if r.status != 200:
                    raise Problem(502, "bad-gateway", "Provider unavailable", f"The provider answered {r.status}.")
                return await r.json(content_type=None)
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
            raise Problem(502, "bad-gateway", "Provider unavailable", "The provider could not be reached.") from exc

    async def discovery(self, provider: Provider) -> dict[str, Any]:
        cached = self._discovery.get(provider.name)
        if cached and cached[1] > time.monotonic():
            return cached[0]
        doc = await self._get_json(provider.issuer + "/.well-known/openid-configuration")
        if str(doc.get("issuer", "")).rstrip("/") != provider.issuer:  # OIDC Discovery 1.0, section 4.3
            raise Problem(502, "bad-gateway", "Provider misconfigured", "The discovery document names another issuer.")
        for needed in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            if not isinstance(doc.get(needed), str):
                raise Problem(502, "bad-gateway", "Provider misconfigured", f"The discovery document has no {needed}.")
        self._discovery[provider.name] = (doc, time.monotonic() + _CACHE_S)
        return doc

    async def keys(self, provider: Provider, *, refresh: bool = False) -> dict[str, Any]:
        cached = self._keys.get(provider.name)
        if cached and cached[1] > time.monotonic() and not refresh:
            return cached[0]
        doc = await self.discovery(provider)
        jwks = await self._get_json(doc["jwks_uri"])
        keys = {}
        for jwk in jwks.get("keys", []):
            if jwk.get("use", "sig") != "sig":
                continue
            try:
                keys[jwk.get("kid")] = jwt.PyJWK(jwk).key
            except jwt.PyJWTError:
                continue  # a key type we do not use
        self._keys[provider.name] = (keys, time.monotonic() + _CACHE_S)
        return keys

    async def exchange(self, provider: Provider, *, code: str, redirect_uri: str, code_verifier: str) -> str:
        doc = await self.discovery(provider)
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
                "code_verifier": code_verifier}
        # client_secret_basic: each part form-encoded first (RFC 6749, section 2.3.1)
        basic = base64.b64encode(f"{quote_plus(provider.client_id)}:{quote_plus(provider.client_secret)}".encode())
        try:
            async with self._session().post(doc["token_endpoint"], data=form, timeout=self._timeout,
                                            headers={"Accept": "application/json",
                                                     "Authorization": "Basic " + basic.decode()}) as r:
                body = await r.json(content_type=None)
                status = r.status
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
            raise Problem(502, "bad-gateway", "Provider unavailable", "The token endpoint could not be reached.") from exc
        if status != 200 or not isinstance(body, dict) or not isinstance(body.get("id_token"), str):
            raise refused("oidc_code_refused", "The provider refused the authorization code.")
        return body["id_token"]

    async def verified_claims(self, provider: Provider, id_token: str, *, nonce: str) -> dict[str, Any]:
        doc = await self.discovery(provider)
        algs = tuple(a for a in doc.get("id_token_signing_alg_values_supported", ["RS256"]) if a in ALGORITHMS)
        keys = await self.keys(provider)
        try:
            kid = jwt.get_unverified_header(id_token).get("kid")
        except jwt.PyJWTError:
            kid = None
        if kid is not None and kid not in keys:
            async with self._lock:
                keys = await self.keys(provider, refresh=True)
        return verify_id_token(id_token, keys=keys, provider=provider, nonce=nonce, allowed_algs=algs)


def _client(request: Request) -> OidcClient:
    """The app's OIDC client (providers parsed at start-up by the Authenticator), made at first use."""
    state = request.app.state
    client = getattr(state, "oidc", None)
    if client is None:
        client = state.oidc = OidcClient(state.auth.oidc_providers, session=lambda: state.http,
                                         timeout_s=state.auth.settings.oidc_timeout_s)
    return client


def _redirect_uri(request: Request, provider: str) -> str:
    base = request.app.state.auth.settings.public_url.rstrip("/") or str(request.base_url).rstrip("/")
    return f"{base}/v1/auth/oidc/{provider}/callback"


@router.get("/{provider}/start", status_code=302, summary="Start signing in with an external OIDC provider",
            responses={302: {"description": "to the provider's authorization endpoint"},
                       **problem_responses(404, 502)})
async def start(request: Request, provider: str) -> RedirectResponse:
    client = _client(request)
    conf = client.provider(provider)
    doc = await client.discovery(conf)
    state, nonce, verifier = secrets.token_urlsafe(32), secrets.token_urlsafe(32), secrets.token_urlsafe(64)
    async with request.app.state.runtime.transaction() as conn:
        await repository.delete_old_oidc_logins(conn, older_than_s=3600)
        await repository.insert_oidc_login(conn, state_hash=_hash(state), provider=provider, nonce=nonce,
                                           code_verifier=verifier, ttl_s=request.app.state.auth.settings.oidc_login_ttl_s)
    query = urlencode({"response_type": "code", "client_id": conf.client_id, "redirect_uri": _redirect_uri(request, provider),
                       "scope": conf.scopes, "state": state, "nonce": nonce, "code_challenge": pkce_challenge(verifier),
                       "code_challenge_method": "S256"})
    sep = "&" if "?" in doc["authorization_endpoint"] else "?"
    return RedirectResponse(doc["authorization_endpoint"] + sep + query, status_code=302,
                            headers={"Cache-Control": "no-store"})


_Param = Annotated[str | None, Query(max_length=4096)]


async def _callback_params(request: Request, query: dict[str, str | None]) -> dict[str, str]:
    params = {k: v for k, v in query.items() if v is not None}
    if request.method == "POST":
        ctype = request.headers.get("content-type", "")
        try:
            if ctype.startswith("application/json"):
                body = await request.json()
                params.update({k: v for k, v in body.items() if isinstance(v, str)} if isinstance(body, dict) else {})
            else:
                form = await request.form()
                params.update({k: v for k, v in form.items() if isinstance(v, str)})
        except (ValueError, UnicodeDecodeError, AssertionError) as exc:
            raise Problem(400, "bad-request", "Bad callback", "The callback's body is neither JSON nor a form.") from exc
    return {k: v[:4096] for k, v in params.items()}


_CALLBACK_ROUTE: dict[str, Any] = dict(
    response_model=TokenResponse,
    summary="Finish an OIDC sign-in: our tokens for the user the provider vouches for",
    responses=problem_responses(400, 401, 403, 404, 429, 502,
                                _401="state unknown, expired or used (`oidc_state_invalid`), code "
                                     "refused, or the ID token wrong (issuer, audience, signature, nonce)",
                                _403="no active user for the verified identity (`oidc_no_account`), "
                                     "or the e-mail not verified"))


# Two routes rather than one with two methods: each operation needs its own id, or generated
# clients meet the same identifier twice.
@router.get("/{provider}/callback", operation_id="oidc_callback_get", **_CALLBACK_ROUTE)
@router.post("/{provider}/callback", operation_id="oidc_callback_post", **_CALLBACK_ROUTE)
async def callback(request: Request, provider: str, client_address: ClientAddress, code: _Param = None,
                   state: _Param = None, error: _Param = None, error_description: _Param = None, iss: _Param = None,
                   session_state: _Param = None) -> dict:
    """The provider's redirect (GET, the parameters in the query), or an SPA posting ``code``
    and ``state`` as JSON or a form. ``iss`` (RFC 9207), when sent, must be the issuer."""
    auth = request.app.state.auth
    client = _client(request)
    conf = client.provider(provider)
    wait = auth.failures_by_address.peek(client_address)
    if wait:
        from .service import rate_limited

        raise rate_limited(wait)
    params = await _callback_params(request, {"code": code, "state": state, "error": error, "iss": iss})
    try:
        if params.get("iss") is not None and params["iss"].rstrip("/") != conf.issuer:
            raise refused("oidc_wrong_issuer", "The response names another issuer (RFC 9207).")
        if "error" in params:
            raise refused("oidc_denied", f"The provider answered {params['error'][:100]!r}.")
        state, code = params.get("state"), params.get("code")
        if not state or not code:
            raise refused("oidc_state_invalid", "The callback has no state or no code.")
        async with request.app.state.runtime.transaction() as conn:
            pending = await repository.take_oidc_login(conn, _hash(state), provider)
        if pending is None:
            raise refused("oidc_state_invalid", "This sign-in is unknown, expired or finished already.")
        id_token = await client.exchange(conf, code=code, redirect_uri=_redirect_uri(request, provider),
                                         code_verifier=pending.code_verifier)
        claims = await client.verified_claims(conf, id_token, nonce=pending.nonce)
        email = account_email(claims, conf)
        async with request.app.state.runtime.engine.connect() as conn:
            user = await repository.user_by_email(conn, email)
        if user is None or not user.active:
            raise refused("oidc_no_account", "No active help-desk user has this identity.", status=403)
    except Problem as exc:
        if exc.status in (401, 403):
            auth.failures_by_address.take(client_address)
            OIDC_SIGN_INS.labels(provider, str(exc.extensions.get("code", exc.status))).inc()
        raise
    OIDC_SIGN_INS.labels(provider, "ok").inc()
    return await auth.session_for(user, client_address=client_address)
