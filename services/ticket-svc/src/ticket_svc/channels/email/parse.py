"""``parse_email``: one raw RFC 5322 message in, one ``InboundMessage`` (or ``Ignored``) out.

The stdlib parser (``policy=email.policy.default``) gives us the MIME tree; everything we read
from it we read *raw* (``raw_items()``, undecoded payloads) and decode ourselves with the rules
in ``decode``, because the stdlib replaces characters of mislabelled Chinese mail, and its
header objects can raise on the malformed headers real mail is full of. The function is pure:
no I/O, no clock, so the same bytes always give the same result (that is what lets intake
dedupe a redelivered message with no Message-ID).
"""

from __future__ import annotations

import email.policy
import hashlib
import mimetypes
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.message import Message
from email.parser import BytesParser
from email.utils import parsedate_to_datetime
from typing import Any

from ..inbound import Ignored, InboundAttachment, InboundMessage, InvalidPayload, Sender
from .classify import classify
from .decode import decode_bytes, decode_header, message_ids, parse_address_list, parse_mime_header, parse_sender, unfold
from .html_text import cid_references, html_to_text
from .language import guess_language
from .quotes import is_forward, strip_quoted

#: Headers of which at least one must be present for the bytes to count as an e-mail.
_CORE_HEADERS = frozenset({
    "from", "sender", "to", "cc", "subject", "date", "message-id", "received", "return-path", "mime-version",
    "content-type", "reply-to", "delivered-to", "in-reply-to", "references",
})
_TICKET_HINT = re.compile(r"[\[［【]\s*(?:ticket|工单|工單)?\s*[#＃]\s*([0-9０-９]{1,9})\s*[\]］】]", re.IGNORECASE)
_SIGNATURE_TYPES = {"application/pgp-signature", "application/pkcs7-signature", "application/x-pkcs7-signature"}
_MAX_DEPTH = 40


@dataclass
class _Leaf:
    """A non-body MIME part on its way to becoming an ``InboundAttachment``."""

    content_type: str
    disposition: str
    filename: str | None
    content_id: str | None
    content: bytes


@dataclass
class _Collected:
    plain: list[str] = field(default_factory=list)
    html: list[str] = field(default_factory=list)
    leaves: list[_Leaf] = field(default_factory=list)

    def extend(self, other: _Collected) -> None:
        self.plain += other.plain
        self.html += other.html
        self.leaves += other.leaves


def _load(raw: bytes) -> Message:
    try:
        return BytesParser(policy=email.policy.default).parsebytes(raw)
    except Exception:  # noqa: BLE001 - the stdlib parser has raised on hostile input before
        try:
            return BytesParser(policy=email.policy.compat32).parsebytes(raw)
        except Exception as exc:  # noqa: BLE001
            raise InvalidPayload("The body is not an RFC 5322 message.") from exc


def _headers(part: Message) -> dict[str, list[str]]:
    """Raw header values by lower-cased name, in order (raw: no header objects, no decoding)."""
    found: dict[str, list[str]] = {}
    for name, value in part.raw_items():
        found.setdefault(str(name).strip().lower(), []).append(str(value))
    return found


def _first(headers: dict[str, list[str]], name: str) -> str | None:
    values = headers.get(name)
    return values[0] if values else None


def _content_type(headers: dict[str, list[str]]) -> tuple[str, dict[str, str]]:
    ctype, params = parse_mime_header(_first(headers, "content-type"))
    return (ctype if re.fullmatch(r"[a-z0-9!#$&.+^_-]+/[a-z0-9!#$&.+^_-]+", ctype) else "text/plain"), params


def _payload(part: Message) -> bytes:
    """The part's raw content with its transfer encoding undone (stdlib: lenient base64 / QP).

    ``get_payload(decode=True)`` is the only stdlib accessor that hands back the original
    bytes of an 8-bit part; without ``decode`` it would decode them with the declared charset
    and replace what that charset lacks.
    """
    try:
        data = part.get_payload(decode=True)
    except Exception:  # noqa: BLE001 - a hostile Content-Transfer-Encoding header must not escape
        data = None
    return data if isinstance(data, bytes) else b""


