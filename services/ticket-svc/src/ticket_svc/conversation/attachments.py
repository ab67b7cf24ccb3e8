"""Attachment limits and metadata.

The limits, names, media types and download headers are shared with kb-svc
(``helpdesk_common.attachments``). Content is stored once per checksum (``attachment_blobs``:
PostgreSQL bytea, so the embedded stack needs no object store); a message keeps only metadata
pointing at it by storage key.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from pathlib import PurePosixPath
from typing import Any

from helpdesk_common.attachments import (MAX_ATTACHMENT_BYTES, MAX_ATTACHMENTS, MAX_MESSAGE_ATTACHMENT_BYTES,
                                        REFUSED_EXTENSIONS, REFUSED_TYPES, content_disposition, safe_content_type,
                                        safe_filename)

from ..channels.inbound import InboundAttachment, InvalidPayload

__all__ = ["MAX_ATTACHMENT_BYTES", "MAX_ATTACHMENTS", "MAX_MESSAGE_ATTACHMENT_BYTES", "REFUSED_EXTENSIONS",
           "REFUSED_TYPES", "check", "content_disposition", "metadata_of", "safe_content_type", "safe_filename"]


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
        content_type = safe_content_type(item.content_type, item.filename)
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
    content_type = safe_content_type(item.content_type, filename)
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
