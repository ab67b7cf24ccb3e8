"""Import jobs: supervisors and admins upload a file, then follow the job and read its report."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson
from fastapi import APIRouter, File, Form, Request, UploadFile
from pydantic import BaseModel
from starlette.responses import StreamingResponse

from helpdesk_common.app import runtime_of
from helpdesk_common.identity import CurrentPrincipal, Principal
from helpdesk_common.problems import Problem
from helpdesk_common.responses import JSONBytesResponse
from helpdesk_common.validation import text_problem

from ..orders.schemas import SOURCE_PATTERN
from . import files, repository
from .report import csv_lines

router = APIRouter(prefix="/v1/imports", tags=["imports"])
WRITE_ROLES = ("admin", "supervisor")
#: errors shown inline by GET /v1/imports/{id}; all of them are in errors.csv
ERRORS_SHOWN = 1000
_CHUNK = 1 << 20


class ImportCreated(BaseModel):
    id: uuid.UUID


class ImportError_(BaseModel):
    row: int
    column: str
    message: str


class ImportRead(BaseModel):
    id: uuid.UUID
    kind: str
    status: Literal["queued", "running", "completed", "failed"]
    filename: str | None
    rows_total: int | None
    rows_processed: int
    rows_ok: int
    rows_failed: int
    failure: str | None
    errors: list[ImportError_]
    errors_truncated: bool
    created_at: Any
    started_at: Any
    finished_at: Any


def require_importer(principal: Principal) -> None:
    if not principal.has_role(*WRITE_ROLES):
        raise Problem(403, "forbidden", "Forbidden", "Only supervisors and admins import.")


def _invalid(field: str, message: str) -> Problem:
    return Problem(422, "validation-error", "Validation failed", f"{field}: {message}",
                   errors=[{"field": field, "message": message, "code": "cross_field"}])


def parse_mapping(kind: str, text: str | None) -> dict[str, str]:
    if not text:
        return {}
    try:
        mapping = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise _invalid("body.mapping", "must be a JSON object {\"<file column>\": \"<field>\"}") from None
    if not isinstance(mapping, dict) or len(mapping) > 100 or not all(
            isinstance(k, str) and isinstance(v, str) and len(k) <= 200 and text_problem(k) is None
            for k, v in mapping.items()):
        raise _invalid("body.mapping", "must be a JSON object of at most 100 column names to field names")
    unknown = files.check_mapping(kind, mapping)
    if unknown:
        raise _invalid("body.mapping", f"not fields of {kind}: {', '.join(unknown[:10])} "
                                       f"(fields: {', '.join(files.FIELDS[kind])})")
    return mapping


async def read_capped(upload: UploadFile, limit: int) -> bytes:
    parts, size = [], 0
    while chunk := await upload.read(_CHUNK):
        size += len(chunk)
        if size > limit:
            raise Problem(413, "payload-too-large", "Payload too large", f"The file exceeds {limit} bytes.")
        parts.append(chunk)
    return b"".join(parts)


@router.post("", response_model=ImportCreated, status_code=202,
             summary="Import customers, organisations or orders from .xlsx or .csv (supervisors and admins)")
async def create_import(
    request: Request, principal: CurrentPrincipal,
    file: Annotated[UploadFile, File(description=".xlsx or .csv (UTF-8 with or without BOM, or GBK/GB18030)")],
    kind: Annotated[Literal["customers", "organizations", "orders"], Form()],
    mapping: Annotated[str | None, Form(max_length=20_000, description='JSON {"<file column>": "<field>"}')] = None,
    source: Annotated[str, Form(pattern=SOURCE_PATTERN, description="the system the external ids belong to")] = "api",
    time_zone: Annotated[str, Form(max_length=64, description="how times without an offset are read")] = "UTC",
) -> JSONBytesResponse:
    require_importer(principal)
    columns = parse_mapping(kind, mapping)
    try:
        ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise _invalid("body.time_zone", "must be an IANA time zone such as Asia/Shanghai") from None
    settings = request.app.state.settings
    content = await read_capped(file, settings.import_max_bytes)
    if not content:
        raise _invalid("body.file", "is empty")
    try:
        fmt = files.detect_format(file.filename, content[:8])
    except files.FileError as exc:
        raise _invalid("body.file", str(exc)) from None
    import_id = uuid.uuid4()
    async with runtime_of(request).raw_transaction() as conn:
        await repository.insert(conn, {
            "id": import_id, "kind": kind, "source": source, "time_zone": time_zone,
            "filename": files.clean_text(file.filename or "", 255) or None, "format": fmt, "mapping": columns, "content": content,
            "created_by": principal.ref, "created_by_role": principal.role,
        })
    worker = getattr(request.app.state, "import_worker", None)
    if worker is not None:
        worker.wake.set()
    return JSONBytesResponse({"id": import_id}, status_code=202, headers={"Location": f"/v1/imports/{import_id}"})


def to_read(job: Any, errors: list[Any], truncated: bool) -> dict[str, Any]:
    return {
        "id": job["id"], "kind": job["kind"], "status": job["status"], "filename": job["filename"],
        "rows_total": job["rows_total"], "rows_processed": job["rows_ok"] + job["rows_failed"],
        "rows_ok": job["rows_ok"], "rows_failed": job["rows_failed"], "failure": job["failure"],
        "errors": [{"row": e["row"], "column": e["column"], "message": e["message"]} for e in errors],
        "errors_truncated": truncated, "created_at": job["created_at"], "started_at": job["started_at"],
        "finished_at": job["finished_at"],
    }


async def _job(conn: Any, import_id: uuid.UUID) -> Any:
    job = await repository.get(conn, import_id)
    if job is None:
        raise Problem(404, "not-found", "Import not found", f"No import {import_id}.")
    return job


@router.get("/{import_id}", response_model=ImportRead,
            summary=f"An import's status, progress and first {ERRORS_SHOWN} row errors")
async def get_import(request: Request, import_id: uuid.UUID, principal: CurrentPrincipal) -> JSONBytesResponse:
    require_importer(principal)
    async with runtime_of(request).raw_connection() as conn:
        job = await _job(conn, import_id)
        errors = await repository.errors(conn, import_id, limit=ERRORS_SHOWN + 1)
    return JSONBytesResponse(to_read(job, errors[:ERRORS_SHOWN], len(errors) > ERRORS_SHOWN))


@router.get("/{import_id}/errors.csv", summary="Every row error of an import as CSV (row, column, message)",
            response_class=StreamingResponse, responses={200: {"content": {"text/csv": {}}}})
async def import_errors_csv(request: Request, import_id: uuid.UUID, principal: CurrentPrincipal) -> StreamingResponse:
    require_importer(principal)
    runtime = runtime_of(request)
    async with runtime.raw_connection() as conn:
        await _job(conn, import_id)

    async def body() -> AsyncIterator[bytes]:
        async with runtime.raw_connection() as conn:
            yield csv_lines([("row", "column", "message")], bom=True)
            async for batch in repository.error_batches(conn, import_id):
                yield csv_lines([(r["row"], r["column"], r["message"]) for r in batch])

    return StreamingResponse(body(), media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="import-{import_id}-errors.csv"',
        "X-Content-Type-Options": "nosniff"})
