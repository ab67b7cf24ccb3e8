"""The signed-in user's own credentials: two-factor sign-in (TOTP) and personal API tokens;
and the public keys user tokens are signed with (JWKS)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, StringConstraints

from helpdesk_common.identity import Principal, require_user
from helpdesk_common.openapi import problem_responses
from helpdesk_common.problems import Problem
from helpdesk_common.validation import NOT_BLANK, StrictModel

from ..deps import Admin, Caller, ClientAddress
from . import repository, security, totp
from .oidc import router as oidc_router

router = APIRouter(tags=["auth"])
router.include_router(oidc_router)  # OIDC sign-in (oidc.py)

#: the JWKS may be cached this long; a new signing key is published here before it signs (keep a
#: rotation's new key second for this long, then move it first: docs/security.md, "Sign-in")
JWKS_MAX_AGE_S = 300


class Jwk(BaseModel):
    kty: str
    crv: str
    use: str
    alg: str
    kid: str
    x: str


class Jwks(BaseModel):
    keys: list[Jwk]


@router.get("/.well-known/jwks.json", response_model=Jwks, summary="The public keys user tokens are signed with",
            responses=problem_responses())
async def jwks(request: Request, response: Response) -> dict:
    """Public and cacheable: each access token names its key in the ``kid`` header (EdDSA, Ed25519)."""
    response.headers["Cache-Control"] = f"public, max-age={JWKS_MAX_AGE_S}"
    return request.app.state.auth.signing_keys.jwks()


def _signed_in(request: Request, caller: Principal) -> None:
    """Credentials are managed from a signed-in session only, never with an API token (a leaked
    token must not mint more tokens or turn two-factor sign-in off)."""
    require_user(caller)
    if not request.app.state.auth.is_session(request.headers.get("authorization")):
        raise Problem(403, "session-required", "Sign in first",
                      "Manage credentials from a signed-in session, not with an API token.")


# ---- two-factor sign-in ----------------------------------------------------------------------
class TotpEnrolment(BaseModel):
    #: base32, for apps that take it typed in
    secret: str
    #: ``otpauth://totp/...``, usually shown as a QR code
    otpauth_uri: str


class TotpCode(StrictModel):
    code: Annotated[str, StringConstraints(min_length=6, max_length=6, pattern=r"^[0-9]{6}$")]


class TotpConfirmed(BaseModel):
    #: one-time codes for when the phone is lost; shown once
    recovery_codes: list[str]


class TotpDisable(StrictModel):
    """One of: a current code (or a recovery code), or the password."""

    code: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None
    password: Annotated[str, StringConstraints(min_length=1, max_length=1024)] | None = None


class TotpStatus(BaseModel):
    enabled: bool
    pending: bool
    recovery_codes_left: int


async def _state(request: Request, caller: Principal):  # type: ignore[no-untyped-def]
    async with request.app.state.runtime.engine.connect() as conn:
        row = await repository.totp_state(conn, uuid.UUID(caller.id))
    if row is None:  # pragma: no cover - the session check found the user a moment ago
        raise Problem(401, "unauthorized", "Unauthorized", "Sign in again.")
    return row


@router.get("/v1/users/me/totp", response_model=TotpStatus, summary="Whether two-factor sign-in is on")
async def totp_status(request: Request, caller: Caller) -> dict:
    require_user(caller)
    row = await _state(request, caller)
    async with request.app.state.runtime.engine.connect() as conn:
        left = await repository.recovery_codes_left(conn, row.id)
    return {"enabled": row.totp_confirmed_at is not None,
            "pending": row.totp_confirmed_at is None and row.totp_secret is not None, "recovery_codes_left": left}


@router.post("/v1/users/me/totp", status_code=201, response_model=TotpEnrolment,
             summary="Start two-factor sign-in: a new secret, not active until confirmed",
             responses=problem_responses(409, _409="already on (`totp-enabled`), or no key to keep secrets with"))
async def totp_enrol(request: Request, caller: Caller) -> dict:
    _signed_in(request, caller)
    auth = request.app.state.auth
    keyring = auth.totp_keyring()
    row = await _state(request, caller)
    secret = totp.new_secret()
    async with request.app.state.runtime.transaction() as conn:
        if not await repository.set_pending_totp(conn, row.id, keyring.encrypt(secret, context=totp.SECRET_CONTEXT)):
            raise Problem(409, "totp-enabled", "Two-factor sign-in is on",
                          "Turn it off first (DELETE /v1/users/me/totp) to enrol another app.")
    return {"secret": secret, "otpauth_uri": totp.provisioning_uri(secret, account=row.email,
                                                                   issuer=auth.settings.totp_issuer)}


@router.post("/v1/users/me/totp/confirm", response_model=TotpConfirmed,
             summary="Turn two-factor sign-in on with a code from the app; answers the recovery codes",
             responses=problem_responses(409, 422, _409="nothing to confirm, or on already",
                                         _422="wrong code (`code`: `totp_invalid`)"))
async def totp_confirm(request: Request, body: TotpCode, caller: Caller, client_address: ClientAddress) -> dict:
    _signed_in(request, caller)
    auth = request.app.state.auth
    row = await _state(request, caller)
    if row.totp_secret is None or row.totp_confirmed_at is not None:
        raise Problem(409, "totp-not-pending", "Nothing to confirm", "Start with POST /v1/users/me/totp.")
    await auth.check_login_limits(email=row.email, client_address=client_address)
    if not await auth.second_factor(row, body.code, confirm=True):
        auth.record_login_failure(email=row.email, client_address=client_address)
        raise Problem(422, "validation-error", "Wrong code", "The code is wrong, expired or used.",
                      errors=[{"field": "body.code", "message": "wrong, expired or used code", "code": "totp_invalid"}])
    codes = totp.new_recovery_codes()
    async with request.app.state.runtime.transaction() as conn:
        await repository.replace_recovery_codes(conn, row.id, [totp.hash_recovery_code(c) for c in codes])
    auth.forget_sessions(user_id=caller.id)  # the session cache holds whether the user has it on
    return {"recovery_codes": codes}


@router.delete("/v1/users/me/totp", status_code=204, summary="Turn two-factor sign-in off (a code or the password)",
               responses=problem_responses(403, 422, _403="wrong code or password"))
async def totp_disable(request: Request, body: TotpDisable, caller: Caller, client_address: ClientAddress) -> Response:
    _signed_in(request, caller)
    if (body.code is None) == (body.password is None):
        raise Problem(422, "validation-error", "One proof", "Send either code or password.",
                      errors=[{"field": "body", "message": "send either code or password", "code": "one_of"}])
    auth = request.app.state.auth
    row = await _state(request, caller)
    await auth.check_login_limits(email=row.email, client_address=client_address)
    if body.code is not None:
        valid = row.totp_confirmed_at is not None and await auth.second_factor(row, body.code)
    else:
        valid, _ = await auth.check_password(row.password_hash, body.password)
    if not valid:
        auth.record_login_failure(email=row.email, client_address=client_address)
        raise Problem(403, "wrong-credential", "Wrong code or password", "The code or password is not right.")
    async with request.app.state.runtime.transaction() as conn:
        await repository.clear_totp(conn, row.id)
    auth.forget_sessions(user_id=caller.id)
    return Response(status_code=204)


@router.delete("/v1/users/{user_id:uuid}/totp", status_code=204,
               summary="Turn a user's two-factor sign-in off (admin: a lost phone and no recovery code left)",
               responses=problem_responses(404))
async def totp_reset(request: Request, user_id: uuid.UUID, caller: Admin) -> Response:
    """The user's sessions end too: whoever holds one may have signed in with the lost phone."""
    async with request.app.state.runtime.transaction() as conn:
        if await repository.lock_user(conn, user_id) is None:
            raise Problem(404, "not-found", "User not found", f"No user {user_id}.")
        await repository.clear_totp(conn, user_id)
        await repository.revoke_user_sessions(conn, user_id)
    request.app.state.auth.forget_sessions(user_id=str(user_id))
    return Response(status_code=204)


