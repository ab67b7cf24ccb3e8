"""Replies on a WeChat Official Account (公众号): customer-service messages (客服消息).

``POST {api_base}/cgi-bin/message/custom/send?access_token=...`` with
``{"touser": openid, "msgtype": "text", "text": {"content": ...}}``; the token comes from
``GET {api_base}/cgi-bin/token?grant_type=client_credential&appid=...&secret=...`` and is cached
per account until shortly before its ``expires_in`` (tokens.py).

With ``use_stable_token`` the token comes from ``POST {api_base}/cgi-bin/stable_token`` instead,
which hands every caller the same token until it expires: several notify-svc replicas (or other
systems using the same official account) then stop invalidating each other's tokens. After a
refusal the endpoint is asked normally first (another replica may already have replaced the
token) and with ``force_refresh: true`` only if it hands back the very token that was refused:
WeChat allows few forced refreshes a day, and each revokes the token the other replicas hold.

An account may only send customer-service messages to a customer who wrote to it within the last
48 hours, and only a bounded number of them; outside that window WeChat answers 45015 (or 45047
when the count is used up). Retrying cannot open the window, only the customer writing again can,
so both are ``undeliverable`` with a reason the agent can act on (answer by another channel).

The error-code table is ``classify_send_errcode`` (pure, table-tested) and
docs/channels/outbound.md; long replies are split (text.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta, timezone
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

PROVIDER = "WeChat"
#: WeChat's limit for the text of one customer-service message, in UTF-8 bytes
TEXT_MAX_BYTES = 2048
#: parts of one long reply; each costs one message of the customer's 48-hour allowance
MAX_PARTS = 4

#: the token was refused: fetch a new one and repeat once (40001 invalid credential,
#: 40014 invalid access_token, 42001 access_token expired)
TOKEN_ERRCODES = frozenset({40001, 40014, 42001})
#: WeChat's API call quota resets at midnight, Beijing time
_BEIJING = timezone(timedelta(hours=8))

_WINDOW_REASON = (
    "outside WeChat's 48-hour customer-service window: the customer has not written to the "
    "official account in the last 48 hours (or unfollowed it); the reply can only go out after "
    "the customer writes again"
)

#: errcodes of the send call that are not token errors (see ``classify_send_errcode``)
SEND_ERRCODES: dict[int, tuple[str, str]] = {
    45015: ("undeliverable", _WINDOW_REASON),
    45047: (
        "undeliverable",
        "WeChat's limit of customer-service messages since the customer last wrote is used up; "
        "the reply can only go out after the customer writes again",
    ),
    43004: ("undeliverable", "the customer no longer follows the official account"),
    40003: ("permanent", "WeChat does not know this openid for this official account"),
    45002: ("permanent", "WeChat says the text is too long"),
    44004: ("permanent", "WeChat says the text is empty"),
    48001: ("permanent", "the official account is not authorized for customer-service messages"),
    40164: ("permanent", "this server's IP address is not on the official account's IP whitelist"),
}


def seconds_until_quota_reset(now: datetime) -> float:
    """Seconds from ``now`` to the next midnight in Beijing (UTC+8), when WeChat's daily API call
    quotas start over; at least a minute."""
    local = now.astimezone(_BEIJING)
    midnight = (local + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return max(60.0, (midnight - local).total_seconds())


def classify_send_errcode(errcode: int, errmsg: str, *, now: datetime) -> SendResult:
    """The result of a send answered with ``errcode`` (token errors are handled before this)."""
    code = str(errcode)
    if errcode == 0:
        return SendResult("sent", code=code)
    if errcode == -1:
        return SendResult("transient", reason="WeChat is busy (-1)", code=code, retry_after=5.0)
    if errcode == 45009:
        return SendResult(
            "transient",
            reason="the official account's daily API quota is used up (45009)",
            code=code,
            retry_after=seconds_until_quota_reset(now),
        )
    if errcode == 45011:
        return SendResult(
            "transient", reason="WeChat API calls too frequent (45011)", code=code, retry_after=60.0
        )
    if errcode in TOKEN_ERRCODES:
        return SendResult("transient", reason=f"WeChat refused the access token ({errcode})", code=code)
    if errcode in SEND_ERRCODES:
        outcome, reason = SEND_ERRCODES[errcode]
        return SendResult(outcome, reason=f"{reason} ({errcode})", code=code)  # type: ignore[arg-type]
    detail = f": {errmsg}" if errmsg else ""
    return SendResult("permanent", reason=f"WeChat error {errcode}{detail}", code=code)


def classify_token_answer(response: HttpResponse, *, now: datetime) -> tuple[str, float] | SendResult:
    """``(token, expires_in)`` from a ``/cgi-bin/token`` answer, or the send's result when there is
    no token: bad credentials and a refused IP are permanent (an operator must act), -1 and quota
    errors transient."""
    data = response.data
    if isinstance(data, dict) and isinstance(data.get("access_token"), str) and data["access_token"]:
        return data["access_token"], lifetime_s(data.get("expires_in"))
    errcode = errcode_of(data)
    if errcode is None:
        return classify_http_status(response.status, PROVIDER)
    code = str(errcode)
    if errcode in (-1, 45009, 45011):
        result = classify_send_errcode(errcode, errmsg_of(data), now=now)
        return SendResult(result.outcome, reason=f"token: {result.reason}", code=code, retry_after=result.retry_after)
    if errcode in (40001, 40013, 40125, 41002, 41004):
        return SendResult(
            "permanent",
            reason=f"WeChat refused the app id or secret when asked for a token ({errcode})",
            code=code,
        )
    if errcode == 40164:
        return SendResult("permanent", reason=f"token: {SEND_ERRCODES[40164][1]} (40164)", code=code)
    return SendResult(
        "permanent", reason=f"WeChat token error {errcode}: {errmsg_of(data)}".rstrip(": "), code=code
    )


class WeChatAdapter:
    """``Adapter`` for channel ``wechat``. ``accounts`` maps each official account's app id to its
    secret; ``route.app_id`` picks one, else ``default_app_id`` (the only account, usually)."""

    channel = "wechat"

    def __init__(
        self,
        *,
        api_base: str,
        accounts: Mapping[str, str],
        default_app_id: str | None = None,
        http: HttpClient | None = None,
        text_max_bytes: int = TEXT_MAX_BYTES,
        max_parts: int = MAX_PARTS,
        use_stable_token: bool = False,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._api_base = api_base.rstrip("/")
        self._use_stable_token = use_stable_token
        self._accounts = dict(accounts)
        self._default_app_id = default_app_id or (next(iter(self._accounts)) if len(self._accounts) == 1 else None)
        self._http = http or AiohttpClient()
        self._text_max_bytes = text_max_bytes
        self._max_parts = max_parts
        self._clock = clock
        self._now = now
        self._tokens: dict[str, TokenCache] = {}
        self._progress = PartProgress()

    @classmethod
    def from_settings(cls, settings: Any, *, http: HttpClient | None = None) -> WeChatAdapter:
        accounts = {app_id: secret.get_secret_value() for app_id, secret in settings.wechat_app_secrets.items()}
        if settings.wechat_app_id:
            accounts[settings.wechat_app_id] = settings.wechat_app_secret.get_secret_value()
        return cls(
            api_base=settings.wechat_api_base,
            accounts=accounts,
            default_app_id=settings.wechat_app_id or None,
            http=http or client_from_settings(settings),
            text_max_bytes=settings.wechat_text_max_bytes,
            use_stable_token=settings.wechat_stable_token,
        )

    def token_cache(self, app_id: str) -> TokenCache:
        cache = self._tokens.get(app_id)
        if cache is None:
            cache = TokenCache(lambda refused: self._fetch_token(app_id, refused), clock=self._clock)
            self._tokens[app_id] = cache
        return cache

    async def _fetch_token(self, app_id: str, refused: str | None) -> tuple[str, float]:
        credentials = {"grant_type": "client_credential", "appid": app_id, "secret": self._accounts[app_id]}
        if not self._use_stable_token:
            return await self._token_call("GET", f"{self._api_base}/cgi-bin/token?{urlencode(credentials)}")
        url = f"{self._api_base}/cgi-bin/stable_token"
        token, expires_in = await self._token_call("POST", url, {**credentials, "force_refresh": False})
        if refused is not None and token == refused:
            token, expires_in = await self._token_call("POST", url, {**credentials, "force_refresh": True})
        return token, expires_in

    async def _token_call(self, method: str, url: str, body: dict | None = None) -> tuple[str, float]:
        try:
            response = await self._http.request(method, url, json=body)
        except TransportError as exc:
            raise TokenUnavailable(transport_failure(exc)) from exc
        answer = classify_token_answer(response, now=self._now())
        if isinstance(answer, SendResult):
            raise TokenUnavailable(answer)
        return answer

    async def send(self, message: OutboundMessage) -> SendResult:
        openid = message.route.get("openid")
        if not isinstance(openid, str) or not openid.strip():
            return SendResult("undeliverable", reason="no WeChat openid for this customer")
        app_id = message.route.get("app_id") or self._default_app_id
        if not isinstance(app_id, str) or not app_id:
            return SendResult("permanent", reason="WeChat is not configured (NOTIFY_WECHAT_APP_ID)")
        if app_id not in self._accounts:
            return SendResult("permanent", reason=f"no credentials for WeChat official account {app_id}")
        parts = split_text(
            message.body_text,
            max_bytes=self._text_max_bytes,
            max_parts=self._max_parts,
            note=truncation_note(message.language),
        )
        if not parts:
            return SendResult("permanent", reason="the reply has no text to send")
        tokens = self.token_cache(app_id)

        async def send_one(_index: int, text: str) -> SendResult:
            payload = {"touser": openid, "msgtype": "text", "text": {"content": text}}

            async def attempt(token: str) -> HttpResponse:
                url = f"{self._api_base}/cgi-bin/message/custom/send?{urlencode({'access_token': token})}"
                return await self._http.request("POST", url, json=payload)

            answer = await call_with_token(
                tokens=tokens,
                attempt=attempt,
                token_rejected=lambda r: errcode_of(r.data) in TOKEN_ERRCODES,
                provider=PROVIDER,
            )
            if isinstance(answer, SendResult):
                return answer
            errcode = errcode_of(answer.data)
            if errcode is None or answer.status >= 400:
                return classify_http_status(answer.status, PROVIDER)
            result = classify_send_errcode(errcode, errmsg_of(answer.data), now=self._now())
            msgid = answer.data.get("msgid") if isinstance(answer.data, dict) else None
            if result.outcome == "sent" and isinstance(msgid, int | str) and not isinstance(msgid, bool):
                return SendResult("sent", code=result.code, provider_id=str(msgid)[:200])
            return result

        return await send_parts(
            delivery_id=message.delivery_id, parts=parts, progress=self._progress, send_one=send_one
        )

    async def close(self) -> None:
        await self._http.close()
