from __future__ import annotations

import uuid

from fastapi import APIRouter, Request, Response

from helpdesk_common import events
from helpdesk_common.identity import AGENT_ROLES, Principal, require_user
from helpdesk_common.outbox import enqueue
from helpdesk_common.openapi import problem_responses
from helpdesk_common.problems import Problem

from ..db import outbox
from ..deps import Admin, Caller, ClientAddress
from . import policy, repository, users
from .schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyRead,
    LoginRequest,
    LogoutRequest,
    PasswordChange,
    RefreshRequest,
    TokenResponse,
    UserCreate,
    UserPatch,
    UserRead,
    UserWritten,
)

router = APIRouter(prefix="/v1", tags=["auth"])
#: the password-hashing gate is full (auth/gate.py)
SIGN_IN_BUSY = "`busy`: too many password checks at once; retry after `Retry-After` seconds."


def _read(row) -> dict:
    return {"id": row.id, "name": row.name, "channel": row.channel, "key_prefix": row.key_prefix,
            "created_at": row.created_at, "revoked_at": row.revoked_at}


@router.post("/auth/login", response_model=TokenResponse, summary="Exchange e-mail and password for tokens",
             responses=problem_responses(401, 429, 503, _401="wrong e-mail or password, or a two-factor code missing "
                                         "(`code`: `totp_required`) or wrong", _503=SIGN_IN_BUSY))
async def login(request: Request, body: LoginRequest, client_address: ClientAddress) -> dict:
    """With two-factor sign-in on, ``totp_code`` is the app's current code or a recovery code;
    without it the answer is a 401 problem with ``"code": "totp_required"``."""
    return await request.app.state.auth.login(email=body.email, password=body.password, client_address=client_address,
                                              totp_code=body.totp_code)


@router.post("/auth/refresh", response_model=TokenResponse, summary="Exchange a refresh token for new tokens",
             responses=problem_responses(401, 429, _401="invalid, used or expired refresh token"))
async def refresh(request: Request, body: RefreshRequest, client_address: ClientAddress) -> dict:
    return await request.app.state.auth.refresh(refresh_token=body.refresh_token, client_address=client_address)


@router.post("/auth/logout", status_code=204, summary="End this session (or all of the caller's sessions)")
async def logout(request: Request, caller: Caller, body: LogoutRequest | None = None) -> Response:
    require_user(caller)
    auth = request.app.state.auth
    session_id = auth.session_of(request.headers.get("authorization"))
    if session_id is None:  # pragma: no cover - an authenticated user token is always cached
        raise Problem(401, "unauthorized", "Unauthorized", "Sign in again.")
    await auth.logout(user_id=caller.id, session_id=session_id, all_sessions=bool(body and body.all_sessions))
    return Response(status_code=204)


@router.post("/api-keys", status_code=201, response_model=ApiKeyCreated, summary="Create a channel API key (shown once)")
async def create_api_key(request: Request, body: ApiKeyCreate, caller: Admin) -> dict:
    row, key = await request.app.state.auth.create_api_key(name=body.name, channel=body.channel, created_by=caller.ref)
    return {**_read(row), "key": key}


@router.get("/api-keys", response_model=list[ApiKeyRead], summary="List channel API keys (no secrets)")
async def list_api_keys(request: Request, caller: Admin) -> list[dict]:
    async with request.app.state.runtime.engine.connect() as conn:
        return [_read(r) for r in await repository.list_api_keys(conn)]


@router.delete("/api-keys/{key_id}", status_code=204, summary="Revoke a channel API key")
async def revoke_api_key(request: Request, key_id: uuid.UUID, caller: Admin) -> Response:
    await request.app.state.auth.revoke_api_key(key_id)
    return Response(status_code=204)


def _user(row) -> dict:
    return {"id": row.id, "email": row.email, "name": row.name, "role": row.role, "active": row.active,
            "created_at": row.created_at}


async def _provisioned(request: Request, event: events.UserCreated | events.UserUpdated | None,
                       caller: Principal) -> str | None:
    """Send the committed change to ticket-svc now (gateway/auth/users.py): "ready" or "pending"."""
    if event is None or event.data.role not in AGENT_ROLES:
        return None  # an editor has no agent profile; the user event still tells ticket-svc (offline)
    return "ready" if await request.app.state.provisioner.provision(event, caller) else "pending"


@router.post("/users", status_code=201, response_model=UserWritten, summary="Create a user (admin)",
             responses=problem_responses(503, _503=SIGN_IN_BUSY))
async def create_user(request: Request, body: UserCreate, caller: Admin) -> dict:
    """Credentials live here; the user's agent profile (ticket-svc, ``/v1/agents/{user id}``:
    teams, skills, capacity) exists when this answers with ``"agent_profile": "ready"`` (offline,
    no teams). ``"pending"``: ticket-svc did not answer in time; the ``user.created`` event
    creates the profile when ticket-svc is back, and ``PUT /v1/agents/{id}`` is a 404 until then."""
    policy.enforce(body.password, email=body.email, min_length=request.app.state.auth.settings.password_min_length)
    password_hash = await request.app.state.auth.hash_password(body.password)
    async with request.app.state.runtime.transaction() as conn:
        row = await repository.insert_user(conn, email=body.email, password_hash=password_hash, role=body.role,
                                           name=body.name)
        if row is None:
            raise Problem(409, "conflict", "User exists", "A user with this e-mail exists.")
        event = users.user_created(row, actor=caller.ref)
        await enqueue(conn, outbox, event)
    return {**_user(row), "agent_profile": await _provisioned(request, event, caller)}