# ---- personal API tokens ---------------------------------------------------------------------
class UserApiTokenCreate(StrictModel):
    name: Annotated[str, StringConstraints(min_length=1, max_length=100, strip_whitespace=True, pattern=NOT_BLANK)]


class UserApiTokenRead(BaseModel):
    id: uuid.UUID
    name: str
    #: the token's first characters, to recognise it
    token_prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class UserApiTokenCreated(UserApiTokenRead):
    #: ``Authorization: Bearer <token>``; shown this once
    token: str


def _token(row) -> dict:  # type: ignore[no-untyped-def]
    return {"id": row.id, "name": row.name, "token_prefix": row.token_prefix, "created_at": row.created_at,
            "last_used_at": row.last_used_at, "revoked_at": row.revoked_at}


@router.post("/v1/users/me/api-tokens", status_code=201, response_model=UserApiTokenCreated,
             summary="Create a personal API token (shown once); it acts as the user with the user's current role",
             responses=problem_responses(403, 409, _409="too many live tokens"))
async def create_user_api_token(request: Request, body: UserApiTokenCreate, caller: Caller) -> dict:
    _signed_in(request, caller)
    user_id = uuid.UUID(caller.id)
    token = security.new_user_api_token()
    limit = request.app.state.auth.settings.user_api_tokens_max
    async with request.app.state.runtime.transaction() as conn:
        await repository.lock_user(conn, user_id)  # two creations at once cannot pass the limit together
        if await repository.count_live_user_api_tokens(conn, user_id) >= limit:
            raise Problem(409, "too-many-tokens", "Too many API tokens", f"Revoke one first (at most {limit}).")
        row = await repository.insert_user_api_token(conn, user_id=user_id, name=body.name, token_prefix=token[:12],
                                                     token_hash=security.hash_user_api_token(token))
    return {**_token(row), "token": token}


@router.get("/v1/users/me/api-tokens", response_model=list[UserApiTokenRead],
            summary="The caller's personal API tokens (no secrets)")
async def list_user_api_tokens(request: Request, caller: Caller) -> list[dict]:
    require_user(caller)
    async with request.app.state.runtime.engine.connect() as conn:
        return [_token(r) for r in await repository.list_user_api_tokens(conn, uuid.UUID(caller.id))]


@router.delete("/v1/users/me/api-tokens/{token_id}", status_code=204, summary="Revoke a personal API token at once",
               responses=problem_responses(404))
async def revoke_user_api_token(request: Request, token_id: uuid.UUID, caller: Caller) -> Response:
    """A user may revoke their own tokens with one of them too (a leaked token can be killed
    from a script); another user's token is a 404."""
    require_user(caller)
    async with request.app.state.runtime.transaction() as conn:
        token_hash = await repository.revoke_user_api_token(conn, uuid.UUID(caller.id), token_id)
    if token_hash is None:
        raise Problem(404, "not-found", "API token not found", f"No live API token {token_id} of yours.")
    request.app.state.auth.forget_user_api_token(token_hash)
    return Response(status_code=204)
