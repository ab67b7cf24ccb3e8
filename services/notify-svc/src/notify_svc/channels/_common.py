"""What the chat adapters share: classifying an answer that carries no provider error code, and
sending a reply that was split into parts without repeating the parts already delivered."""

from __future__ import annotations

import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import replace

from .base import SendResult
from .http import HttpResponse, TransportError
from .tokens import TokenCache, TokenUnavailable

#: seconds to wait after an HTTP 429 that named no Retry-After (the APIs answer in JSON, not headers)
RATE_LIMITED_RETRY_AFTER_S = 60.0


def transport_failure(exc: TransportError) -> SendResult:
    """No answer at all: try again later (the engine's backoff decides when)."""
    return SendResult("transient", reason=f"no answer from the provider: {exc}", code="transport")


def classify_http_status(status: int, provider: str) -> SendResult:
    """An answer without a usable JSON body, classified by its status alone.

    5xx, 408 and 429 are the provider's or the network's trouble, so they are transient; another
    4xx means our request is wrong and repeating it cannot help. A 2xx without the JSON the API
    documents is treated as transient too: we cannot tell whether it was delivered, and a second
    attempt is better than a reply that silently never arrives.
    """
    if status == 429:
        return SendResult(
            "transient",
            reason=f"{provider} rate limit (HTTP 429)",
            code="429",
            retry_after=RATE_LIMITED_RETRY_AFTER_S,
        )
    if status >= 500 or status == 408:
        return SendResult("transient", reason=f"{provider} answered HTTP {status}", code=str(status))
    if 200 <= status < 300:
        return SendResult(
            "transient", reason=f"{provider} answered HTTP {status} without a JSON body", code=str(status)
        )
    return SendResult("permanent", reason=f"{provider} refused the request (HTTP {status})", code=str(status))


class PartProgress:
    """How many parts of a split reply each delivery already got through, in this process.

    The engine retries a whole ``send``; without this, a reply whose third part hit a transient
    error would repeat its first two parts on the retry. Bounded (oldest forgotten first) and
    in memory only: after a restart a partly sent reply is sent again from its first part, the
    same at-least-once rule as any crash between send and record (docs/channels/outbound.md).
    """

    def __init__(self, max_entries: int = 10_000) -> None:
        self._done: OrderedDict[uuid.UUID, int] = OrderedDict()
        self._max_entries = max_entries

    def get(self, delivery_id: uuid.UUID) -> int:
        return self._done.get(delivery_id, 0)

    def set(self, delivery_id: uuid.UUID, parts_sent: int) -> None:
        self._done[delivery_id] = parts_sent
        self._done.move_to_end(delivery_id)
        while len(self._done) > self._max_entries:
            self._done.popitem(last=False)

    def forget(self, delivery_id: uuid.UUID) -> None:
        self._done.pop(delivery_id, None)


async def send_parts(
    *,
    delivery_id: uuid.UUID,
    parts: list[str],
    progress: PartProgress,
    send_one: Callable[[int, str], Awaitable[SendResult]],
) -> SendResult:
    """Send ``parts`` in order from where an earlier attempt stopped; the first part that is not
    ``sent`` ends the attempt with its own result (its reason says which part). ``send_one`` gets
    the part's index, for channels that give each message an id of ours."""
    total = len(parts)
    provider_ids: list[str] = []
    code: str | None = None
    for index in range(progress.get(delivery_id), total):
        result = await send_one(index, parts[index])
        if result.outcome != "sent":
            if result.outcome == "transient":
                progress.set(delivery_id, index)
            else:
                progress.forget(delivery_id)
            if total > 1:
                result = replace(result, reason=f"part {index + 1} of {total}: {result.reason}")
            return result
        code = result.code
        if result.provider_id:
            provider_ids.append(result.provider_id)
    progress.forget(delivery_id)
    return SendResult("sent", provider_id=",".join(provider_ids)[:500] or None, code=code)


async def call_with_token(
    *,
    tokens: TokenCache,
    attempt: Callable[[str], Awaitable[HttpResponse]],
    token_rejected: Callable[[HttpResponse], bool],
    provider: str,
) -> HttpResponse | SendResult:
    """Make one API call with the cached token; if the provider says the token is invalid or
    expired, drop it, fetch a fresh one and repeat the call once.

    Answers the provider's final response for the caller to classify, or a ``SendResult`` when
    no token could be had, the transport failed, or the fresh token was refused too (transient:
    the engine's next attempt starts over with yet another fetch).
    """
    try:
        token = await tokens.get()
        response = await attempt(token)
        if not token_rejected(response):
            return response
        tokens.invalidate(token)
        token = await tokens.get()
        response = await attempt(token)
    except TokenUnavailable as exc:
        return exc.result
    except TransportError as exc:
        return transport_failure(exc)
    if token_rejected(response):
        tokens.invalidate(token)
        return SendResult(
            "transient",
            reason=f"{provider} refused a freshly fetched access token",
            code=_code_of(response),
        )
    return response


def _code_of(response: HttpResponse) -> str:
    data = response.data
    if isinstance(data, dict):
        for key in ("errcode", "code"):
            if data.get(key) is not None:
                return str(data[key])
    return str(response.status)


def errcode_of(data: object) -> int | None:
    """The integer ``errcode`` of a WeChat-style answer, or ``None`` when there is none."""
    if not isinstance(data, dict):
        return None
    value = data.get("errcode")
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            return None
    return None


def errmsg_of(data: object) -> str:
    """The provider's message, short (it ends up in the attempt log and in front of agents)."""
    if isinstance(data, dict):
        for key in ("errmsg", "message"):
            value = data.get(key)
            if isinstance(value, str):
                return value[:200]
    return ""