def _text(data: bytes, params: dict[str, str]) -> str:
    """Decode a text part and undo format=flowed soft line breaks (RFC 3676)."""
    text = decode_bytes(data, params.get("charset")).replace("\r\n", "\n").replace("\r", "\n")
    if params.get("format", "").lower() != "flowed":
        return text
    delsp = params.get("delsp", "").lower() == "yes"
    out: list[str] = []
    carry = ""
    for line in text.split("\n"):
        if line.startswith(" "):
            line = line[1:]  # space-stuffing
        if line.endswith(" ") and line.rstrip() != "--":
            carry += line[:-1] if delsp else line
            continue
        out.append(carry + line)
        carry = ""
    if carry:
        out.append(carry)
    return "\n".join(out)


def _serialise(inner: Message) -> bytes:
    for policy in (email.policy.default, email.policy.compat32):
        try:
            return inner.as_bytes(policy=policy)
        except Exception:  # noqa: BLE001 - refolding hostile headers can fail; try the next policy
            continue
    return b""


def _children(part: Message) -> list | None:
    """The sub-parts of a multipart (or message/*) part, None for a leaf.

    ``get_payload()`` on an 8-bit leaf decodes it with the declared charset, and a hostile
    charset parameter (``charset="\\x00ISO-8859-1"``) made that raise ValueError, a 500 at intake;
    leaves are read by ``_payload`` instead."""
    return part.get_payload() if part.is_multipart() else None


def _collect(part: Message, depth: int = 0) -> _Collected:
    """Body candidates and attachment parts of a MIME (sub)tree."""
    result = _Collected()
    if depth > _MAX_DEPTH:
        return result
    headers = _headers(part)
    ctype, params = _content_type(headers)
    disposition, disposition_params = parse_mime_header(_first(headers, "content-disposition"))
    disposition = disposition.split()[0] if disposition.split() else ""
    filename = disposition_params.get("filename") or params.get("name") or None
    payload = _children(part)

    if isinstance(payload, list):
        if ctype.startswith("message/"):
            inner = payload[0] if payload and isinstance(payload[0], Message) else None
            if inner is not None and ctype in ("message/rfc822", "message/global"):
                subject = decode_header(_first(_headers(inner), "subject"))
                name = filename or (re.sub(r"[\\/:*?\"<>|]+", "_", subject)[:100] or "message") + ".eml"
                result.leaves.append(_Leaf("message/rfc822", disposition or "attachment", name, None,
                                           _serialise(inner)))
            return result
        children = [child for child in payload if isinstance(child, Message)]
        if ctype == "multipart/signed" and len(children) > 1:
            children = [children[0]] + [c for c in children[1:] if _content_type(_headers(c))[0] not in _SIGNATURE_TYPES]
        collected = [_collect(child, depth + 1) for child in children]
        if ctype == "multipart/alternative":
            with_plain = [c for c in collected if any(t.strip() for t in c.plain)]
            with_html = [c for c in collected if c.html]
            result.plain = with_plain[0].plain if with_plain else []
            result.html = with_html[-1].html if with_html else []
            for c in collected:
                result.leaves += c.leaves
        else:
            for c in collected:
                result.extend(c)
        return result

    data = _payload(part)
    is_body = ctype in ("text/plain", "text/html") and disposition != "attachment" and not filename
    if is_body:
        (result.plain if ctype == "text/plain" else result.html).append(_text(data, params))
        return result
    if not data and not filename:
        return result
    content_id = (_first(headers, "content-id") or "").strip().strip("<>").strip() or None
    result.leaves.append(_Leaf(ctype, disposition, filename, content_id, data))
    return result


def _outer_types(part: Message, depth: int = 0) -> list[str]:
    """Content types of the message's parts, not looking inside attached messages.

    A customer forwarding a bounce *as an attachment* is asking for help, not bouncing.
    """
    ctype = _content_type(_headers(part))[0]
    found = [ctype]
    payload = _children(part)
    if isinstance(payload, list) and not ctype.startswith("message/rfc822") and depth < _MAX_DEPTH:
        for child in payload:
            if isinstance(child, Message):
                found += _outer_types(child, depth + 1)
    return found


def _attachments(leaves: list[_Leaf], html: str | None) -> tuple[InboundAttachment, ...]:
    cids = cid_references(html)
    out: list[InboundAttachment] = []
    for number, leaf in enumerate(leaves, start=1):
        referenced = leaf.content_id is not None and leaf.content_id.lower() in cids
        inline = referenced or (leaf.content_type.startswith("image/") and leaf.disposition == "inline")
        name = leaf.filename
        if not name:
            extension = ".ics" if leaf.content_type == "text/calendar" else (
                mimetypes.guess_extension(leaf.content_type) or ".bin")
            name = f"{'inline' if inline else 'attachment'}-{number}{extension}"
        out.append(InboundAttachment(filename=name, content_type=leaf.content_type, content=leaf.content,
                                     inline=inline, content_id=leaf.content_id))
    return tuple(out)


