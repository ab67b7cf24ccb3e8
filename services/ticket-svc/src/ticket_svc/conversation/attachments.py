"""Attachment limits and metadata.

Content is stored once per checksum (``attachment_blobs``: PostgreSQL bytea, so the embedded
stack needs no object store); a message keeps only metadata pointing at it by storage key.
"""

from __future__ import annotations

import mimetypes
import uuid
from collections.abc import Sequence
from pathlib import PurePosixPath
from typing import Any

from ..channels.inbound import InboundAttachment, InvalidPayload

MAX_ATTACHMENT_BYTES = 25 * 1024 * 1024
MAX_MESSAGE_ATTACHMENT_BYTES = 40 * 1024 * 1024
MAX_ATTACHMENTS = 20
#: executables and scripts a customer could hand an agent to run
REFUSED_EXTENSIONS = frozenset({
    ".exe", ".bat", ".cmd", ".com", ".js", ".jse", ".vbs", ".vbe", ".scr", ".msi", ".msp", ".ps1", ".psm1",
    ".jar", ".hta", ".cpl", ".lnk", ".reg", ".pif", ".wsf", ".dll", ".sh", ".apk",
})
REFUSED_TYPES = frozenset({
    "application/x-msdownload", "application/x-msdos-program", "application/x-ms-installer",
    "application/vnd.microsoft.portable-executable", "application/x-sh", "application/java-archive",
    "application/javascript", "text/javascript", "application/hta",
})


def safe_filename(name: str) -> str:
    """Keep the last path segment, no control characters, bounded length; never empty."""
    base = PurePosixPath(name.replace("\\", "/")).name
    base = "".join(ch for ch in base if ch.isprintable()).strip() or "attachment"
    return base[-255:]


def check(attachments: Sequence[InboundAttachment]) -> None:
    """Raise InvalidPayload naming every attachment that breaks a limit."""
    errors: list[dict[str, str]] = []
    if len(attachments) > MAX_ATTACHMENTS:
        errors.append({"field": "attachments", "message": f"at most {MAX_ATTACHMENTS} attachments"})
    total = 0
    for index, item in enumerate(attachments):
        field = f"attachments[{index}]"
        total += item.size
        suffix = PurePosixPath(safe_filename(item.filename).lower()).suffix
        content_type = (item.content_type or "").split(";")[0].strip().lower()
        if item.size > MAX_ATTACHMENT_BYTES:
            errors.append({"field": field, "message": f"{item.filename}: larger than {MAX_ATTACHMENT_BYTES} bytes"})
        if suffix in REFUSED_EXTENSIONS or content_type in REFUSED_TYPES:
            errors.append({"field": field, "message": f"{item.filename}: executable files are not accepted"})
    if total > MAX_MESSAGE_ATTACHMENT_BYTES:
        errors.append({"field": "attachments", "message": f"more than {MAX_MESSAGE_ATTACHMENT_BYTES} bytes in total"})
    if errors:
        raise InvalidPayload("Attachments refused.", field_errors=errors)


def metadata_of(item: InboundAttachment) -> dict[str, Any]:
    filename = safe_filename(item.filename)
    content_type = (item.content_type or "").split(";")[0].strip().lower() or (
        mimetypes.guess_type(filename)[0] or "application/octet-stream"
    )
    digest = item.sha256
    return {
        "id": str(uuid.uuid4()),
        "filename": filename,
        "content_type": content_type,
        "size": item.size,
        "sha256": digest,
        "storage_key": f"pg:attachment_blobs/{digest}",
        "inline": item.inline,
        "content_id": item.content_id,
    }
