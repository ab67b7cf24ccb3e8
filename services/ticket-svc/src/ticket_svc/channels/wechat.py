"""WeChat Official Account and WeCom (企业微信) callbacks: their XML message format.

``<xml><ToUserName/><FromUserName/><CreateTime/><MsgType/><Content/><MsgId/>...</xml>``.
Text, image, voice (with speech recognition), video, location and link messages become
customer messages; ``event`` messages (subscribe, menu clicks...) create nothing. The sender is
the OpenID (WeChat) or the member's userid (WeCom); ``MsgId`` dedupes; the sender's
conversation threads onto their open ticket.

Signatures: WeChat signs ``sha1(sorted(token, timestamp, nonce))``; WeCom and WeChat's "safe
mode" encrypt the XML (AES-256-CBC, key = base64(EncodingAESKey + "="), IV = the key's first 16
bytes, PKCS#7 to 32-byte blocks, plaintext = 16 random bytes + 4-byte length + XML + receiver
id) and sign ``sha1(sorted(token, timestamp, nonce, encrypted))``. XML with a DOCTYPE or
entities is refused before parsing (XXE, billion laughs).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import struct
import xml.etree.ElementTree as ET
from datetime import UTC, datetime

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from .inbound import Ignored, InboundMessage, InvalidPayload, Sender

MAX_BYTES = 1024 * 1024
_BLOCK = 32


def _xml(body: bytes) -> dict[str, str]:
    if len(body) > MAX_BYTES:
        raise InvalidPayload("The callback is too large.")
    head = body[:4096].upper()
    if b"<!DOCTYPE" in head or b"<!ENTITY" in body.upper():
        raise InvalidPayload("DOCTYPE and entity declarations are not accepted.")
    try:
        root = ET.fromstring(body)
    except ET.ParseError as exc:
        raise InvalidPayload(f"The callback is not XML: {exc}") from exc
    if root.tag != "xml":
        raise InvalidPayload("The callback's root element must be <xml>.")
    return {child.tag: (child.text or "").strip() for child in root}


def _describe(fields: dict[str, str]) -> tuple[str, dict[str, str]]:
    kind = fields.get("MsgType", "")
    meta = {"msg_type": kind}
    if kind == "text":
        return fields.get("Content", ""), meta
    if kind == "image":
        meta.update(pic_url=fields.get("PicUrl", ""), media_id=fields.get("MediaId", ""))
        return "[image]", meta
    if kind == "voice":
        meta["media_id"] = fields.get("MediaId", "")
        return fields.get("Recognition") or "[voice message]", meta
    if kind in ("video", "shortvideo"):
        meta["media_id"] = fields.get("MediaId", "")
        return "[video]", meta
    if kind == "location":
        label = fields.get("Label", "")
        return f"[location] {label} ({fields.get('Location_X', '')}, {fields.get('Location_Y', '')})".strip(), meta
    if kind == "link":
        return f"{fields.get('Title', '')}\n{fields.get('Description', '')}\n{fields.get('Url', '')}".strip(), meta
    if kind == "file":
        return f"[file] {fields.get('Title', '')}".strip(), meta
    raise InvalidPayload(f"Unsupported WeChat message type {kind!r}.",
                         field_errors=[{"field": "MsgType", "message": "unsupported"}])


def parse_wechat_xml(body: bytes, *, channel: str = "wechat") -> InboundMessage | Ignored:
    fields = _xml(body)
    sender_id = fields.get("FromUserName", "")
    if not sender_id:
        raise InvalidPayload("FromUserName is missing.", field_errors=[{"field": "FromUserName", "message": "required"}])
    if fields.get("MsgType") == "event":
        return Ignored(f"{channel}-event:{fields.get('Event', 'unknown')}")
    try:
        created = datetime.fromtimestamp(int(fields.get("CreateTime", "")), UTC)
    except (ValueError, OverflowError, OSError):
        created = None
    text, meta = _describe(fields)
    if channel == "wecom" and fields.get("AgentID"):
        meta["agent_id"] = fields["AgentID"]
    msg_id = fields.get("MsgId") or f"{sender_id}:{fields.get('CreateTime', '')}"
    sender = (Sender(wechat_openid=sender_id) if channel == "wechat"
              else Sender(external_id=f"wecom:{sender_id}"))
    return InboundMessage(
        channel=channel,
        external_id=msg_id,
        sender=sender,
        body_text=text,
        conversation_key=f"{channel}:{sender_id}",
        sent_at=created,
        language=None,
        metadata=meta,
    )


def wechat_signature(token: str, timestamp: str, nonce: str) -> str:
    return hashlib.sha1("".join(sorted([token, timestamp, nonce])).encode()).hexdigest()


def verify_wechat_signature(token: str, timestamp: str, nonce: str, signature: str) -> bool:
    return hmac.compare_digest(wechat_signature(token, timestamp, nonce).encode(), signature.encode())


def wecom_signature(token: str, timestamp: str, nonce: str, encrypted: str) -> str:
    return hashlib.sha1("".join(sorted([token, timestamp, nonce, encrypted])).encode()).hexdigest()


def _key(encoding_aes_key: str) -> bytes:
    try:
        key = base64.b64decode(encoding_aes_key + "=")
    except (binascii.Error, ValueError) as exc:
        raise InvalidPayload("The EncodingAESKey is not valid base64.") from exc
    if len(key) != 32:
        raise InvalidPayload("The EncodingAESKey must decode to 32 bytes.")
    return key


def encrypt_wechat_message(encoding_aes_key: str, xml: bytes, *, receiver_id: str) -> str:
    key = _key(encoding_aes_key)
    plain = os.urandom(16) + struct.pack(">I", len(xml)) + xml + receiver_id.encode()
    pad = _BLOCK - len(plain) % _BLOCK
    plain += bytes([pad]) * pad
    encryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return base64.b64encode(encryptor.update(plain) + encryptor.finalize()).decode()


def decrypt_wechat_message(encoding_aes_key: str, encrypted_b64: str, *, expected_receiver_id: str) -> bytes:
    key = _key(encoding_aes_key)
    try:
        data = base64.b64decode(encrypted_b64, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidPayload("The encrypted message is not base64.") from exc
    if not data or len(data) % 16:
        raise InvalidPayload("The encrypted message has a wrong length.")
    decryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).decryptor()
    plain = decryptor.update(data) + decryptor.finalize()
    pad = plain[-1]
    if not 1 <= pad <= _BLOCK or plain[-pad:] != bytes([pad]) * pad:
        raise InvalidPayload("The encrypted message does not decrypt.")
    plain = plain[:-pad]
    if len(plain) < 20:
        raise InvalidPayload("The encrypted message is too short.")
    (length,) = struct.unpack(">I", plain[16:20])
    xml, receiver = plain[20:20 + length], plain[20 + length:]
    if len(xml) != length or (expected_receiver_id and receiver.decode("utf-8", "replace") != expected_receiver_id):
        raise InvalidPayload("The encrypted message is for another receiver.")
    return xml
