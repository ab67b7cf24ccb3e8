from __future__ import annotations

import uuid

from fastapi import APIRouter, Request, Response

from ..deps import Admin
from . import repository
from .schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyRead, LoginRequest, TokenResponse

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
