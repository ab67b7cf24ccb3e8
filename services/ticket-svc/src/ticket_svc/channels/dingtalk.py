"""DingTalk (钉钉) enterprise robot callbacks (JSON).

``{"msgtype": "text", "text": {"content"}, "msgId", "createAt" (ms), "conversationType": "1"
(single chat) | "2" (group), "conversationId", "conversationTitle", "senderId", "senderNick",
"senderStaffId", "senderCorpId", "chatbotUserId", "isAdmin", "sessionWebhook", "atUsers"}``;
also ``richText`` (``content.richText``: ``{"text"}`` and ``{"type": "picture",
"downloadCode"}`` items), ``picture``, ``audio`` (``content.recognition``), ``file`` and
``video``; ``sessionWebhookExpiredTime`` (ms) and ``robotCode`` tell how to answer.

The payload is DingTalk's, not ours: fields DingTalk adds later are ignored rather than refused,
but the fields we use are type-checked. ``msgId`` dedupes (DingTalk retries a callback that was
not answered in time); the conversation threads onto its open ticket. ``sessionWebhook`` is a
bearer URL (anyone holding it can post into the chat until it expires), so the message keeps
only its host; the full URL and its expiry travel in ``reply_route``, which intake checks against
the allowed origins and stores in ``reply_routes`` only (never in anything an API answer shows).

Signature: headers ``timestamp`` (ms) and ``sign`` = base64(HMAC-SHA256(app secret, timestamp +
"\\n" + app secret)); DingTalk documents that a timestamp more than an hour off must be refused.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import orjson
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, ValidationError, WithJsonSchema

from .inbound import Ignored, InboundMessage, InvalidPayload, Sender

MAX_BYTES = 1024 * 1024
Id = Annotated[str, StringConstraints(min_length=1, max_length=256)]
Text = Annotated[str, StringConstraints(max_length=65_536)]


class _Lenient(BaseModel):
    """DingTalk's objects: unknown keys ignored, known keys checked (no str/number coercion)."""

    model_config = ConfigDict(extra="ignore", strict=True)


def _integral(value: Any) -> Any:
    """A float without a fraction as the int it is (the model is strict otherwise)."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _epoch_ms_or_none(value: Any) -> int | None:
    """Milliseconds as a number or a string of digits; anything else is None (not a 422)."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 14:
        value = int(value)
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 10**14 else None


def _short_text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and 0 < len(value) <= 256 else None


#: the message types taken (others are a 422 naming msgtype)
MSGTYPES = ("text", "richText", "picture", "audio", "file", "video")


class _TextBody(_Lenient):
    content: Text = ""


class _RichItem(_Lenient):
    text: Text | None = None
    type: str | None = None
    downloadCode: str | None = None


class _Content(_Lenient):
    """``content`` of the non-text types; which keys are present depends on ``msgtype``."""

    richText: list[_RichItem] = Field(default_factory=list, max_length=500)
    downloadCode: str | None = None
    pictureDownloadCode: str | None = None
    recognition: Text | None = None
    fileName: Annotated[str, StringConstraints(max_length=255)] | None = None
    duration: int | str | None = None


class _AtUser(_Lenient):
    dingtalkId: str | None = None
    staffId: str | None = None


class Callback(_Lenient):
    msgtype: Annotated[str, StringConstraints(min_length=1, max_length=32),
                       Field(json_schema_extra={"enum": list(MSGTYPES)})]
    msgId: Id
    conversationId: Id
    #: milliseconds; ``1536359159000.0`` is that integer too (as JSON Schema's "integer" says)
    #: the bounds before the validator: after it, pydantic renders them as unknown keywords (``ge``)
    #: and the document stated no minimum
    createAt: Annotated[int, Field(ge=0, lt=10**14), BeforeValidator(_integral)] | None = None
    conversationType: Literal["1", "2"] | None = None
    conversationTitle: Annotated[str, StringConstraints(max_length=256)] | None = None
    senderId: Id | None = None
    senderNick: Annotated[str, StringConstraints(max_length=256)] | None = None
    senderStaffId: Id | None = None
    senderCorpId: Id | None = None
    chatbotUserId: Id | None = None
    isAdmin: bool | None = None
    sessionWebhook: Annotated[str, StringConstraints(max_length=2048)] | None = None
    #: when the session webhook stops working (epoch milliseconds); only used to answer, so an odd
    #: value is dropped rather than refusing the customer's message
    #: read leniently (an odd value is dropped, never a 422 that loses the customer's message), so
    #: the document says any value is taken
    sessionWebhookExpiredTime: Annotated[int | None, BeforeValidator(_epoch_ms_or_none), WithJsonSchema(
        {"description": "milliseconds since 1970, as a number or digits; any other value is ignored"})] = None
    robotCode: Annotated[str | None, BeforeValidator(_short_text_or_none), WithJsonSchema(
        {"description": "the robot's code (1-256 characters); any other value is ignored"})] = None
    atUsers: list[_AtUser] = Field(default_factory=list, max_length=500)
    text: _TextBody | None = None
    content: _Content | None = None