@router.get("/users", response_model=list[UserRead], summary="List users (admins, supervisors)")
async def list_users(request: Request, caller: Caller) -> list[dict]:
    require_user(caller, "admin", "supervisor")
    async with request.app.state.runtime.engine.connect() as conn:
        return [_user(r) for r in await repository.list_users(conn)]


@router.get("/users/me", response_model=UserRead, summary="The signed-in user")
async def me(request: Request, caller: Caller) -> dict:
    require_user(caller)
    async with request.app.state.runtime.engine.connect() as conn:
        row = await repository.user_by_id(conn, uuid.UUID(caller.id))
    if row is None:  # pragma: no cover - the session check found the user a moment ago
        raise Problem(401, "unauthorized", "Unauthorized", "Sign in again.")
    return _user(row)


@router.post("/users/me/password", status_code=204, summary="Change one's own password (ends the other sessions)",
             responses=problem_responses(503, _503=SIGN_IN_BUSY))
async def change_own_password(request: Request, body: PasswordChange, caller: Caller,
                              client_address: ClientAddress) -> Response:
    require_user(caller)
    auth = request.app.state.auth
    async with request.app.state.runtime.engine.connect() as conn:
        row = await repository.user_by_id(conn, uuid.UUID(caller.id))
    await auth.check_login_limits(email=row.email, client_address=client_address)  # a stolen token must not guess
    valid, _ = await auth.check_password(row.password_hash, body.current_password)
    if not valid:
        auth.record_login_failure(email=row.email, client_address=client_address)
        raise Problem(403, "wrong-password", "Wrong password", "The current password is not right.")
    policy.enforce(body.new_password, email=row.email, min_length=auth.settings.password_min_length,
                   field="body.new_password")
    new_hash = await auth.hash_password(body.new_password)
    keep = auth.session_of(request.headers.get("authorization"))
    async with request.app.state.runtime.engine.begin() as conn:
        await repository.set_password_hash(conn, row.id, new_hash)
        await repository.revoke_user_sessions(conn, row.id, keep=keep)
    auth.forget_sessions(user_id=caller.id)
    return Response(status_code=204)


async def _guard_last_admin(conn, user_id: uuid.UUID, values: dict) -> None:  # type: ignore[no-untyped-def]
    """An admin demoted or deactivated must leave at least one active admin behind."""
    if values.get("role", "admin") == "admin" and values.get("active", True):
        return
    admins = await repository.lock_active_admins(conn)
    if admins == [user_id]:
        raise Problem(409, "last-admin", "Last admin",
                      "This is the only active admin: make someone else admin first.")


async def _change_user(request: Request, caller: Principal, user_id: uuid.UUID, values: dict) -> dict:
    """Apply ``values``; a new password or a deactivation ends the user's sessions. A change of
    name, role or state is a new version and a ``user.updated`` in the same transaction."""
    event = None
    async with request.app.state.runtime.transaction() as conn:
        await _guard_last_admin(conn, user_id, values)
        before = await repository.lock_user(conn, user_id)
        if before is None:
            raise Problem(404, "not-found", "User not found", f"No user {user_id}.")
        changes = users.announced_changes(before, values)
        row = await repository.update_user(conn, user_id, values, new_version=bool(changes))
        if changes:
            event = users.user_updated(row, changes, actor=caller.ref)
            await enqueue(conn, outbox, event)
        if "password_hash" in values or values.get("active") is False:
            await repository.revoke_user_sessions(conn, user_id)
    request.app.state.auth.forget_sessions(user_id=str(user_id))
    return {**_user(row), "agent_profile": await _provisioned(request, event, caller)}


@router.patch("/users/{user_id:uuid}", response_model=UserWritten, summary="Rename, change role, deactivate, reset password",
              responses=problem_responses(503, _503=SIGN_IN_BUSY))
async def update_user(request: Request, user_id: uuid.UUID, body: UserPatch, caller: Admin) -> dict:
    if any(v is None for v in body.model_dump(exclude_unset=True).values()):  # password too (the document says so)
        raise Problem(422, "validation-error", "Invalid value", "Fields may be omitted, not set to null.")
    values = body.model_dump(exclude_unset=True, exclude={"password"})
    if body.password is not None:
        async with request.app.state.runtime.engine.connect() as conn:
            target = await repository.user_by_id(conn, user_id)
        if target is None:
            raise Problem(404, "not-found", "User not found", f"No user {user_id}.")
        policy.enforce(body.password, email=target.email, min_length=request.app.state.auth.settings.password_min_length)
        values["password_hash"] = await request.app.state.auth.hash_password(body.password)
    if not values:
        raise Problem(422, "validation-error", "Nothing to change", "Send at least one field.")
    return await _change_user(request, caller, user_id, values)


@router.delete("/users/{user_id:uuid}", status_code=204, summary="Deactivate a user (kept for the audit trail)")
async def delete_user(request: Request, user_id: uuid.UUID, caller: Admin) -> Response:
    """The agent is taken out of routing (docs/ARCHITECTURE.md, "Identity and authorization")."""
    await _change_user(request, caller, user_id, {"active": False})
    return Response(status_code=204)
