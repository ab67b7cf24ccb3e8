"""DingTalk (钉钉) enterprise robot callbacks (JSON).

``{"msgtype": "text", "text": {"content"}, "msgId", "createAt" (ms), "conversationType": "1"
(single chat) | "2" (group), "conversationId", "conversationTitle", "senderId", "senderNick",
"senderStaffId", "senderCorpId", "chatbotUserId", "isAdmin", "sessionWebhook", "atUsers"}``;
also ``richText``, ``picture``, ``audio`` (with recognition) and ``file``. ``msgId`` dedupes;
the conversation threads onto its open ticket. Signature: headers ``timestamp`` (ms) and
``sign`` = base64(HMAC-SHA256(app secret, timestamp + "\\n" + app secret)), at most an hour old.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import orjson

from .inbound import Ignored, InboundMessage, InvalidPayload, Sender

MAX_BYTES = 1024 * 1024


def _text(msgtype: str, doc: dict[str, Any]) -> str:
    if msgtype == "text":
        return str((doc.get("text") or {}).get("content", "")).strip()
    content = doc.get("content") or {}
    if not isinstance(content, dict):
        raise InvalidPayload("content must be an object.", field_errors=[{"field": "content", "message": "not an object"}])
    if msgtype == "richText":
        pieces = []
        for item in content.get("richText") or []:
            if isinstance(item, dict):
                pieces.append(str(item["text"]) if "text" in item else "[picture]" if item.get("type") == "picture" else "")
        return "".join(pieces).strip()
    if msgtype == "picture":
        return "[picture]"
    if msgtype == "audio":
        return str(content.get("recognition") or "[voice message]")
    if msgtype == "file":
        return f"[file] {content.get('fileName', '')}".strip()
    if msgtype == "video":
        return "[video]"
    raise InvalidPayload(f"Unsupported DingTalk message type {msgtype!r}.",
                         field_errors=[{"field": "msgtype", "message": "unsupported"}])


def parse_dingtalk(body: bytes) -> InboundMessage | Ignored:
    if len(body) > MAX_BYTES:
        raise InvalidPayload("The callback is too large.")
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidPayload(f"The body is not JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise InvalidPayload("The body must be a JSON object.")
    errors = [{"field": f, "message": "required"} for f in ("msgtype", "msgId", "conversationId")
              if not isinstance(doc.get(f), str) or not doc.get(f)]
    if errors:
        raise InvalidPayload("The callback misses required fields.", field_errors=errors)
    text = _text(doc["msgtype"], doc)
    if not text:
        return Ignored("dingtalk-empty-message")
    staff = doc.get("senderStaffId") or doc.get("senderId")
    try:
        sent_at = datetime.fromtimestamp(int(doc.get("createAt")) / 1000, UTC) if doc.get("createAt") else None
    except (TypeError, ValueError, OverflowError, OSError):
        sent_at = None
    webhook = doc.get("sessionWebhook")
    meta = {"conversation_type": str(doc.get("conversationType", "")), "msgtype": doc["msgtype"],
            "conversation_title": str(doc.get("conversationTitle") or "")[:200]}
    if isinstance(webhook, str) and webhook:
        meta["session_webhook_host"] = urlsplit(webhook).hostname or ""
    return InboundMessage(
        channel="dingtalk",
        external_id=doc["msgId"][:200],
        sender=Sender(name=str(doc.get("senderNick") or "")[:256] or None,
                      dingtalk_id=str(staff)[:128] if staff else None),
        body_text=text,
        conversation_key=f"dingtalk:{doc['conversationId'][:200]}",
        sent_at=sent_at,
        metadata=meta,
    )


def dingtalk_sign(app_secret: str, timestamp_ms: str) -> str:
    digest = hmac.new(app_secret.encode(), f"{timestamp_ms}\n{app_secret}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def verify_dingtalk_sign(app_secret: str, timestamp_ms: str, sign: str, *, now_ms: int,
                         tolerance_ms: int = 3_600_000) -> bool:
    try:
        if abs(now_ms - int(timestamp_ms)) > tolerance_ms:
            return False
    except ValueError:
        return False
    return hmac.compare_digest(dingtalk_sign(app_secret, timestamp_ms).encode(), sign.encode())