def _load(body: bytes) -> Callback:
    if len(body) > MAX_BYTES:
        raise InvalidPayload(f"The callback is larger than {MAX_BYTES} bytes.")
    try:
        doc: Any = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidPayload(f"The body is not JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise InvalidPayload("The body must be a JSON object.")
    try:
        return Callback.model_validate(doc)
    except ValidationError as exc:
        errors = [{"field": ".".join(str(p) for p in e["loc"]) or "body", "message": e["msg"]} for e in exc.errors()]
        raise InvalidPayload("The callback has invalid fields.", field_errors=errors) from exc


def _text_and_codes(cb: Callback) -> tuple[str, list[str]]:
    """(body text, download codes of the media). Media stay on DingTalk; a download code and the
    robot's access token fetch them, so the codes are kept for a worker that wants to."""
    content = cb.content or _Content()
    codes = [c for c in (content.downloadCode, content.pictureDownloadCode) if c]
    if cb.msgtype == "text":
        return (cb.text.content if cb.text else "").strip(), []
    if cb.msgtype == "richText":
        pieces = []
        for item in content.richText:
            if item.text is not None:
                pieces.append(item.text)
            elif item.type == "picture":
                pieces.append("[picture]")
                if item.downloadCode:
                    codes.append(item.downloadCode)
        return "".join(pieces).strip(), codes
    if cb.msgtype == "picture":
        return "[picture]", codes
    if cb.msgtype == "audio":
        return (content.recognition or "").strip() or "[voice message]", codes
    if cb.msgtype == "file":
        return f"[file] {content.fileName or ''}".strip(), codes
    if cb.msgtype == "video":
        return "[video]", codes
    raise InvalidPayload(f"Unsupported DingTalk message type {cb.msgtype!r}.",
                         field_errors=[{"field": "msgtype", "message": f"{cb.msgtype!r} is not supported"}])


def _sent_at(create_at_ms: int | None) -> datetime | None:
    if create_at_ms is None:
        return None
    try:
        return datetime.fromtimestamp(create_at_ms / 1000, UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise InvalidPayload("createAt is out of range.",
                             field_errors=[{"field": "createAt", "message": "is out of range"}]) from exc


def _host(url: str) -> str:
    """The host of a URL, or "" for one that does not parse (``http://[`` raises in urlsplit)."""
    try:
        return urlsplit(url).hostname or ""
    except ValueError:
        return ""


def parse_dingtalk(body: bytes) -> InboundMessage | Ignored:
    """A robot callback -> a customer message on ``dingtalk:<conversationId>``; a message with
    nothing in it (a bare @-mention of the robot) is ``Ignored``."""
    cb = _load(body)
    text, codes = _text_and_codes(cb)
    if not text:
        return Ignored("dingtalk-empty-message")
    metadata: dict[str, Any] = {"msgtype": cb.msgtype}
    if cb.conversationType is not None:
        metadata["conversation_type"] = cb.conversationType
    if cb.conversationTitle:
        metadata["conversation_title"] = cb.conversationTitle
    if cb.senderCorpId:
        metadata["sender_corp_id"] = cb.senderCorpId
    if cb.isAdmin is not None:
        metadata["is_admin"] = cb.isAdmin
    if cb.sessionWebhook:
        # the full URL is a bearer credential: only the host is kept
        metadata["session_webhook_host"] = _host(cb.sessionWebhook)
    if codes:
        metadata["download_codes"] = codes
    route = {"session_webhook": cb.sessionWebhook or None,
             "session_webhook_expires_at": cb.sessionWebhookExpiredTime if cb.sessionWebhook else None,
             "conversation_id": cb.conversationId, "sender_staff_id": cb.senderStaffId, "robot_code": cb.robotCode}
    return InboundMessage(
        channel="dingtalk",
        external_id=cb.msgId,
        # senderStaffId is stable within the company; external users only have senderId
        sender=Sender(name=(cb.senderNick or "").strip() or None, dingtalk_id=cb.senderStaffId or cb.senderId),
        body_text=text,
        conversation_key=f"dingtalk:{cb.conversationId}",
        sent_at=_sent_at(cb.createAt),
        metadata=metadata,
        # a new webhook replaces the stored one with its own expiry, even an unknown one (null)
        reply_route={k: v for k, v in route.items()
                     if v is not None or (k == "session_webhook_expires_at" and cb.sessionWebhook)},
    )


def webhook_origin_allowed(url: str, origins: list[str] | tuple[str, ...]) -> bool:
    """True when ``url`` is on one of ``origins`` (``scheme://host[:port]``: same scheme, host and
    port, default ports filled in) and carries no user info. The webhook comes from a callback,
    and we post replies to it: a forged callback must not be able to point us anywhere else."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return False
    if parts.username is not None or parts.password is not None or not parts.hostname:
        return False
    default = {"https": 443, "http": 80}

    def origin(scheme: str, host: str, port_: int | None) -> tuple[str, str, int | None]:
        return scheme.lower(), host.lower().rstrip("."), port_ or default.get(scheme.lower())

    mine = origin(parts.scheme, parts.hostname, port)
    for allowed in origins:
        try:
            a = urlsplit(allowed)
            if a.hostname and origin(a.scheme, a.hostname, a.port) == mine:
                return True
        except ValueError:
            continue
    return False


def dingtalk_sign(app_secret: str, timestamp_ms: str) -> str:
    """base64(HMAC-SHA256(key=app secret, message=timestamp + "\\n" + app secret))."""
    digest = hmac.new(app_secret.encode("utf-8"), f"{timestamp_ms}\n{app_secret}".encode("utf-8"),
                      hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def verify_dingtalk_sign(app_secret: str, timestamp_ms: str, sign: str, *, now_ms: int,
                         tolerance_ms: int = 3_600_000) -> bool:
    """True when ``sign`` matches and ``timestamp_ms`` is within ``tolerance_ms`` of ``now_ms``
    (either way: a timestamp from the future is as suspicious as a stale one). A stale but
    correctly signed request is a replay and is refused the same as a forgery."""
    if not (timestamp_ms.isascii() and timestamp_ms.isdigit()) or len(timestamp_ms) > 16:
        return False
    if abs(now_ms - int(timestamp_ms)) > tolerance_ms:
        return False
    return hmac.compare_digest(dingtalk_sign(app_secret, timestamp_ms).encode("ascii"), sign.strip().encode("utf-8"))
