"""WeChat Official Account and WeCom (企业微信) callbacks: their XML message format.

``<xml><ToUserName/><FromUserName/><CreateTime/><MsgType/><Content/><MsgId/>...</xml>``.
Text, image, voice (with speech recognition), video, location, link and file messages become
customer messages; ``event`` messages (subscribe, menu clicks, entering the app...) create
nothing. The sender is the OpenID (WeChat) or the member's userid (WeCom); ``MsgId`` dedupes
(the platform retries a callback three times when the answer is slow); every message of a sender
joins their conversation's open ticket.

Signatures: WeChat signs plain callbacks with ``sha1(sorted(token, timestamp, nonce))``. WeCom,
and WeChat in "safe mode", encrypt the XML (AES-256-CBC, key = base64(EncodingAESKey + "="),
IV = the key's first 16 bytes, PKCS#7 to 32-byte blocks, plaintext = 16 random bytes + 4-byte
big-endian length + XML + receiver id) inside ``<xml><Encrypt>...</Encrypt></xml>`` and sign
``sha1(sorted(token, timestamp, nonce, encrypted))``.

The XML is untrusted until the signature is checked (and unsigned when no token is configured),
so it is read defensively: UTF-8 only, at most ``MAX_BYTES``, and any DOCTYPE / ENTITY (or other
``<!`` declaration) outside CDATA and comments is refused before ElementTree sees it (XXE,
billion laughs); the parser additionally aborts on a document type declaration.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import struct
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from .inbound import Ignored, InboundMessage, InvalidPayload, Sender

MAX_BYTES = 1024 * 1024
MAX_ID_CHARS = 128
_BLOCK = 32  # WeChat pads to 32 bytes, not AES's 16
_DECLARED_ENCODING = re.compile(rb"""^<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")
_SKIPPED = (("<![CDATA[", "]]>"), ("<!--", "-->"), ("<?", "?>"))


def _invalid(field: str, message: str) -> InvalidPayload:
    return InvalidPayload(f"{field} {message}.", field_errors=[{"field": field, "message": message}])


def _refuse_declarations(text: str) -> None:
    """Refuse ``<!DOCTYPE``, ``<!ENTITY`` and every other markup declaration.

    Walks the markup from ``<`` to ``<``: CDATA sections, comments and processing instructions
    are skipped whole (a customer may well type ``<!DOCTYPE`` into a message, which WeChat wraps in
    CDATA), and any other ``<!`` is a declaration. Attribute values and text cannot contain a
    raw ``<``, so nothing else can hide one.
    """
    index = text.find("<")
    while index != -1:
        for opener, closer in _SKIPPED:
            if text.startswith(opener, index):
                end = text.find(closer, index + len(opener))
                if end == -1:
                    raise InvalidPayload(f"Unterminated {opener!r} in the XML.")
                index = end + len(closer)
                break
        else:
            if text.startswith("<!", index):
                raise InvalidPayload("DOCTYPE, ENTITY and other declarations are not accepted in the XML.")
            index += 1
        index = text.find("<", index)


class _NoDoctype(ET.TreeBuilder):
    """Defence in depth: ElementTree calls ``doctype`` when it meets a DOCTYPE, before any entity
    of it could be expanded; raising there aborts the parse."""

    def doctype(self, name: str, pubid: str, system: str) -> None:
        raise InvalidPayload("DOCTYPE is not accepted in the XML.")


def _root(body: bytes) -> ET.Element:
    if len(body) > MAX_BYTES:
        raise InvalidPayload(f"The callback is larger than {MAX_BYTES} bytes.")
    declared = _DECLARED_ENCODING.match(body.removeprefix(b"\xef\xbb\xbf"))
    if declared is not None and declared.group(1).lower() not in (b"utf-8", b"utf8"):
        raise InvalidPayload("The callback XML must be UTF-8.")
    try:
        text = body.decode("utf-8")  # also refuses UTF-16, which would hide '<!' from the scan
    except UnicodeDecodeError as exc:
        raise InvalidPayload("The callback XML is not UTF-8.") from exc
    _refuse_declarations(text)
    try:
        root = ET.fromstring(body, parser=ET.XMLParser(target=_NoDoctype()))
    except ET.ParseError as exc:
        raise InvalidPayload(f"The callback is not well-formed XML: {exc}") from exc
    if root.tag != "xml":
        raise InvalidPayload("The callback's root element must be <xml>.")
    return root


def read_fields(body: bytes) -> dict[str, str]:
    """The top-level elements of a callback as ``{tag: text}`` (first occurrence wins;
    nested structures such as WeCom's ``<SendPicsInfo>`` are not needed and are skipped)."""
    fields: dict[str, str] = {}
    for child in _root(body):
        if len(child) == 0:
            fields.setdefault(child.tag, (child.text or "").strip())
    return fields


