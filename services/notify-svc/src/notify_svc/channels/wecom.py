"""WeCom (企业微信): replies to customers through customer contact (微信客服, ``kf/send_msg``), and
notifications to employees as application messages (``message/send``).

The route says which: ``external_userid`` is a customer (a WeChat user outside the company),
``userid`` a member of the company (an agent, from ``PUT /v1/notification-contacts``). The two
are different WeCom applications with different secrets, so each has its own token.

**Customers.** A WeChat user who opened a conversation with the company's customer-service account (``open_kfid``)
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

**Employees.** ``POST {api_base}/cgi-bin/message/send?access_token=...`` with ``{"touser": userid,
"msgtype": "markdown", "agentid": <app>, "markdown": {"content": ...}, "enable_duplicate_check": 1,
"duplicate_check_interval": 1800}``, the token fetched with the self-built application's secret
(``NOTIFY_WECOM_AGENT_SECRET``). The subject and body are plain text with customers' words in them,
so they are escaped into markdown (markdown.py); ``text`` instead of ``markdown`` is a setting
(members who read WeCom messages in WeChat do not see markdown). ``touser`` addresses several
members with ``a|b`` and the whole visible range with ``@all``: a contact id is sent only when it
is one WeCom userid. WeCom's duplicate check keeps a copy resent after a crash (the same content
within 30 minutes) from reaching the agent twice. A member outside the application's visible
range (81013, or named in ``invaliduser``) is ``undeliverable``; an untrusted server IP (60020) or
a secret of another application (301002) ``permanent``; the frequency limit (45009) transient.
"""

from __future__ import annotations

import re
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
from .markdown import notification_markdown
from .text import split_text, truncation_note
from .tokens import TokenCache, TokenUnavailable, lifetime_s

PROVIDER = "WeCom"
#: WeCom's documented limit of a text message's content, in UTF-8 bytes
TEXT_MAX_BYTES = 2048
#: and of an application message's markdown content
MARKDOWN_MAX_BYTES = 2048
MAX_PARTS = 4
#: WeCom drops the same content to the same member within this many seconds (the documented maximum
#: is 4 hours; half an hour covers a resend after a crash and the engine's first retries)
DUPLICATE_CHECK_INTERVAL_S = 1800
#: a member's userid as WeCom defines it: 1 to 64 of letters, digits and ``_-@.``, starting with
#: a letter or digit (so never ``@all``, never a ``|`` list)
_USERID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")
_AGENT_ID = re.compile(r"[0-9]{1,18}")

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

_NOT_A_MEMBER = "WeCom does not know this userid (a member of the company)"