def _sent_at(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(unfold(value).strip())
    except Exception:  # noqa: BLE001 - TypeError / ValueError / IndexError / OverflowError on junk
        return None
    if parsed is None:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=timezone.utc)


def _thread_refs(headers: dict[str, list[str]], own_id: str | None) -> tuple[str, ...]:
    """In-Reply-To ids first, then References newest-first; no duplicates, never our own id."""
    refs: list[str] = []
    candidates = message_ids(_first(headers, "in-reply-to"))
    candidates += list(reversed(message_ids(" ".join(headers.get("references", [])))))
    for ref in candidates:
        if ref not in refs and ref != own_id:
            refs.append(ref)
    return tuple(refs)


def _ticket_hint(subject: str | None) -> int | None:
    match = _TICKET_HINT.search(subject or "")
    return int(match.group(1)) if match else None


def _synthetic_id(raw: bytes, headers: dict[str, list[str]]) -> str:
    """A stable id for mail without Message-ID: the same bytes redelivered dedupe."""
    digest = hashlib.sha256()
    for name in ("date", "from", "subject"):
        digest.update(unfold(_first(headers, name) or "").strip().encode("utf-8", "surrogateescape") + b"\0")
    split = re.search(rb"\r?\n\r?\n", raw)
    digest.update(raw[split.end():] if split else b"")
    return f"synthetic-{digest.hexdigest()}@helpdesk.invalid"


def parse_email(raw: bytes) -> InboundMessage | Ignored:
    """Normalise one raw RFC 5322 message; ``Ignored`` for bounces, auto-replies and bulk mail.

    Raises ``InvalidPayload`` only when the bytes are not an e-mail at all (empty, no headers,
    binary). Everything else, however broken, is read as well as it can be.
    """
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "surrogateescape")
    try:
        raw = bytes(raw)
    except (TypeError, ValueError) as exc:
        raise InvalidPayload("The body is not an RFC 5322 message.") from exc
    raw = raw.lstrip(b"\r\n\t ")
    if not raw:
        raise InvalidPayload("The message is empty.")
    message = _load(raw)
    headers = _headers(message)
    if not headers.keys() & _CORE_HEADERS:
        raise InvalidPayload("The body is not an RFC 5322 message: it has no mail headers.")

    subject = decode_header(_first(headers, "subject")) or None
    name, address = parse_sender(_first(headers, "from"))
    if address is None and _first(headers, "sender"):
        name, address = parse_sender(_first(headers, "sender"))
    reason = classify(headers, subject=subject or "", sender_email=address, content_types=_outer_types(message))
    if reason is not None:
        return Ignored(reason)

    collected = _collect(message)
    html = "\n".join(collected.html) if collected.html else None
    plain = "\n\n".join(t for t in collected.plain if t.strip())
    full_text = (plain if plain.strip() else html_to_text(html or "")).strip("\n")
    forwarded = is_forward(subject, full_text)
    body_text = full_text if forwarded else strip_quoted(full_text)

    ids = message_ids(_first(headers, "message-id"))
    bare = (_first(headers, "message-id") or "").strip()
    external_id = ids[0] if ids else (bare if bare and not any(ch.isspace() for ch in bare) else None)
    synthetic = external_id is None
    if synthetic:
        external_id = _synthetic_id(raw, headers)

    metadata: dict[str, Any] = {
        "full_text": full_text,
        "reply_to": parse_address_list(headers.get("reply-to", [])),
        "to": parse_address_list(headers.get("to", [])),
        "cc": parse_address_list(headers.get("cc", [])),
        "forwarded": forwarded,
        "quoted_history_removed": body_text != full_text,
        "synthetic_message_id": synthetic,
    }
    return InboundMessage(
        channel="email",
        external_id=external_id,
        sender=Sender(name=name, email=address),
        body_text=body_text,
        subject=subject,
        body_html=html,
        thread_refs=_thread_refs(headers, external_id),
        ticket_number_hint=_ticket_hint(subject),
        attachments=_attachments(collected.leaves, html),
        language=guess_language(f"{subject or ''}\n{body_text}"),
        sent_at=_sent_at(_first(headers, "date")),
        metadata=metadata,
    )
