"""Replies to DingTalk (钉钉) robot conversations.

Two ways out, in this order:

1. **The session webhook** the robot's callback carried (route ``session_webhook``, valid until
   ``session_webhook_expires_at``, epoch milliseconds): ``POST`` ``{"msgtype": "text", "text":
   {"content": ...}}``, answered ``{"errcode": 0, "errmsg": "ok"}``. It needs no token and lands in
   the very chat the customer wrote in (a group included), so it is preferred while it lasts.
   It is a bearer URL taken from customer data, so it is used only when its scheme, host and port
   are those of the configured DingTalk origin (``NOTIFY_DINGTALK_OAPI_BASE``): an event cannot
   make notify-svc post to an address of its choosing.
2. **The robot's one-to-one message API** once the webhook has expired, is missing, or was
   refused: ``POST {api_base}/v1.0/robot/oToMessages/batchSend`` with header
   ``x-acs-dingtalk-access-token`` and ``{"robotCode", "userIds": [sender_staff_id], "msgKey":
   "sampleText", "msgParam": "{\\"content\\": ...}"}``; the token comes from ``POST
   {api_base}/v1.0/oauth2/accessToken`` ``{"appKey", "appSecret"}`` and is cached (tokens.py).

No staff id and no usable webhook: ``undeliverable``. The classification tables are the pure
functions below and docs/channels/outbound.md.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from .base import OutboundMessage, SendResult
from ._common import (
    RATE_LIMITED_RETRY_AFTER_S,
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

PROVIDER = "DingTalk"
#: our cut for one text message; DingTalk documents its limits loosely, this stays well inside
TEXT_MAX_BYTES = 4000
MAX_PARTS = 4
#: a webhook this close to its expiry is not used: the request could arrive after it
WEBHOOK_EXPIRY_MARGIN_MS = 10_000

#: session webhook errcodes meaning "slow down" (130101 "send too fast"; 90018 call limit)
WEBHOOK_RATE_ERRCODES = frozenset({130101, 90018})
#: v1.0 API error codes meaning the access token is not (or no longer) valid
TOKEN_ERROR_CODES = frozenset({"InvalidAuthentication", "invalidParameter.token.invalid"})
#: substrings of v1.0 API error codes that mean a rate limit ("Forbidden.AccessDenied.QpsLimitForApi",
#: "Throttling.Api", ...)
RATE_CODE_MARKERS = ("QpsLimit", "Throttling", "RateLimit")


def webhook_usable(url: object, expires_at_ms: object, *, now_ms: int, allowed_origin: str) -> bool:
    """Whether the session webhook may be used: a string URL on the configured DingTalk origin,
    not expiring within ``WEBHOOK_EXPIRY_MARGIN_MS``. A webhook without an expiry is tried (the
    callback did not say; DingTalk's answer decides)."""
    if not isinstance(url, str) or not url:
        return False
    parts, allowed = urlsplit(url), urlsplit(allowed_origin)
    if (parts.scheme, parts.netloc.lower()) != (allowed.scheme, allowed.netloc.lower()) or parts.username:
        return False
    if expires_at_ms is None or expires_at_ms == "":
        return True
    if isinstance(expires_at_ms, bool):
        return False
    try:
        expires = int(expires_at_ms)
    except (TypeError, ValueError):
        return False
    return expires - WEBHOOK_EXPIRY_MARGIN_MS > now_ms


def classify_webhook_answer(response: HttpResponse) -> SendResult:
    """A session webhook's answer. A refusal other than a rate limit is ``permanent`` here; the
    adapter then falls back to the one-to-one API when it has a staff id."""
    errcode = errcode_of(response.data)
    if errcode is None or response.status >= 400:
        return classify_http_status(response.status, PROVIDER)
    code = str(errcode)
    if errcode == 0:
        return SendResult("sent", code=code)
    if errcode in WEBHOOK_RATE_ERRCODES:
        return SendResult(
            "transient",
            reason=f"DingTalk rate limit on the session webhook ({errcode})",
            code=code,
            retry_after=RATE_LIMITED_RETRY_AFTER_S,
        )
    if errcode == -1:
        return SendResult("transient", reason="DingTalk is busy (-1)", code=code, retry_after=5.0)
    detail = errmsg_of(response.data)
    return SendResult("permanent", reason=f"DingTalk refused the session webhook ({errcode}{': ' + detail if detail else ''})", code=code)


def api_error_code(response: HttpResponse) -> str | None:
    """The ``code`` of a v1.0 API error answer (``{"code", "message", "requestid"}``)."""
    data = response.data
    if isinstance(data, dict) and isinstance(data.get("code"), str):
        return data["code"]
    return None


def token_rejected(response: HttpResponse) -> bool:
    return response.status == 401 or api_error_code(response) in TOKEN_ERROR_CODES


def classify_api_error(response: HttpResponse) -> SendResult:
    """A v1.0 API answer that is not a 2xx: rate limits and server errors transient, the rest
    (bad robot code, stopped robot, bad parameters, credentials) permanent with DingTalk's code."""
    code = api_error_code(response)
    if response.status == 429 or (code and any(marker in code for marker in RATE_CODE_MARKERS)):
        return SendResult(
            "transient",
            reason=f"DingTalk rate limit ({code or response.status})",
            code=code or str(response.status),
            retry_after=RATE_LIMITED_RETRY_AFTER_S,
        )
    if code is None or response.status >= 500:
        return classify_http_status(response.status, PROVIDER)
    message = errmsg_of(response.data)
    return SendResult(
        "permanent", reason=f"DingTalk error {code}{': ' + message if message else ''}", code=code
    )


def classify_batch_send(response: HttpResponse, staff_id: str) -> SendResult:
    """``oToMessages/batchSend`` answered: 2xx lists the staff ids it could not reach or held back."""
    if not 200 <= response.status < 300:
        return classify_api_error(response)
    data = response.data
    if not isinstance(data, dict):
        return classify_http_status(response.status, PROVIDER)
    if staff_id in _id_list(data.get("invalidStaffIdList")):
        return SendResult(
            "undeliverable",
            reason="DingTalk cannot deliver to this staff id (unknown, left the company, or outside the robot's reach)",
            code="invalidStaffId",
        )
    if staff_id in _id_list(data.get("flowControlledStaffIdList")):
        return SendResult(
            "transient",
            reason="DingTalk held the message back (flow control for this staff member)",
            code="flowControlled",
            retry_after=RATE_LIMITED_RETRY_AFTER_S,
        )
    query_key = data.get("processQueryKey")
    return SendResult("sent", provider_id=query_key[:200] if isinstance(query_key, str) and query_key else None, code="0")


def _id_list(value: object) -> list[str]:
    """A list of ids from the answer, or none when the field is missing or not a list (a string
    would otherwise match by substring)."""
    return [item for item in value if isinstance(item, str)] if isinstance(value, list) else []


class DingTalkAdapter:
    """``Adapter`` for channel ``dingtalk`` (see the module docstring for the order of ways out)."""

    channel = "dingtalk"

    def __init__(
        self,
        *,
        api_base: str,
        oapi_base: str,
        app_key: str,
        app_secret: str,
        robot_code: str | None = None,
        http: HttpClient | None = None,
        text_max_bytes: int = TEXT_MAX_BYTES,
        max_parts: int = MAX_PARTS,
        clock: Callable[[], float] = time.monotonic,
        now_ms: Callable[[], int] = lambda: int(time.time() * 1000),
    ) -> None:
        self._api_base = api_base.rstrip("/")
        self._oapi_base = oapi_base.rstrip("/")
        self._app_key = app_key
        self._app_secret = app_secret
        # an enterprise-internal robot's code is its app key unless configured otherwise
        self._robot_code = robot_code or app_key or None
        self._http = http or AiohttpClient()
        self._text_max_bytes = text_max_bytes
        self._max_parts = max_parts
        self._now_ms = now_ms
        self.tokens = TokenCache(self._fetch_token, clock=clock)
        self._progress = PartProgress()

    @classmethod
    def from_settings(cls, settings: Any, *, http: HttpClient | None = None) -> DingTalkAdapter:
        return cls(
            api_base=settings.dingtalk_api_base,
            oapi_base=settings.dingtalk_oapi_base,
            app_key=settings.dingtalk_app_key,
            app_secret=settings.dingtalk_app_secret.get_secret_value(),
            robot_code=settings.dingtalk_robot_code or None,
            http=http or client_from_settings(settings),
            text_max_bytes=settings.dingtalk_text_max_bytes,
        )

    async def _fetch_token(self, _refused: str | None) -> tuple[str, float]:
        try:
            response = await self._http.request(
                "POST",
                f"{self._api_base}/v1.0/oauth2/accessToken",
                json={"appKey": self._app_key, "appSecret": self._app_secret},
            )
        except TransportError as exc:
            raise TokenUnavailable(transport_failure(exc)) from exc
        data = response.data
        if 200 <= response.status < 300 and isinstance(data, dict) and isinstance(data.get("accessToken"), str):
            return data["accessToken"], lifetime_s(data.get("expireIn"))
        result = classify_api_error(response) if response.status >= 300 else classify_http_status(response.status, PROVIDER)
        if result.outcome == "permanent":
            result = SendResult(
                "permanent",
                reason=f"DingTalk refused the app key or secret when asked for a token ({result.code})",
                code=result.code,
            )
        raise TokenUnavailable(result)

    async def _via_webhook(self, url: str, text: str) -> SendResult:
        try:
            response = await self._http.request("POST", url, json={"msgtype": "text", "text": {"content": text}})
        except TransportError as exc:
            return transport_failure(exc)
        return classify_webhook_answer(response)

    async def _via_api(self, staff_id: str, robot_code: str, text: str) -> SendResult:
        payload = {
            "robotCode": robot_code,
            "userIds": [staff_id],
            "msgKey": "sampleText",
            # msgParam is a JSON document inside a string, Chinese unescaped like the outer body
            "msgParam": json.dumps({"content": text}, ensure_ascii=False),
        }

        async def attempt(token: str) -> HttpResponse:
            return await self._http.request(
                "POST",
                f"{self._api_base}/v1.0/robot/oToMessages/batchSend",
                json=payload,
                headers={"x-acs-dingtalk-access-token": token},
            )

        answer = await call_with_token(
            tokens=self.tokens, attempt=attempt, token_rejected=token_rejected, provider=PROVIDER
        )
        if isinstance(answer, SendResult):
            return answer
        return classify_batch_send(answer, staff_id)

    async def send(self, message: OutboundMessage) -> SendResult:
        route = message.route
        webhook = route.get("session_webhook")
        staff_id = route.get("sender_staff_id")
        staff_id = staff_id if isinstance(staff_id, str) and staff_id.strip() else None
        robot_code = route.get("robot_code") or self._robot_code
        use_webhook = webhook_usable(
            webhook,
            route.get("session_webhook_expires_at"),
            now_ms=self._now_ms(),
            allowed_origin=self._oapi_base,
        )
        if not use_webhook and staff_id is None:
            return SendResult(
                "undeliverable",
                reason="no valid DingTalk session webhook (missing or expired) and no staff id to message",
            )
        parts = split_text(
            message.body_text,
            max_bytes=self._text_max_bytes,
            max_parts=self._max_parts,
            note=truncation_note(message.language),
        )
        if not parts:
            return SendResult("permanent", reason="the reply has no text to send")
        api_ready = staff_id is not None and bool(robot_code) and bool(self._app_key and self._app_secret)

        async def send_one(_index: int, text: str) -> SendResult:
            nonlocal use_webhook
            if use_webhook:
                result = await self._via_webhook(webhook, text)  # type: ignore[arg-type]
                if result.outcome != "permanent":
                    return result
                # the webhook was refused (expired early, chat dissolved): the API may still reach them
                use_webhook = False
                if staff_id is None:
                    return SendResult("undeliverable", reason=f"{result.reason}, and there is no staff id to message", code=result.code)
            if not api_ready:
                return SendResult(
                    "permanent",
                    reason="DingTalk robot messages are not configured (NOTIFY_DINGTALK_APP_KEY / _APP_SECRET / _ROBOT_CODE)",
                )
            return await self._via_api(staff_id, robot_code, text)  # type: ignore[arg-type]

        return await send_parts(
            delivery_id=message.delivery_id, parts=parts, progress=self._progress, send_one=send_one
        )

    async def close(self) -> None:
        await self._http.close()
