"""Web forms: ``application/x-www-form-urlencoded`` and ``multipart/form-data`` with files.

The form a company embeds on its site posts to intake through its channel bridge. Fields:
``subject`` (required), ``description`` (or ``body``), ``name``, ``email``, ``phone``,
``priority``, ``type``, ``tags`` (comma-separated or repeated), ``custom_fields[<key>]``,
``language``, ``form_submission_id`` (the dedupe key of a double submit), ``kb_suggestion_id`` (the
knowledge-base suggestion the form showed before submitting: kb-svc's deflection); every file part is an
attachment. Unknown fields are ignored, because real forms carry CSRF tokens, submit buttons and
honeypots the help desk has no use for. Every invalid field is reported at once, so the form
can mark all of them in one round trip.

Multipart is parsed with python-multipart's streaming parser (part headers kept, so a file keeps
the content type the browser gave it); urlencoded bodies with the standard library's
``parse_qsl`` in strict UTF-8 mode. Both are limited in fields and files.
"""

from __future__ import annotations

import re
import uuid
from typing import Any
from urllib.parse import parse_qsl, unquote

from python_multipart.multipart import MultipartParser, parse_options_header

from helpdesk_common.validation import EMAIL_PATTERN

from .inbound import InboundAttachment, InboundMessage, InvalidPayload, Sender
from .phone import check_number, normalise_number

MAX_BYTES = 50 * 1024 * 1024
MAX_FILES = 10
MAX_FIELDS = 200
MAX_FIELD_CHARS = 65_536
MAX_SUBJECT = 500
MAX_TAGS = 50
MAX_TAG_CHARS = 64
PRIORITIES = ("low", "normal", "high", "urgent")
_CUSTOM = re.compile(r"custom_fields\[([^\]]*)\]")
_CUSTOM_KEY = re.compile(r"[a-z][a-z0-9_]{0,63}")
_EMAIL = re.compile(EMAIL_PATTERN)
_SUGGESTION_ID = re.compile(r"[0-9A-Fa-f]{8}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{12}")
_LANGUAGE = re.compile(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*")
#: RFC 5987 ext-value: charset'language'percent-encoded
_EXT_VALUE = re.compile(r"""filename\*\s*=\s*"?([A-Za-z0-9!#$%&+^_`{}~-]+)'[^']*'([^";\s]*)"?""", re.IGNORECASE)


class _Part:
    __slots__ = ("headers", "data")

    def __init__(self) -> None:
        self.headers: dict[str, str] = {}
        self.data = bytearray()


def _multipart(body: bytes, boundary: bytes) -> list[_Part]:
    """Split a multipart body into parts with raw headers; python-multipart does the framing."""
    parts: list[_Part] = []
    header_field = bytearray()
    header_value = bytearray()

    def on_part_begin() -> None:
        if len(parts) >= MAX_FIELDS + MAX_FILES:
            raise InvalidPayload(f"At most {MAX_FIELDS} fields and {MAX_FILES} files.")
        parts.append(_Part())

    def on_part_data(data: bytes, start: int, end: int) -> None:
        parts[-1].data += data[start:end]

    def on_header_field(data: bytes, start: int, end: int) -> None:
        header_field.extend(data[start:end])

    def on_header_value(data: bytes, start: int, end: int) -> None:
        header_value.extend(data[start:end])

    def on_header_end() -> None:
        # latin-1 keeps the raw bytes (browsers send UTF-8 file names unencoded); decoded later
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
    except InvalidPayload:
        raise
    except Exception as exc:  # python-multipart raises its own error classes for broken bodies
        raise InvalidPayload(f"Malformed multipart body: {exc}") from exc
    return parts


def _utf8(raw: bytes) -> str:
    """Header bytes as browsers mean them (UTF-8), falling back to Latin-1 for old clients."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _basename(filename: str) -> str:
    """Old browsers and some HTTP libraries send the client's full path; keep the last part."""
    return re.split(r"[\\/]", filename)[-1].strip()


def _disposition(header: str) -> tuple[str, str | None]:
    """(field name, file name or None) of a part.

    python-multipart parses the header and, following RFC 7578 section 4.2, ignores the RFC 5987
    ``filename*`` form. Some clients (.NET's HttpClient, scripts using requests with non-ASCII
    names) send a useless or RFC 2047-encoded plain ``filename`` next to a correct ``filename*``,
    so ``filename*`` wins when it is present and decodes.
    """
    _, params = parse_options_header(header.encode("latin-1"))
    name = _utf8(params.get(b"name", b""))
    filename: str | None = None
    if (ext := _EXT_VALUE.search(header)) is not None:
        try:
            filename = unquote(ext.group(2), encoding=ext.group(1), errors="strict")
        except (LookupError, UnicodeDecodeError):
            filename = None
    if filename is None and b"filename" in params:
        filename = _utf8(params[b"filename"])
    if filename is None and ext is not None:
        filename = ""  # a file part whose only name did not decode
    return name, None if filename is None else _basename(filename)


def _urlencoded(body: bytes) -> list[tuple[str, str]]:
    try:
        # browsers percent-encode everything; scripts sometimes send raw UTF-8, which is fine too
        return parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=MAX_FIELDS,
                         encoding="utf-8", errors="strict")
    except UnicodeDecodeError as exc:
        raise InvalidPayload("The form is not UTF-8.") from exc
    except ValueError as exc:  # too many fields
        raise InvalidPayload(f"At most {MAX_FIELDS} form fields.") from exc