def encrypted_part(body: bytes) -> str:
    """The ``<Encrypt>`` value of a safe-mode / WeCom envelope, read with the same precautions
    as a message (the envelope is what arrives before anything is verified)."""
    encrypted = read_fields(body).get("Encrypt", "")
    if not encrypted:
        raise _invalid("Encrypt", "is required in an encrypted callback")
    return encrypted


def _describe(fields: dict[str, str]) -> tuple[str, dict[str, Any]]:
    """(body text, metadata) per message type; media stay on WeChat's servers, referenced by
    ``MediaId`` (valid for three days) for a worker that wants to fetch them."""
    kind = fields.get("MsgType", "")
    meta: dict[str, Any] = {"msg_type": kind}
    if kind == "text":
        text = fields.get("Content", "")
        if not text:
            raise _invalid("Content", "is required for a text message")
        return text, meta
    if kind == "image":
        meta.update(pic_url=fields.get("PicUrl", ""), media_id=fields.get("MediaId", ""))
        return "[image]", meta
    if kind == "voice":
        meta.update(media_id=fields.get("MediaId", ""), format=fields.get("Format", ""))
        return fields.get("Recognition") or "[voice message]", meta
    if kind in ("video", "shortvideo"):
        meta.update(media_id=fields.get("MediaId", ""), thumb_media_id=fields.get("ThumbMediaId", ""))
        return "[video]", meta
    if kind == "location":
        x, y, label = fields.get("Location_X", ""), fields.get("Location_Y", ""), fields.get("Label", "")
        meta.update(latitude=x, longitude=y, label=label, scale=fields.get("Scale", ""))
        return re.sub(r"\s+", " ", f"[location] {label} ({x}, {y})"), meta
    if kind == "link":
        meta["url"] = fields.get("Url", "")
        lines = (fields.get("Title", ""), fields.get("Description", ""), fields.get("Url", ""))
        return "\n".join(line for line in lines if line) or "[link]", meta
    if kind == "file":
        meta.update(media_id=fields.get("MediaId", ""), file_name=fields.get("Title", ""))
        return f"[file] {fields.get('Title', '')}".strip(), meta
    raise _invalid("MsgType", f"{kind!r} is not a supported message type" if kind else "is required")


def _sent_at(fields: dict[str, str]) -> datetime:
    raw = fields.get("CreateTime", "")
    if not raw.isascii() or not raw.isdigit() or len(raw) > 12:
        raise _invalid("CreateTime", "must be Unix seconds")
    return datetime.fromtimestamp(int(raw), UTC)


def parse_wechat_xml(body: bytes, *, channel: str = "wechat") -> InboundMessage | Ignored:
    """A (decrypted) callback -> a customer message, or ``Ignored`` for an event.

    ``channel`` is ``"wechat"`` (Official Account: the sender is an OpenID) or ``"wecom"``
    (WeCom: the sender is a member's userid, known as external id ``wecom:<userid>``).
    """
    if channel not in ("wechat", "wecom"):
        raise ValueError(f"channel must be 'wechat' or 'wecom', not {channel!r}")
    fields = read_fields(body)
    sender_id = fields.get("FromUserName", "")
    if not sender_id:
        raise _invalid("FromUserName", "is required")
    if len(sender_id) > MAX_ID_CHARS:
        raise _invalid("FromUserName", f"is longer than {MAX_ID_CHARS} characters")
    if fields.get("MsgType") == "event":
        return Ignored(f"{channel}-event:{fields.get('Event') or 'unknown'}")
    sent_at = _sent_at(fields)
    text, meta = _describe(fields)
    if fields.get("ToUserName"):
        meta["to_user_name"] = fields["ToUserName"]
    if channel == "wecom" and fields.get("AgentID"):
        meta["agent_id"] = fields["AgentID"]
    msg_id = fields.get("MsgId", "")
    if len(msg_id) > MAX_ID_CHARS:
        raise _invalid("MsgId", f"is longer than {MAX_ID_CHARS} characters")
    sender = Sender(wechat_openid=sender_id) if channel == "wechat" else Sender(external_id=f"wecom:{sender_id}")
    # how to answer: WeChat's customer-service API takes the openid and the account (ToUserName is
    # its original id, gh_...); WeCom's takes the user and, for 微信客服, the open_kfid when the
    # bridge passed it on
    to_user = fields.get("ToUserName") or None
    if channel == "wechat":
        route: dict[str, Any] = {"openid": sender_id, "original_id": to_user}
    else:
        route = {"external_userid": sender_id, "corp_id": to_user, "agent_id": fields.get("AgentID") or None,
                 "open_kfid": fields.get("OpenKfId") or None}
    return InboundMessage(
        channel=channel,
        # without a MsgId, one sender cannot send two messages in the same second: that pair is
        # what WeChat itself documents as the retry key
        external_id=msg_id or f"{sender_id}:{fields['CreateTime']}",
        sender=sender,
        body_text=text,
        conversation_key=f"{channel}:{sender_id}",
        sent_at=sent_at,
        metadata=meta,
        reply_route={k: v for k, v in route.items() if v},
    )


