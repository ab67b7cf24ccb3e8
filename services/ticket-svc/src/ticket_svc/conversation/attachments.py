"""Attachment limits and metadata.

Content is stored once per checksum (``attachment_blobs``: PostgreSQL bytea, so the embedded
stack needs no object store); a message keeps only metadata pointing at it by storage key.
"""

from __future__ import annotations

import mimetypes
import re
import uuid
from collections.abc import Sequence
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import quote

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


#: ``type/subtype`` with RFC 6838 restricted names, lower case, no parameters: nothing that can
#: break or extend a response header (CR/LF) or fail to encode in one (non-Latin-1)
_MEDIA_TYPE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,126}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}")
#: RFC 5987 attr-char beyond letters and digits (quote() keeps "_.-~" anyway)
_ATTR_CHARS = "!#$&+-.^_`|~"


def safe_content_type(content_type: str | None, filename: str) -> str:
    r"""The declared media type without parameters when it is a well-formed ``type/subtype``,
    else the one the file name suggests, else ``application/octet-stream``.

    Channels pass on whatever a sender declared (a MIME part's header, a JSON field), and the
    type is echoed in a download header: ``图片/png`` could not be encoded there (a 500) and
    ``text/plain\r\nSet-Cookie: ...`` would have injected a header."""
    essence = (content_type or "").split(";")[0].strip().lower()
    if _MEDIA_TYPE.fullmatch(essence):
        return essence
    return mimetypes.guess_type(filename)[0] or "application/octet-stream"


def content_disposition(filename: str) -> str:
    r"""``attachment`` with the name twice (RFC 6266): ``filename*`` in UTF-8 percent-encoding
    (RFC 5987/8187) for every current client, and an ASCII ``filename`` quoted-string for old
    ones, with ``\`` and ``"`` escaped and other characters replaced by ``_``. The name goes
    through ``safe_filename`` again, so a row stored before that existed cannot carry CR/LF."""
    name = safe_filename(filename)
    fallback = "".join(ch if " " <= ch <= "~" else "_" for ch in name)
    fallback = fallback.replace("\\", "\\\\").replace('"', '\\"')
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe=_ATTR_CHARS)}"


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