#: errcodes of ``message/send`` (application messages to members) other than token errors
APP_ERRCODES: dict[int, tuple[str, str]] = {
    81013: (
        "undeliverable",
        "WeCom: the userid is not in the application's visible range (or no such member); add the "
        "member to the visible range of the application or correct the contact",
    ),
    40003: ("undeliverable", _NOT_A_MEMBER),
    46004: ("undeliverable", _NOT_A_MEMBER),
    60111: ("undeliverable", _NOT_A_MEMBER),
    60020: ("permanent", "this server's IP address is not in the WeCom application's trusted IP list"),
    301002: (
        "permanent",
        "the access token belongs to another WeCom application: NOTIFY_WECOM_AGENT_SECRET is not the "
        "secret of NOTIFY_WECOM_AGENT_ID",
    ),
    40056: ("permanent", "WeCom refused the agent id (NOTIFY_WECOM_AGENT_ID)"),
    41011: ("permanent", "WeCom says the agent id is missing (NOTIFY_WECOM_AGENT_ID)"),
    50003: ("permanent", "the WeCom application is disabled"),
    48002: ("permanent", "the application may not call message/send (API forbidden)"),
    40008: ("permanent", "WeCom refused the message type"),
    45002: ("permanent", "WeCom says the content is too long"),
    44004: ("permanent", "WeCom says the content is empty"),
}
#: errcodes worth another attempt: (reason, seconds to wait)
APP_TRANSIENT: dict[int, tuple[str, float]] = {
    -1: ("WeCom is busy", 5.0),
    # the per-member and per-application frequency limits count per minute and per hour
    45009: ("WeCom API frequency limit reached", 60.0),
    45033: ("too many concurrent WeCom API calls", 5.0),
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


def single_userid(value: object) -> str | None:
    """``value`` as one WeCom member's userid (trimmed), or ``None`` when it is not one: ``@all``
    and ``a|b`` would address the whole visible range or several people."""
    if not isinstance(value, str):
        return None
    value = value.strip()
    return value if _USERID.fullmatch(value) else None


def _bar_list(value: object) -> list[str]:
    """WeCom's ``"a|b"`` lists in an answer (``invaliduser``), lower-cased (WeCom compares userids
    without case), or none."""
    return value.lower().split("|") if isinstance(value, str) and value else []


def classify_app_send(data: object, userid: str) -> SendResult:
    """The result of a ``message/send`` to ``userid`` answered with ``data`` (after any token
    refresh). WeCom answers ``errcode`` 0 when *some* recipient was reached and names the others
    in ``invaliduser`` / ``unlicenseduser``: with one recipient, being named there means not
    reached."""
    errcode = errcode_of(data)
    code = str(errcode)
    if errcode == 0 and isinstance(data, dict):
        if userid.lower() in _bar_list(data.get("invaliduser")):
            return SendResult(
                "undeliverable",
                reason="WeCom: the userid is not in the application's visible range (or no such member)",
                code="invaliduser",
            )
        if userid.lower() in _bar_list(data.get("unlicenseduser")):
            return SendResult(
                "undeliverable", reason="WeCom: the member has no API licence (接口许可) for this application",
                code="unlicenseduser",
            )
        msgid = data.get("msgid")
        return SendResult("sent", code=code, provider_id=msgid[:200] if isinstance(msgid, str) and msgid else None)
    if errcode is None:
        return SendResult("transient", reason="WeCom answered without an errcode", code="none")
    if errcode in APP_TRANSIENT:
        reason, wait = APP_TRANSIENT[errcode]
        return SendResult("transient", reason=f"{reason} ({errcode})", code=code, retry_after=wait)
    if errcode in TOKEN_ERRCODES:
        return SendResult("transient", reason=f"WeCom refused the access token ({errcode})", code=code)
    if errcode in APP_ERRCODES:
        outcome, reason = APP_ERRCODES[errcode]
        return SendResult(outcome, reason=f"{reason} ({errcode})", code=code)  # type: ignore[arg-type]
    message = errmsg_of(data)
    return SendResult("permanent", reason=f"WeCom error {errcode}{': ' + message if message else ''}", code=code)


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
    if errcode == 60020:
        return SendResult("permanent", reason=f"token: {APP_ERRCODES[60020][1]} (60020)", code=code)
    return SendResult("permanent", reason=f"WeCom token error {errcode}: {errmsg_of(data)}".rstrip(": "), code=code)


def part_msgid(delivery_id: uuid.UUID, index: int) -> str:
    """Our ``msgid`` for part ``index`` of a delivery: 32 characters of ``[0-9a-f]`` (WeCom allows
    up to 32 of ``[0-9a-zA-Z_-]``), the same on every attempt."""
    if index == 0:
        return delivery_id.hex
    return uuid.uuid5(delivery_id, f"part-{index}").hex


class WeComAdapter:
    """``Adapter`` for channel ``wecom``. Customers: route ``external_userid`` and ``open_kfid``
    (else the configured default account). Members (agents): route ``userid``, sent as an
    application message of ``agent_id`` (see the module docstring)."""

    channel = "wecom"

    def __init__(
        self,
        *,
        api_base: str,
        corp_id: str,
        corp_secret: str,
        default_open_kfid: str | None = None,
        agent_id: str | int | None = None,
        agent_secret: str = "",
        agent_msgtype: str = "markdown",
        http: HttpClient | None = None,
        text_max_bytes: int = TEXT_MAX_BYTES,
        markdown_max_bytes: int = MARKDOWN_MAX_BYTES,
        max_parts: int = MAX_PARTS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._api_base = api_base.rstrip("/")
        self._corp_id = corp_id
        self._corp_secret = corp_secret
        self._default_open_kfid = default_open_kfid or None
        agent = str(agent_id).strip() if agent_id is not None else ""
        self._agent_id = int(agent) if _AGENT_ID.fullmatch(agent) else None
        self._agent_secret = agent_secret
        if agent_msgtype not in ("markdown", "text"):
            raise ValueError("agent_msgtype must be 'markdown' or 'text'")
        self._agent_msgtype = agent_msgtype
        self._http = http or AiohttpClient()
        self._text_max_bytes = text_max_bytes
        self._markdown_max_bytes = markdown_max_bytes
        self._max_parts = max_parts
        #: the 微信客服 application's token (customers), and the self-built application's (members)
        self.tokens = TokenCache(self._fetch_token, clock=clock)
        self.app_tokens = TokenCache(self._fetch_app_token, clock=clock)
        self._progress = PartProgress()

    @classmethod
    def from_settings(cls, settings: Any, *, http: HttpClient | None = None) -> WeComAdapter:
        return cls(
            api_base=settings.wecom_api_base,
            corp_id=settings.wecom_corp_id,
            corp_secret=settings.wecom_corp_secret.get_secret_value(),
            default_open_kfid=settings.wecom_open_kfid,
            agent_id=settings.wecom_agent_id,
            agent_secret=settings.wecom_agent_secret.get_secret_value(),
            agent_msgtype=settings.wecom_agent_msgtype,
            http=http or client_from_settings(settings),
            text_max_bytes=settings.wecom_text_max_bytes,
        )

    async def _fetch_token(self, _refused: str | None) -> tuple[str, float]:
        return await self._gettoken(self._corp_secret)

    async def _fetch_app_token(self, _refused: str | None) -> tuple[str, float]:
        return await self._gettoken(self._agent_secret)

    async def _gettoken(self, secret: str) -> tuple[str, float]:
        query = urlencode({"corpid": self._corp_id, "corpsecret": secret})
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
        if "userid" in message.route and not external_userid:
            return await self._send_to_member(message)
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

    def _member_parts(self, message: OutboundMessage) -> list[str]:
        """The message's parts for a member: escaped markdown (subject in bold) or plain text."""
        note = truncation_note(message.language, notification=True)
        if self._agent_msgtype == "markdown":
            content = notification_markdown(message.subject, message.body_text)
            limit = self._markdown_max_bytes
        else:
            subject, body = " ".join((message.subject or "").split()), message.body_text.strip()
            content = f"{subject}\n\n{body}" if subject and body else subject or body
            limit = self._text_max_bytes
        return split_text(content, max_bytes=limit, max_parts=self._max_parts, note=note)

    async def _send_to_member(self, message: OutboundMessage) -> SendResult:
        userid = single_userid(message.route.get("userid"))
        if userid is None:
            return SendResult(
                "undeliverable",
                reason="no single WeCom userid for this user (1-64 letters, digits or _-@., not @all "
                "nor a|b list): correct the user's notification contact",
            )
        if not self._corp_id or not self._agent_secret or self._agent_id is None:
            return SendResult(
                "permanent",
                reason="WeCom application messages are not configured (NOTIFY_WECOM_CORP_ID / "
                "NOTIFY_WECOM_AGENT_ID / NOTIFY_WECOM_AGENT_SECRET)",
            )
        parts = self._member_parts(message)
        if not parts:
            return SendResult("permanent", reason="the notification has no text to send")
        msgtype = self._agent_msgtype

        async def send_one(_index: int, content: str) -> SendResult:
            payload = {
                "touser": userid,
                "msgtype": msgtype,
                "agentid": self._agent_id,
                msgtype: {"content": content},
                "enable_duplicate_check": 1,
                "duplicate_check_interval": DUPLICATE_CHECK_INTERVAL_S,
            }

            async def attempt(token: str) -> HttpResponse:
                url = f"{self._api_base}/cgi-bin/message/send?{urlencode({'access_token': token})}"
                return await self._http.request("POST", url, json=payload)

            answer = await call_with_token(
                tokens=self.app_tokens,
                attempt=attempt,
                token_rejected=lambda r: errcode_of(r.data) in TOKEN_ERRCODES,
                provider=PROVIDER,
            )
            if isinstance(answer, SendResult):
                return answer
            if errcode_of(answer.data) is None or answer.status >= 400:
                return classify_http_status(answer.status, PROVIDER)
            return classify_app_send(answer.data, userid)

        return await send_parts(
            delivery_id=message.delivery_id, parts=parts, progress=self._progress, send_one=send_one
        )

    async def close(self) -> None:
        await self._http.close()
