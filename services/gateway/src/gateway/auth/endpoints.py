from __future__ import annotations

import uuid

import anyio
from fastapi import APIRouter, Request, Response

from helpdesk_common.identity import require_user
from helpdesk_common.problems import Problem

from ..deps import Admin, Caller
from . import repository, security
from .schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyRead,
    LoginRequest,
    TokenResponse,
    UserCreate,
    UserPatch,
    UserRead,
)

router = APIRouter(prefix="/v1", tags=["auth"])


def _read(row) -> dict:
    return {"id": row.id, "name": row.name, "channel": row.channel, "key_prefix": row.key_prefix,
            "created_at": row.created_at, "revoked_at": row.revoked_at}


@router.post("/auth/login", response_model=TokenResponse, summary="Exchange e-mail and password for a token")
async def login(request: Request, body: LoginRequest) -> dict:
    client_ip = request.client.host if request.client else "?"
    return await request.app.state.auth.login(email=body.email, password=body.password, client_ip=client_ip)


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


@router.post("/users", status_code=201, response_model=UserRead, summary="Create a user (admin)")
async def create_user(request: Request, body: UserCreate, caller: Admin) -> dict:
    """Credentials live here; the agent profile (teams, skills, capacity) is ticket-svc's
    ``PUT /v1/agents/{user id}``."""
    password_hash = await anyio.to_thread.run_sync(security.hash_password, body.password)
    async with request.app.state.runtime.engine.begin() as conn:
        row = await repository.insert_user(conn, email=body.email, password_hash=password_hash, role=body.role,
                                           name=body.name)
    if row is None:
        raise Problem(409, "conflict", "User exists", "A user with this e-mail exists.")
    return _user(row)


@router.get("/users", response_model=list[UserRead], summary="List users (admins, supervisors)")
async def list_users(request: Request, caller: Caller) -> list[dict]:
    require_user(caller, "admin", "supervisor")
    async with request.app.state.runtime.engine.connect() as conn:
        return [_user(r) for r in await repository.list_users(conn)]


@router.patch("/users/{user_id}", response_model=UserRead, summary="Rename, change role, deactivate, reset password")
async def update_user(request: Request, user_id: uuid.UUID, body: UserPatch, caller: Admin) -> dict:
    values = body.model_dump(exclude_unset=True, exclude={"password"})
    if any(v is None for v in values.values()):
        raise Problem(422, "validation-error", "Invalid value", "Fields may be omitted, not set to null.")
    if body.password is not None:
        values["password_hash"] = await anyio.to_thread.run_sync(security.hash_password, body.password)
    if not values:
        raise Problem(422, "validation-error", "Nothing to change", "Send at least one field.")
    async with request.app.state.runtime.engine.begin() as conn:
        row = await repository.update_user(conn, user_id, values)
    if row is None:
        raise Problem(404, "not-found", "User not found", f"No user {user_id}.")
    request.app.state.auth.forget_user(str(user_id))  # this replica at once; others within the cache TTL
    return _user(row)
