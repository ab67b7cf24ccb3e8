"""DingTalk (钉钉): replies to customers in robot conversations, and work notifications (工作通知)
to members of the company (agents).

A route with ``userid`` is a member (from ``PUT /v1/notification-contacts``): the message is a
**work notification** of the internal app ``NOTIFY_DINGTALK_AGENT_ID``: ``POST
{oapi_base}/topapi/message/corpconversation/asyncsend_v2?access_token=...`` with ``{"agent_id",
"userid_list": userid, "msg": {"msgtype": "markdown", "markdown": {"title", "text"}}}``, answered
``{"errcode": 0, "task_id", "request_id"}``; the token comes from ``GET
{oapi_base}/gettoken?appkey=...&appsecret=...`` (the same app's key and secret, its own cache).
The subject and body are plain text with customers' words in them, so they are escaped into
markdown (markdown.py). ``userid_list`` is comma-separated: a contact id with a comma would reach
several people, and is not sent. The call is asynchronous: ``sent`` means DingTalk accepted the
task (``provider_id`` is its ``task_id``); DingTalk itself drops the same content to the same
member within a day and past its daily per-member allowance, answering ``ok`` all the same. An
unknown userid (33012) is ``undeliverable``; rate limits (90002, 90006, 90018, 90019) transient.

Replies to customers have two ways out, in this order:

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
import re
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode, urlsplit

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
from .markdown import notification_markdown, plain_title
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

#: oapi errcodes of a refused token (40014 invalid, 42001 expired, 40001 "secret wrong or token
#: invalid"); 88 ("鉴权异常") names its cause in ``sub_code``: one of these, or another (60011: no
#: permission for the API), and without a sub_code it is taken for the token
WORK_NOTICE_TOKEN_CODES = frozenset({40001, 40014, 42001})
#: oapi rate limits: the platform's (90002), the server's (90006), the app's per-second / per-minute
#: (90018), a third-party app's per-company (90019)
WORK_NOTICE_RATE_CODES = frozenset({90002, 90006, 90018, 90019})
#: the company's monthly API allowance is used up: retrying within minutes cannot help
MONTHLY_QUOTA_ERRCODE = 90020
MONTHLY_QUOTA_RETRY_AFTER_S = 3600.0
#: the line break DingTalk documents for markdown (a hard break, spaces on both sides)
MARKDOWN_LINE_BREAK = "  \n  "
_WORK_NOTICE_ENDPOINT = "/topapi/message/corpconversation/asyncsend_v2"
#: a DingTalk userid: printable ASCII, no blank, no comma (``userid_list`` is comma-separated)
_USERID = re.compile(r"[\x21-\x2b\x2d-\x7e]{1,128}")
_AGENT_ID = re.compile(r"[0-9]{1,18}")


def single_userid(value: object) -> str | None:
    """``value`` as one DingTalk userid (trimmed), or ``None`` when it is not one."""
    if not isinstance(value, str):
        return None
    value = value.strip()
    return value if _USERID.fullmatch(value) else None


def _sub_code(data: object) -> str | None:
    if not isinstance(data, dict):
        return None
    value = data.get("sub_code")
    if isinstance(value, bool) or not isinstance(value, int | str) or value == "":
        return None
    return str(value)


def work_notice_token_rejected(response: HttpResponse) -> bool:
    """Whether an oapi answer says the access token is invalid or expired."""
    errcode = errcode_of(response.data)
    if errcode in WORK_NOTICE_TOKEN_CODES:
        return True
    if errcode == 88:
        sub = _sub_code(response.data)
        return sub is None or sub in {str(code) for code in WORK_NOTICE_TOKEN_CODES}
    return False


def _oapi_limits(errcode: int, code: str) -> SendResult | None:
    """The transient answers shared by the token endpoint and the send."""
    if errcode == -1:
        return SendResult("transient", reason="DingTalk is busy (-1)", code=code, retry_after=5.0)
    if errcode in WORK_NOTICE_RATE_CODES:
        return SendResult("transient", reason=f"DingTalk rate limit ({errcode})", code=code,
                          retry_after=RATE_LIMITED_RETRY_AFTER_S)
    if errcode == MONTHLY_QUOTA_ERRCODE:
        return SendResult("transient", reason="the company's monthly DingTalk API allowance is used up (90020)",
                          code=code, retry_after=MONTHLY_QUOTA_RETRY_AFTER_S)
    if errcode == 60020:
        return SendResult("permanent", reason="this server's IP address is not on the DingTalk app's IP whitelist "
                          "(60020)", code=code)
    return None


def classify_work_notice(response: HttpResponse) -> SendResult:
    """``asyncsend_v2`` answered (after any token refresh)."""
    data = response.data
    errcode = errcode_of(data)
    if errcode is None or response.status >= 400:
        return classify_http_status(response.status, PROVIDER)
    sub = _sub_code(data)
    code = f"{errcode}/{sub}" if errcode == 88 and sub else str(errcode)
    if errcode == 0:
        task_id = data.get("task_id")
        ok = isinstance(task_id, int | str) and not isinstance(task_id, bool) and str(task_id) != ""
        return SendResult("sent", code=code, provider_id=str(task_id)[:200] if ok else None)
    if work_notice_token_rejected(response):
        return SendResult("transient", reason=f"DingTalk refused the access token ({code})", code=code)
    if errcode == 33012:
        return SendResult("undeliverable", reason="DingTalk does not know this userid in the company (33012): "
                          "correct the user's notification contact", code=code)
    limited = _oapi_limits(errcode, code)
    if limited is not None:
        return limited
    message = errmsg_of(data)
    if errcode == 88:
        detail = data.get("sub_msg") if isinstance(data.get("sub_msg"), str) else message
        return SendResult("permanent", reason=f"DingTalk refused the call ({code}: {str(detail)[:200]})", code=code)
    return SendResult("permanent", reason=f"DingTalk error {errcode}{': ' + message if message else ''}", code=code)


def classify_oapi_token_answer(response: HttpResponse) -> tuple[str, float] | SendResult:
    """``(token, expires_in)`` from an oapi ``/gettoken`` answer, or the send's result without one."""
    data = response.data
    errcode = errcode_of(data)
    if isinstance(data, dict) and isinstance(data.get("access_token"), str) and data["access_token"] and not errcode:
        return data["access_token"], lifetime_s(data.get("expires_in"))
    if errcode is None or response.status >= 400:
        return classify_http_status(response.status, PROVIDER)
    code = str(errcode)
    limited = _oapi_limits(errcode, code)
    if limited is not None:
        return SendResult(limited.outcome, reason=f"token: {limited.reason}", code=code,
                          retry_after=limited.retry_after)
    return SendResult(
        "permanent", reason=f"DingTalk refused the app key or secret when asked for a token ({errcode})", code=code
    )


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
    """``Adapter`` for channel ``dingtalk``: members by work notification (route ``userid``),
    customers by session webhook or robot (see the module docstring for the order of ways out)."""

    channel = "dingtalk"

    def __init__(
        self,
        *,
        api_base: str,
        oapi_base: str,
        app_key: str,
        app_secret: str,
        robot_code: str | None = None,
        agent_id: str | int | None = None,
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
        agent = str(agent_id).strip() if agent_id is not None else ""
        self._agent_id = int(agent) if _AGENT_ID.fullmatch(agent) else None
        self._http = http or AiohttpClient()
        self._text_max_bytes = text_max_bytes
        self._max_parts = max_parts
        self._now_ms = now_ms
        #: the v1.0 API's token (robot), and the oapi's (work notifications)
        self.tokens = TokenCache(self._fetch_token, clock=clock)
        self.oapi_tokens = TokenCache(self._fetch_oapi_token, clock=clock)
        self._progress = PartProgress()

    @classmethod
    def from_settings(cls, settings: Any, *, http: HttpClient | None = None) -> DingTalkAdapter:
        return cls(
            api_base=settings.dingtalk_api_base,
            oapi_base=settings.dingtalk_oapi_base,
            app_key=settings.dingtalk_app_key,
            app_secret=settings.dingtalk_app_secret.get_secret_value(),
            robot_code=settings.dingtalk_robot_code or None,
            agent_id=settings.dingtalk_agent_id,
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

    async def _fetch_oapi_token(self, _refused: str | None) -> tuple[str, float]:
        query = urlencode({"appkey": self._app_key, "appsecret": self._app_secret})
        try:
            response = await self._http.request("GET", f"{self._oapi_base}/gettoken?{query}")
        except TransportError as exc:
            raise TokenUnavailable(transport_failure(exc)) from exc
        answer = classify_oapi_token_answer(response)
        if isinstance(answer, SendResult):
            raise TokenUnavailable(answer)
        return answer

    async def _work_notice(self, message: OutboundMessage) -> SendResult:
        userid = single_userid(message.route.get("userid"))
        if userid is None:
            return SendResult(
                "undeliverable",
                reason="no single DingTalk userid for this user (printable, no blank, no comma): correct the "
                "user's notification contact",
            )
        if self._agent_id is None or not self._app_key or not self._app_secret:
            return SendResult(
                "permanent",
                reason="DingTalk work notifications are not configured (NOTIFY_DINGTALK_AGENT_ID / _APP_KEY / "
                "_APP_SECRET)",
            )
        content = notification_markdown(message.subject, message.body_text, line_break=MARKDOWN_LINE_BREAK)
        parts = split_text(content, max_bytes=self._text_max_bytes, max_parts=self._max_parts,
                           note=truncation_note(message.language, notification=True))
        if not parts:
            return SendResult("permanent", reason="the notification has no text to send")
        title = plain_title(message.subject, fallback=message.body_text.strip().split("\n", 1)[0])

        async def send_one(index: int, text: str) -> SendResult:
            numbered = title if len(parts) == 1 else plain_title(f"{title} ({index + 1}/{len(parts)})")
            payload = {
                "agent_id": self._agent_id,
                "userid_list": userid,
                "msg": {"msgtype": "markdown", "markdown": {"title": numbered or "-", "text": text}},
            }

            async def attempt(token: str) -> HttpResponse:
                url = f"{self._oapi_base}{_WORK_NOTICE_ENDPOINT}?{urlencode({'access_token': token})}"
                return await self._http.request("POST", url, json=payload)

            answer = await call_with_token(
                tokens=self.oapi_tokens, attempt=attempt, token_rejected=work_notice_token_rejected, provider=PROVIDER
            )
            if isinstance(answer, SendResult):
                return answer
            return classify_work_notice(answer)

        return await send_parts(
            delivery_id=message.delivery_id, parts=parts, progress=self._progress, send_one=send_one
        )

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
        if "userid" in route:
            return await self._work_notice(message)
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
