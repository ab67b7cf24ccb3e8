"""Reports as downloads: the same rows as CSV (streamed) or XLSX, formula-safe (helpdesk_common.exports)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from fastapi.responses import Response, StreamingResponse

from helpdesk_common.exports import CSV_MEDIA_TYPE, XLSX_MEDIA_TYPE, csv_chunks, xlsx_bytes
from helpdesk_common.openapi import problem_responses

Format = Literal["json", "csv", "xlsx"]
FORMATS: tuple[str, ...] = ("json", "csv", "xlsx")


def _disposition(filename: str) -> str:
    # report names are ASCII built here (never user text), so the plain form suffices
    return f'attachment; filename="{filename}"'


def download(fmt: str, *, name: str, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> Response:
    """A ``name.csv`` or ``name.xlsx`` attachment of ``rows`` under ``header``."""
    headers = {"content-disposition": _disposition(f"{name}.{fmt}"), "x-content-type-options": "nosniff",
               "cache-control": "no-store"}
    if fmt == "csv":
        return StreamingResponse(csv_chunks(header, rows), media_type=CSV_MEDIA_TYPE, headers=headers)
    return Response(xlsx_bytes(header, rows, sheet_title=name[:31]), media_type=XLSX_MEDIA_TYPE, headers=headers)


#: the download media types in the OpenAPI document (``format=csv|xlsx``), beside the JSON model
DOWNLOAD_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {"schema": {"type": "string"}},
                      XLSX_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}},
          "description": "JSON, or with format=csv|xlsx the same rows as a download"},
    # a team or agent outside the caller's scope (or none at all): access.py answers as if it did not
    # exist (found by the agent's schemathesis run: tests/e2e/test_schemathesis_roles.py)
    **problem_responses(404, _404="No such team or agent in the caller's scope"),
}
