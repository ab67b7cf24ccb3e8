"""Replies through WeCom customer contact (企业微信 · 微信客服): ``kf/send_msg``.

A WeChat user who opened a conversation with the company's customer-service account (``open_kfid``)
is answered with ``POST {api_base}/cgi-bin/kf/send_msg?access_token=...`` and
``{"touser": external_userid, "open_kfid": ..., "msgid": ..., "msgtype": "text", "text":
{"content": ...}}``; the token comes from ``GET {api_base}/cgi-bin/gettoken?corpid=...&corpsecret=...``
(the secret of the 微信客服 application) and is cached like WeChat's.

WeCom only lets the API answer while the conversation is in a state that allows it (new, or with
the API as its receptionist) and within 48 hours of the customer's last message, with a bounded
number of messages; otherwise it answers a session-state error (95018 "send msg session status
invalid" and relatives). Those are ``undeliverable``: the agent must answer from the WeCom
client or wait for the customer to write again; retrying changes nothing.

``msgid`` is ours, derived from the delivery id (one per part), so a message resent after a crash
carries the same id as the first copy.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from .base import OutboundMessage, SendResult
from ._common import (
    PartProgress,
    call_with_token,
    classify_http_status,
    errcode_of,
    errmsg_of,
    send_parts,
    transport_failure,
)
from .http import AiohttpClient, HttpClient, HttpResponse, TransportError, client_from_settings
from .text import split_text, truncation_note
from .tokens import TokenCache, TokenUnavailable, lifetime_s

PROVIDER = "WeCom"
#: WeCom's documented limit of a text message's content, in UTF-8 bytes
TEXT_MAX_BYTES = 2048
MAX_PARTS = 4

#: refused token: refresh once and repeat (40014 invalid access_token, 42001 expired; 40001 is
#: "invalid secret" at ``gettoken`` but is also answered for a token issued with an old secret)
TOKEN_ERRCODES = frozenset({40001, 40014, 42001})

_SESSION = "WeCom will not accept an API message in this conversation's state"

#: errcodes of ``kf/send_msg`` other than the token errors (docs/channels/outbound.md)
SEND_ERRCODES: dict[int, tuple[str, str]] = {
    95018: (
        "undeliverable",
        f"{_SESSION} (taken over by a human receptionist, ended, or past the 48-hour / message "
        "allowance since the customer last wrote); answer from the WeCom client or wait for the "
        "customer to write again",
    ),
    95016: ("undeliverable", f"{_SESSION}: the conversation's state does not allow this transition"),
    95013: ("undeliverable", "the WeCom customer-service conversation has ended"),
    45015: ("undeliverable", "outside the 48-hour window since the customer last wrote"),
    45047: ("undeliverable", "the message allowance since the customer last wrote is used up"),
    95000: ("permanent", "WeCom refused the open_kfid"),
    95004: ("permanent", "the WeCom customer-service account (open_kfid) does not exist"),
    40096: ("permanent", "WeCom refused the external_userid"),
    45002: ("permanent", "WeCom says the text is too long"),
    44004: ("permanent", "WeCom says the text is empty"),
    48002: ("permanent", "the application may not call kf/send_msg (API forbidden)"),
    60020: ("permanent", "this server's IP address is not trusted by the WeCom application"),
}


def classify_send_errcode(errcode: int, errmsg: str) -> SendResult:
    """The result of a ``kf/send_msg`` answered with ``errcode`` (after any token refresh)."""
    code = str(errcode)
    if errcode == 0:
        return SendResult("sent", code=code)
    if errcode == -1:
        return SendResult("transient", reason="WeCom is busy (-1)", code=code, retry_after=5.0)
    if errcode == 45009:
        return SendResult("transient", reason="WeCom API call limit reached (45009)", code=code, retry_after=300.0)
    if errcode == 45033:
        return SendResult("transient", reason="too many concurrent WeCom API calls (45033)", code=code, retry_after=5.0)
    if errcode in TOKEN_ERRCODES:
        return SendResult("transient", reason=f"WeCom refused the access token ({errcode})", code=code)
    if errcode in SEND_ERRCODES:
        outcome, reason = SEND_ERRCODES[errcode]
        return SendResult(outcome, reason=f"{reason} ({errcode})", code=code)  # type: ignore[arg-type]
    detail = f": {errmsg}" if errmsg else ""
    return SendResult("permanent", reason=f"WeCom error {errcode}{detail}", code=code)


def classify_token_answer(response: HttpResponse) -> tuple[str, float] | SendResult:
    """``(token, expires_in)`` from a ``gettoken`` answer, or the send's result without one."""
    data = response.data
    errcode = errcode_of(data)
    if isinstance(data, dict) and isinstance(data.get("access_token"), str) and data["access_token"] and not errcode:
        return data["access_token"], lifetime_s(data.get("expires_in"))
    if errcode is None:
        return classify_http_status(response.status, PROVIDER)
    code = str(errcode)
    if errcode in (-1, 45009, 45033):
        result = classify_send_errcode(errcode, "")
        return SendResult(result.outcome, reason=f"token: {result.reason}", code=code, retry_after=result.retry_after)
    if errcode in (40001, 40013, 41002, 41004, 40091):
        return SendResult(
            "permanent", reason=f"WeCom refused the corp id or secret when asked for a token ({errcode})", code=code
        )
    return SendResult("permanent", reason=f"WeCom token error {errcode}: {errmsg_of(data)}".rstrip(": "), code=code)


