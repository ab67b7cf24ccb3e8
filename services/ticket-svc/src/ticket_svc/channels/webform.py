"""Web forms: ``application/x-www-form-urlencoded`` and ``multipart/form-data`` with files.

The form a company embeds on its site posts straight to intake (through its channel key).
Fields: ``subject`` (required), ``description`` (or ``body``), ``name``, ``email``, ``phone``,
``priority``, ``type``, ``tags`` (comma-separated or repeated), ``custom_fields[<key>]``,
``language``, ``form_submission_id`` (the dedupe key of a resubmission); every file part is
an attachment. Multipart is parsed with python-multipart's streaming parser, part headers
kept, so a file keeps the content type the browser gave it.
"""

from __future__ import annotations

import re
from email.message import Message
from email.utils import collapse_rfc2231_value
from urllib.parse import parse_qsl

from python_multipart.multipart import MultipartParser, parse_options_header

from .inbound import InboundAttachment, InboundMessage, InvalidPayload, Sender

MAX_FILES = 10
MAX_FIELDS = 200
MAX_FIELD_CHARS = 65_536
PRIORITIES = ("low", "normal", "high", "urgent")
_CUSTOM = re.compile(r"^custom_fields\[([a-z][a-z0-9_]{0,63})\]$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PHONE = re.compile(r"^\+?[0-9 ()\-.]{3,32}$")


class _Part:
    __slots__ = ("headers", "data")

    def __init__(self) -> None:
        self.headers: dict[str, str] = {}
        self.data = bytearray()


def _multipart(body: bytes, boundary: bytes) -> list[_Part]:
    parts: list[_Part] = []
    header_field = bytearray()
    header_value = bytearray()

    def on_part_begin() -> None:
        parts.append(_Part())

    def on_part_data(data: bytes, start: int, end: int) -> None:
        parts[-1].data += data[start:end]

    def on_header_field(data: bytes, start: int, end: int) -> None:
        header_field.extend(data[start:end])

    def on_header_value(data: bytes, start: int, end: int) -> None:
        header_value.extend(data[start:end])

    def on_header_end() -> None:
        # latin-1 keeps the raw bytes (browsers send UTF-8 file names unencoded); decoded below
        parts[-1].headers[header_field.decode("latin-1").lower()] = header_value.decode("latin-1")
        header_field.clear()
        header_value.clear()

    parser = MultipartParser(boundary, {
        "on_part_begin": on_part_begin, "on_part_data": on_part_data, "on_header_field": on_header_field,
        "on_header_value": on_header_value, "on_header_end": on_header_end,
    })
    try:
        parser.write(body)
        parser.finalize()
    except Exception as exc:  # python-multipart raises its own errors for broken bodies
        raise InvalidPayload(f"Malformed multipart body: {exc}") from exc
    return parts


def _utf8(raw: str) -> str:
    """Header text was read as latin-1 to keep bytes; browsers send UTF-8."""
    try:
        return raw.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return raw


def _disposition(header: str) -> tuple[str, str | None]:
    """(field name, file name or None) from Content-Disposition, RFC 2231 ``filename*`` included
    (python-multipart's header parser drops it; the stdlib's e-mail parser does not)."""
    holder = Message()
    holder["content-disposition"] = header
    name = holder.get_param("name", header="content-disposition")
    filename = holder.get_filename()
    name_text = _utf8(collapse_rfc2231_value(name)) if name else ""
    if filename is None:
        return name_text, None
    has_extended = "filename*" in header.lower()
    return name_text, filename if has_extended else _utf8(filename)


def _fields_and_files(body: bytes, content_type: str) -> tuple[list[tuple[str, str]], list[InboundAttachment]]:
    kind, params = parse_options_header(content_type)
    if kind == b"application/x-www-form-urlencoded":
        try:
            pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False,
                              max_num_fields=MAX_FIELDS)
        except (UnicodeDecodeError, ValueError) as exc:
            raise InvalidPayload(f"Malformed form body: {exc}") from exc
        return pairs, []
    if kind != b"multipart/form-data" or not params.get(b"boundary"):
        raise InvalidPayload("A web form is application/x-www-form-urlencoded or multipart/form-data with a boundary.")
    fields: list[tuple[str, str]] = []
    files: list[InboundAttachment] = []
    for part in _multipart(body, params[b"boundary"]):
        name, filename = _disposition(part.headers.get("content-disposition", ""))
        if filename is not None:
            if not part.data and not filename:
                continue  # an empty file input
            files.append(InboundAttachment(
                filename=filename or "attachment",
                content_type=part.headers.get("content-type", "application/octet-stream").strip(),
                content=bytes(part.data),
            ))
        else:
            try:
                fields.append((name, part.data.decode("utf-8")))
            except UnicodeDecodeError as exc:
                raise InvalidPayload(f"Field {name!r} is not UTF-8.",
                                     field_errors=[{"field": name, "message": "not UTF-8"}]) from exc
        if len(fields) > MAX_FIELDS:
            raise InvalidPayload(f"At most {MAX_FIELDS} form fields.")
    return fields, files


def parse_webform(body: bytes, content_type: str) -> InboundMessage:
    fields, files = _fields_and_files(body, content_type)
    values: dict[str, str] = {}
    tags: list[str] = []
    custom: dict[str, str] = {}
    errors: list[dict[str, str]] = []
    for name, value in fields:
        value = value.strip()
        if "\x00" in value or len(value) > MAX_FIELD_CHARS:
            errors.append({"field": name, "message": "contains NUL or is too long"})
            continue
        if name in ("tags", "tags[]"):
            tags += [t.strip()[:64] for t in value.split(",") if t.strip()]
        elif match := _CUSTOM.match(name):
            custom[match.group(1)] = value
        else:
            values.setdefault(name, value)
    subject = values.get("subject", "")
    if not subject:
        errors.append({"field": "subject", "message": "is required"})
    email = values.get("email") or None
    if email and not _EMAIL.match(email):
        errors.append({"field": "email", "message": "is not an e-mail address"})
    phone = values.get("phone") or None
    if phone and not _PHONE.match(phone):
        errors.append({"field": "phone", "message": "is not a phone number"})
    priority = values.get("priority") or "normal"
    if priority not in PRIORITIES:
        errors.append({"field": "priority", "message": f"must be one of: {', '.join(PRIORITIES)}"})
    if not (email or phone):
        errors.append({"field": "email", "message": "an e-mail address or a phone number is required"})
    if len(files) > MAX_FILES:
        errors.append({"field": "files", "message": f"at most {MAX_FILES} files"})
    if errors:
        raise InvalidPayload("The form has invalid fields.", field_errors=errors)
    metadata: dict = {"priority": priority, "tags": list(dict.fromkeys(tags))[:50], "custom_fields": custom}
    if values.get("type"):
        metadata["type"] = values["type"][:64]
    return InboundMessage(
        channel="web",
        external_id=(values.get("form_submission_id") or None),
        sender=Sender(name=values.get("name") or None, email=email, phone=phone),
        subject=subject[:500],
        body_text=values.get("description") or values.get("body") or "",
        attachments=tuple(files),
        language=values.get("language") or None,
        metadata=metadata,
    )