def _fields_and_files(body: bytes, content_type: str) -> tuple[list[tuple[str, str]], list[InboundAttachment]]:
    """The form's (name, value) pairs in order, and its files."""
    if len(body) > MAX_BYTES:
        raise InvalidPayload("The form is too large.")
    try:
        kind, params = parse_options_header(content_type)
    except UnicodeEncodeError as exc:  # a Content-Type outside Latin-1 cannot be a real header
        raise InvalidPayload("The Content-Type header is not valid.") from exc
    if kind == b"application/x-www-form-urlencoded":
        return _urlencoded(body), []
    if kind != b"multipart/form-data" or not params.get(b"boundary"):
        raise InvalidPayload("A web form is application/x-www-form-urlencoded or multipart/form-data with a boundary.")
    fields: list[tuple[str, str]] = []
    files: list[InboundAttachment] = []
    errors: list[dict[str, str]] = []
    for part in _multipart(body, params[b"boundary"]):
        name, filename = _disposition(part.headers.get("content-disposition", ""))
        if filename is not None:
            if not part.data and not filename:
                continue  # a file input left empty
            content_type = part.headers.get("content-type", "").strip().lower() or "application/octet-stream"
            files.append(InboundAttachment(filename=filename or "attachment", content_type=content_type,
                                           content=bytes(part.data)))
            continue
        try:
            fields.append((name, part.data.decode("utf-8")))
        except UnicodeDecodeError:
            errors.append({"field": name or "(unnamed)", "message": "is not UTF-8 text"})
    if len(fields) > MAX_FIELDS:
        raise InvalidPayload(f"At most {MAX_FIELDS} form fields.")
    if errors:
        raise InvalidPayload("The form has invalid fields.", field_errors=errors)
    return fields, files