def part_msgid(delivery_id: uuid.UUID, index: int) -> str:
    """Our ``msgid`` for part ``index`` of a delivery: 32 characters of ``[0-9a-f]`` (WeCom allows
    up to 32 of ``[0-9a-zA-Z_-]``), the same on every attempt."""
    if index == 0:
        return delivery_id.hex
    return uuid.uuid5(delivery_id, f"part-{index}").hex


class WeComAdapter:
    """``Adapter`` for channel ``wecom``: route ``external_userid`` (required) and ``open_kfid``
    (else the configured default account)."""

    channel = "wecom"

    def __init__(
        self,
        *,
        api_base: str,
        corp_id: str,
        corp_secret: str,
        default_open_kfid: str | None = None,
        http: HttpClient | None = None,
        text_max_bytes: int = TEXT_MAX_BYTES,
        max_parts: int = MAX_PARTS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._api_base = api_base.rstrip("/")
        self._corp_id = corp_id
        self._corp_secret = corp_secret
        self._default_open_kfid = default_open_kfid or None
        self._http = http or AiohttpClient()
        self._text_max_bytes = text_max_bytes
        self._max_parts = max_parts
        self.tokens = TokenCache(self._fetch_token, clock=clock)
        self._progress = PartProgress()

    @classmethod
    def from_settings(cls, settings: Any, *, http: HttpClient | None = None) -> WeComAdapter:
        return cls(
            api_base=settings.wecom_api_base,
            corp_id=settings.wecom_corp_id,
            corp_secret=settings.wecom_corp_secret.get_secret_value(),
            default_open_kfid=settings.wecom_open_kfid,
            http=http or client_from_settings(settings),
            text_max_bytes=settings.wecom_text_max_bytes,
        )

    async def _fetch_token(self, _refused: str | None) -> tuple[str, float]:
        query = urlencode({"corpid": self._corp_id, "corpsecret": self._corp_secret})
        try:
            response = await self._http.request("GET", f"{self._api_base}/cgi-bin/gettoken?{query}")
        except TransportError as exc:
            raise TokenUnavailable(transport_failure(exc)) from exc
        answer = classify_token_answer(response)
        if isinstance(answer, SendResult):
            raise TokenUnavailable(answer)
        return answer

    async def send(self, message: OutboundMessage) -> SendResult:
        external_userid = message.route.get("external_userid")
        if not isinstance(external_userid, str) or not external_userid.strip():
            return SendResult("undeliverable", reason="no WeCom external_userid for this customer")
        open_kfid = message.route.get("open_kfid") or self._default_open_kfid
        if not isinstance(open_kfid, str) or not open_kfid:
            return SendResult(
                "undeliverable", reason="no WeCom customer-service account (open_kfid) for this conversation"
            )
        if not self._corp_id or not self._corp_secret:
            return SendResult("permanent", reason="WeCom is not configured (NOTIFY_WECOM_CORP_ID / _SECRET)")
        parts = split_text(
            message.body_text,
            max_bytes=self._text_max_bytes,
            max_parts=self._max_parts,
            note=truncation_note(message.language),
        )
        if not parts:
            return SendResult("permanent", reason="the reply has no text to send")

        async def send_one(index: int, text: str) -> SendResult:
            payload = {
                "touser": external_userid,
                "open_kfid": open_kfid,
                "msgid": part_msgid(message.delivery_id, index),
                "msgtype": "text",
                "text": {"content": text},
            }

            async def attempt(token: str) -> HttpResponse:
                url = f"{self._api_base}/cgi-bin/kf/send_msg?{urlencode({'access_token': token})}"
                return await self._http.request("POST", url, json=payload)

            answer = await call_with_token(
                tokens=self.tokens,
                attempt=attempt,
                token_rejected=lambda r: errcode_of(r.data) in TOKEN_ERRCODES,
                provider=PROVIDER,
            )
            if isinstance(answer, SendResult):
                return answer
            errcode = errcode_of(answer.data)
            if errcode is None or answer.status >= 400:
                return classify_http_status(answer.status, PROVIDER)
            result = classify_send_errcode(errcode, errmsg_of(answer.data))
            if result.outcome == "sent":
                msgid = answer.data.get("msgid")
                msgid = msgid[:200] if isinstance(msgid, str) and msgid else payload["msgid"]
                return SendResult("sent", code=result.code, provider_id=msgid)
            return result

        return await send_parts(
            delivery_id=message.delivery_id, parts=parts, progress=self._progress, send_one=send_one
        )

    async def close(self) -> None:
        await self._http.close()
