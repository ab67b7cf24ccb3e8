"""Data subject requests (admins only): ``/v1/privacy/requests``."""

from __future__ import annotations

import asyncio
import uuid
from typing import Annotated, Literal

import httpx
from fastapi import APIRouter, Query, Request

from helpdesk_common.app import runtime_of
from helpdesk_common.identity import IDENTITY_HEADER, CurrentPrincipal, require_user
from helpdesk_common.openapi import problem_responses
from helpdesk_common.pagination import DEFAULT_LIMIT, MAX_LIMIT
from helpdesk_common.problems import Problem
from helpdesk_common.responses import JSONBytesResponse

from .settings import get_privacy_settings as get_settings
from ..idempotency import service as idempotency
from ..idempotency.service import IdempotencyKey
from . import service
from .schemas import PrivacyRequestDetail, PrivacyRequestIn, PrivacyRequestPage, PrivacyRequestRead, SuspendIn

router = APIRouter(prefix="/v1/privacy", tags=["privacy"])


def _admin(principal) -> None:  # type: ignore[no-untyped-def]
    require_user(principal)
    service.require_admin(principal)


@router.post("/requests", response_model=PrivacyRequestRead, status_code=202,
             responses=problem_responses(404, _404="No such customer."),
             summary="Ask for a customer's data export or erasure (admins); the open request of the same "
                     "customer and kind is answered again")
async def create_request(request: Request, body: PrivacyRequestIn, principal: CurrentPrincipal,
                         idempotency_key: IdempotencyKey = None) -> JSONBytesResponse:
    _admin(principal)
    settings = get_settings()
    async with runtime_of(request).raw_transaction() as conn:
        found = await idempotency.replay_or_claim(conn, caller=principal.ref, key=idempotency_key,
                                                  scope="privacy.request", body=body)
        replayed = found is not None
        if found is None:
            found, _ = await service.create(conn, principal=principal, customer_id=body.customer_id, kind=body.kind,
                                            services=tuple(settings.services))
            await idempotency.remember(conn, caller=principal.ref, key=idempotency_key, response=found)
    headers = {"Location": f"/v1/privacy/requests/{found['id']}"}
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return JSONBytesResponse(found, status_code=202, headers=headers)


@router.get("/requests", response_model=PrivacyRequestPage, summary="Data subject requests, newest first (admins)")
async def list_requests(request: Request, principal: CurrentPrincipal,
                        state: Literal["pending", "in_progress", "suspended", "completed"] | None = None,
                        cursor: Annotated[str | None, Query(max_length=512)] = None,
                        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT) -> JSONBytesResponse:
    _admin(principal)
    async with runtime_of(request).raw_transaction() as conn:
        return JSONBytesResponse(await service.list_requests(conn, state=state, cursor=cursor, limit=limit))


@router.get("/requests/{request_id}", response_model=PrivacyRequestDetail,
            summary="One request: its state per service and its audit (admins)")
async def get_request(request: Request, request_id: uuid.UUID, principal: CurrentPrincipal) -> JSONBytesResponse:
    _admin(principal)
    async with runtime_of(request).raw_transaction() as conn:
        return JSONBytesResponse(await service.get(conn, request_id))


@router.post("/requests/{request_id}/suspend", response_model=PrivacyRequestRead,
             summary="Suspend a request that must wait (PIPL Art. 47, e.g. a legal hold); the customer stays "
                     "restricted (admins)")
async def suspend_request(request: Request, request_id: uuid.UUID, principal: CurrentPrincipal,
                          body: SuspendIn | None = None) -> JSONBytesResponse:
    _admin(principal)
    async with runtime_of(request).raw_transaction() as conn:
        return JSONBytesResponse(await service.change(conn, principal=principal, request_id=request_id,
                                                      action="suspend", reason=body.reason if body else None))


@router.post("/requests/{request_id}/resume", response_model=PrivacyRequestRead,
             summary="Resume a suspended request (admins)")
async def resume_request(request: Request, request_id: uuid.UUID, principal: CurrentPrincipal) -> JSONBytesResponse:
    _admin(principal)
    async with runtime_of(request).raw_transaction() as conn:
        return JSONBytesResponse(await service.change(conn, principal=principal, request_id=request_id,
                                                      action="resume"))


async def _remote_export(client: httpx.AsyncClient, *, url: str, customer_id: uuid.UUID, identity: str) -> dict:
    answer = await client.get(f"{url.rstrip('/')}/v1/privacy/customers/{customer_id}/export",
                              headers={IDENTITY_HEADER: identity})
    answer.raise_for_status()
    return answer.json()


@router.get("/requests/{request_id}/bundle", responses=problem_responses(409),
            summary="The export's bundle (JSON): everything every service holds on the customer (admins); "
                    "assembled at the first download, kept for CUSTOMER_PRIVACY_BUNDLE_TTL_S, every download audited")
async def download_bundle(request: Request, request_id: uuid.UUID, principal: CurrentPrincipal) -> JSONBytesResponse:
    _admin(principal)
    settings = get_settings()
    runtime = runtime_of(request)
    async with runtime.raw_transaction() as conn:
        row = await service.get(conn, request_id)
        if row["kind"] != "export":
            raise Problem(409, "not-an-export", "Not an export", "Only an export request has a bundle.")
        if row["state"] == "suspended":
            raise Problem(409, "suspended", "Suspended", "The request is suspended.")
        local = await service.local_export(conn, customer_id=row["customer_id"])
    identity = request.headers.get(IDENTITY_HEADER, "")
    urls = dict(settings.export_urls)
    failed: list[str] = []
    bundle: dict = {"customer_id": str(row["customer_id"]), "request_id": str(request_id),
                    "services": {"customer-svc": local}}
    async with httpx.AsyncClient(timeout=settings.export_timeout_s) as client:
        results = await asyncio.gather(*(_remote_export(client, url=url, customer_id=row["customer_id"],
                                                        identity=identity) for url in urls.values()),
                                       return_exceptions=True)
    for name, result in zip(urls, results, strict=True):
        if isinstance(result, BaseException):
            failed.append(name)
            bundle["services"][name] = {"error": "unavailable"}
        else:
            bundle["services"][name] = result
    bundle["complete"] = not failed
    async with runtime.raw_transaction() as conn:
        await service.finish_export(conn, principal=principal, request_id=request_id, bundle=bundle,
                                    ttl_s=settings.bundle_ttl_s, failed=failed)
    return JSONBytesResponse(bundle, headers={"Cache-Control": "no-store",
                                              "Content-Disposition": f'attachment; filename="export-{request_id}.json"'})