class _Form:
    """The recognised fields, gathered with their errors before anything is decided."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}
        self.tags: list[str] = []
        self.custom: dict[str, str] = {}
        self.errors: list[dict[str, str]] = []

    def error(self, field: str, message: str, code: str | None = None) -> None:
        self.errors.append({"field": field, "message": message, **({"code": code} if code else {})})

    def add(self, name: str, value: str) -> None:
        value = value.strip()
        if "\x00" in value or "\x00" in name:
            self.error(name.replace("\x00", "\\x00"), "contains a NUL character")
        elif len(value) > MAX_FIELD_CHARS:
            self.error(name, f"is longer than {MAX_FIELD_CHARS} characters")
        elif name in ("tags", "tags[]"):
            self.tags += [t.strip() for t in value.split(",") if t.strip()]
        elif (match := _CUSTOM.fullmatch(name)) is not None:
            if _CUSTOM_KEY.fullmatch(match.group(1)):
                self.custom[match.group(1)] = value
            else:
                self.error(name, "custom field keys are lower-case letters, digits and _, starting with a letter")
        else:
            self.values.setdefault(name, value)  # a repeated scalar field: the first one counts

    def get(self, name: str) -> str | None:
        return self.values.get(name) or None


def _check(form: _Form, files: list[InboundAttachment]) -> None:
    subject = form.get("subject")
    if subject is None:
        form.error("subject", "is required")
    elif len(subject) > MAX_SUBJECT:
        form.error("subject", f"is longer than {MAX_SUBJECT} characters")
    email, phone = form.get("email"), form.get("phone")
    if email and not _EMAIL.fullmatch(email):
        form.error("email", "is not an e-mail address")
    if phone:
        try:
            check_number(phone)
        except ValueError as exc:
            form.error("phone", str(exc))
    if not (email or phone):
        form.error("email", "an e-mail address or a phone number is required", "cross_field")
    if (form.get("priority") or "normal").lower() not in PRIORITIES:
        form.error("priority", f"must be one of: {', '.join(PRIORITIES)}")
    if len(form.get("type") or "") > 64:
        form.error("type", "is longer than 64 characters")
    if (language := form.get("language")) and not _LANGUAGE.fullmatch(language):
        form.error("language", "is not a language tag such as zh-CN or en")
    if len(set(form.tags)) > MAX_TAGS:
        form.error("tags", f"at most {MAX_TAGS} tags")
    if any(len(tag) > MAX_TAG_CHARS for tag in form.tags):
        form.error("tags", f"a tag is at most {MAX_TAG_CHARS} characters")
    if len(files) > MAX_FILES:
        form.error("files", f"at most {MAX_FILES} files")
    if len(form.get("form_submission_id") or "") > 128:
        form.error("form_submission_id", "is longer than 128 characters")
    if (suggestion := form.get("kb_suggestion_id")) is not None and suggestion_id(suggestion) is None:
        form.error("kb_suggestion_id", "is not a suggestion id (a UUID)")


def suggestion_id(value: str) -> uuid.UUID | None:
    """The knowledge-base suggestion id a form carries (a UUID, surrounding blanks ignored)."""
    value = value.strip()
    return uuid.UUID(value) if _SUGGESTION_ID.fullmatch(value) else None


def parse_webform(body: bytes, content_type: str) -> InboundMessage:
    """A submitted form -> the opening message of a new ticket (priority, type, tags and custom
    fields travel in ``metadata``, where intake picks them up for the ticket)."""
    fields, files = _fields_and_files(body, content_type)
    form = _Form()
    for name, value in fields:
        form.add(name, value)
    _check(form, files)
    if form.errors:
        raise InvalidPayload("The form has invalid fields.", field_errors=form.errors)
    metadata: dict[str, Any] = {
        "priority": (form.get("priority") or "normal").lower(),
        "tags": list(dict.fromkeys(form.tags)),
        "custom_fields": form.custom,
    }
    if form.get("type"):
        metadata["type"] = form.get("type")
    if (suggestion := form.get("kb_suggestion_id")) is not None and suggestion.strip():
        metadata["kb_suggestion_id"] = str(suggestion_id(suggestion))
    phone = form.get("phone")
    return InboundMessage(
        channel="web",
        external_id=form.get("form_submission_id"),
        sender=Sender(name=form.get("name"), email=form.get("email"),
                      phone=normalise_number(phone) if phone else None),
        subject=form.get("subject"),
        body_text=form.get("description") or form.get("body") or "",
        attachments=tuple(files),
        language=form.get("language"),
        metadata=metadata,
    )
