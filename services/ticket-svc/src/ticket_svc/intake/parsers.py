"""Which parser reads which channel, and the platform signature checks in front of them.

WeChat, WeCom and DingTalk sign their callbacks; when the channel's token / secret is
configured (TICKET_WECHAT_TOKEN, TICKET_WECOM_TOKEN + TICKET_WECOM_ENCODING_AES_KEY +
TICKET_WECOM_CORP_ID, TICKET_DINGTALK_APP_SECRET) the signature must verify, and WeCom's
encrypted envelope is opened here. Without them, the bridge's API key is the only proof of
origin (the bridge checked the platform signature itself).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Mapping
from typing import Any

from ..channels.inbound import Ignored, InboundMessage, InvalidPayload

log = logging.getLogger(__name__)


def _secret(settings: Any, name: str) -> str | None:
    value = getattr(settings, name, None)
    return value.get_secret_value() if value is not None else None


def _wechat(body: bytes, query: Mapping[str, str], settings: Any) -> InboundMessage | Ignored:
    from ..channels import wechat

    token = _secret(settings, "wechat_token")
    if token is not None and not wechat.verify_wechat_signature(
        token, query.get("timestamp", ""), query.get("nonce", ""), query.get("signature", "")
    ):
        raise InvalidPayload("WeChat signature does not verify.")
    return wechat.parse_wechat_xml(body, channel="wechat")


def _wecom(body: bytes, query: Mapping[str, str], settings: Any) -> InboundMessage | Ignored:
    from ..channels import wechat

    token = _secret(settings, "wecom_token")
    aes_key = _secret(settings, "wecom_encoding_aes_key")
    if token is not None or aes_key is not None:
        # WeCom callbacks are always encrypted: a token without its key (or the reverse) is a
        # misconfiguration that must not silently accept unsigned bodies
        if token is None or aes_key is None:
            raise InvalidPayload("WeCom needs both TICKET_WECOM_TOKEN and TICKET_WECOM_ENCODING_AES_KEY.")
        encrypted = wechat.encrypted_part(body)
        expected = wechat.wecom_signature(token, query.get("timestamp", ""), query.get("nonce", ""), encrypted)
        if not _equal(expected, query.get("msg_signature", "")):
            raise InvalidPayload("WeCom signature does not verify.")
        body = wechat.decrypt_wechat_message(aes_key, encrypted,
                                             expected_receiver_id=_secret(settings, "wecom_corp_id") or "")
    return wechat.parse_wechat_xml(body, channel="wecom")


def _dingtalk(body: bytes, headers: Mapping[str, str], settings: Any) -> InboundMessage | Ignored:
    from ..channels import dingtalk

    secret = _secret(settings, "dingtalk_app_secret")
    if secret is not None and not dingtalk.verify_dingtalk_sign(
        secret, headers.get("timestamp", ""), headers.get("sign", ""), now_ms=int(time.time() * 1000)
    ):
        raise InvalidPayload("DingTalk signature does not verify.")
    message = dingtalk.parse_dingtalk(body)
    route = message.reply_route if isinstance(message, InboundMessage) else None
    if route and "session_webhook" in route and not dingtalk.webhook_origin_allowed(
            route["session_webhook"], getattr(settings, "dingtalk_webhook_origins", ())):
        # not DingTalk's: never stored, so never posted to (the message itself is still taken)
        log.warning("DingTalk session webhook on a foreign origin dropped (host %r)",
                    message.metadata.get("session_webhook_host"))
        kept = {k: v for k, v in route.items() if k not in ("session_webhook", "session_webhook_expires_at")}
        message = dataclasses.replace(message, reply_route=kept)
    return message


def _equal(a: str, b: str) -> bool:
    import hmac

    return hmac.compare_digest(a.encode(), b.encode())


def parse(kind: str, body: bytes, *, content_type: str, query: Mapping[str, str], headers: Mapping[str, str],
          settings: Any) -> InboundMessage | Ignored:
    if not body:
        raise InvalidPayload("The request body is empty.")
    if kind == "email":
        from ..channels.email import parse_email

        return parse_email(body)
    if kind == "web":
        from ..channels.webform import parse_webform

        return parse_webform(body, content_type)
    if kind == "chat":
        from ..channels.chat import parse_chat

        return parse_chat(body)
    if kind == "phone":
        from ..channels.phone import parse_phone

        return parse_phone(body)
    if kind == "wechat":
        return _wechat(body, query, settings)
    if kind == "wecom":
        return _wecom(body, query, settings)
    if kind == "dingtalk":
        return _dingtalk(body, headers, settings)
    raise InvalidPayload(f"Unknown channel {kind!r}.")