def _sha1_sorted(*parts: str) -> str:
    return hashlib.sha1("".join(sorted(parts)).encode("utf-8")).hexdigest()


def wechat_signature(token: str, timestamp: str, nonce: str) -> str:
    """WeChat's plain-mode signature: sha1 of the three strings sorted and concatenated."""
    return _sha1_sorted(token, timestamp, nonce)


def verify_wechat_signature(token: str, timestamp: str, nonce: str, signature: str) -> bool:
    """Constant-time check of the ``signature`` query parameter (compared as bytes, so a
    non-ASCII forgery is a plain mismatch rather than a TypeError)."""
    expected = wechat_signature(token, timestamp, nonce).encode()
    return hmac.compare_digest(expected, signature.strip().lower().encode("utf-8"))


def wecom_signature(token: str, timestamp: str, nonce: str, encrypted: str) -> str:
    """The ``msg_signature`` of an encrypted callback: sha1 of the four strings sorted."""
    return _sha1_sorted(token, timestamp, nonce, encrypted)


def _key(encoding_aes_key: str) -> bytes:
    """The AES key: the 43-character EncodingAESKey is base64 without its final '='."""
    try:
        key = base64.b64decode(encoding_aes_key.strip() + "=", validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidPayload("The EncodingAESKey is not valid base64.") from exc
    if len(key) != 32:
        raise InvalidPayload("The EncodingAESKey must be 43 characters (32 bytes).")
    return key


def encrypt_wechat_message(encoding_aes_key: str, xml: bytes, *, receiver_id: str,
                           random_prefix: bytes | None = None) -> str:
    """The platform's side of the scheme, for tests and tools: base64 of the AES-CBC ciphertext.
    ``random_prefix`` (16 bytes) makes the output deterministic; by default it is random."""
    key = _key(encoding_aes_key)
    prefix = os.urandom(16) if random_prefix is None else random_prefix
    if len(prefix) != 16:
        raise ValueError("random_prefix must be 16 bytes")
    plain = prefix + struct.pack(">I", len(xml)) + xml + receiver_id.encode("utf-8")
    pad = _BLOCK - len(plain) % _BLOCK
    plain += bytes([pad]) * pad
    encryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return base64.b64encode(encryptor.update(plain) + encryptor.finalize()).decode("ascii")


def decrypt_wechat_message(encoding_aes_key: str, encrypted_b64: str, *, expected_receiver_id: str) -> bytes:
    """Open a safe-mode / WeCom ``<Encrypt>`` value and return the message XML.

    The receiver id at the end of the plaintext (AppID for WeChat, CorpID for WeCom) must equal
    ``expected_receiver_id``, so a message encrypted for another account sharing the key is
    refused; an empty ``expected_receiver_id`` skips that check (for setups that configured only
    token and key). Every failure is an ``InvalidPayload``: with CBC and no MAC, *how* it failed
    must not be distinguishable to the sender beyond "no".
    """
    key = _key(encoding_aes_key)
    try:
        data = base64.b64decode(encrypted_b64.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidPayload("The encrypted message is not base64.") from exc
    if not data or len(data) % 16:  # AES blocks; the 32-byte padding is checked below
        raise InvalidPayload("The encrypted message does not decrypt.")
    decryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).decryptor()
    plain = decryptor.update(data) + decryptor.finalize()
    pad = plain[-1]
    if not 1 <= pad <= _BLOCK or plain[-pad:] != bytes([pad]) * pad or len(plain) - pad < 20:
        raise InvalidPayload("The encrypted message does not decrypt.")
    plain = plain[:-pad]
    (length,) = struct.unpack(">I", plain[16:20])
    if 20 + length > len(plain):
        raise InvalidPayload("The encrypted message does not decrypt.")
    xml, receiver = plain[20:20 + length], plain[20 + length:]
    if expected_receiver_id and not hmac.compare_digest(receiver, expected_receiver_id.encode("utf-8")):
        raise InvalidPayload("The encrypted message is for another receiver.")
    return xml
