"""The one HTTP seam of the channel adapters (WeChat, WeCom, DingTalk).

Adapters talk to providers only through ``HttpClient.request``, so the transport can be swapped
(the SSRF-safe egress client of ``notify_svc.egress`` once it exists, a recorder in tests) without
touching the adapters' classification logic. The contract is deliberately small:

- ``request(method, url, *, json=None, headers=None) -> HttpResponse(status, data)``, where
  ``data`` is the parsed JSON body, or ``None`` when the body is empty or not JSON (a proxy's
  HTML error page, say): adapters classify by status then, never by parsing HTML;
- a failure to get any answer (refused connection, DNS, timeout, an oversize or unreadable body)
  raises ``TransportError``, which every adapter turns into a ``transient`` result.

Bodies are UTF-8 JSON with non-ASCII characters written as such (``ensure_ascii=False``): the
WeChat APIs are documented with raw UTF-8 bodies and older WeChat clients showed ``\\uXXXX``
escapes literally, so Chinese text must not be escaped.

The default transport (``AiohttpClient``) is for provider APIs at fixed public hosts that
operators configure, not for user-supplied URLs: it applies short timeouts, follows no
redirects and bounds the response read, but does no address filtering (that is egress's job for
webhooks). The one URL that comes from customer data, DingTalk's ``sessionWebhook``, is checked
against the configured DingTalk origin by its adapter before it is used.
"""

from __future__ import annotations

import json as jsonlib
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp

#: a provider's answer is a small JSON document; anything bigger is not an answer we expect
DEFAULT_MAX_RESPONSE_BYTES = 1024 * 1024


@dataclass(frozen=True, slots=True)
class HttpResponse:
    status: int
    data: Any = None

    def __iter__(self):  # ``status, data = await client.request(...)``
        yield self.status
        yield self.data


class TransportError(Exception):
    """No usable answer at all (connect, timeout, oversize body). The message never holds the
    URL, because provider URLs carry access tokens in their query strings."""


class HttpClient(Protocol):
    async def request(
        self,
        method: str,
        url: str,
        *,
        json: Any = None,
        headers: dict[str, str] | None = None,
    ) -> HttpResponse: ...

    async def close(self) -> None: ...


def encode_json(payload: Any) -> bytes:
    """UTF-8 JSON with Chinese kept as characters (see the module docstring for why)."""
    # a lone surrogate (legal in JSON escapes, not in UTF-8) becomes "?" instead of an exception
    return jsonlib.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "replace")


def parse_json(body: bytes) -> Any:
    """The parsed body, or ``None`` for an empty or non-JSON body (classified by status)."""
    if not body.strip():
        return None
    try:
        return jsonlib.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None


class AiohttpClient:
    """``HttpClient`` on one ``aiohttp.ClientSession``, created lazily inside the running loop.

    Short timeouts because the delivery engine retries: a slow provider costs one attempt, not a
    worker. No redirects: a provider API that redirects is misconfigured, and following one is
    how a fixed host turns into an arbitrary one. The response read stops at ``max_response_bytes``.
    """

    def __init__(
        self,
        *,
        timeout_s: float = 10.0,
        connect_timeout_s: float = 5.0,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self._timeout = aiohttp.ClientTimeout(
            total=timeout_s, connect=connect_timeout_s, sock_read=timeout_s
        )
        self._max_response_bytes = max_response_bytes
        self._session = session
        self._owns_session = session is None

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=self._timeout,
                # environment proxies are not ours to pick up implicitly
                trust_env=False,
                connector=aiohttp.TCPConnector(limit=100, ttl_dns_cache=300),
            )
            self._owns_session = True
        return self._session

    async def request(
        self,
        method: str,
        url: str,
        *,
        json: Any = None,
        headers: dict[str, str] | None = None,
    ) -> HttpResponse:
        sent_headers = {"Accept": "application/json"}
        data: bytes | None = None
        if json is not None:
            data = encode_json(json)
            sent_headers["Content-Type"] = "application/json; charset=utf-8"
        sent_headers.update(headers or {})
        try:
            async with self._get_session().request(
                method,
                url,
                data=data,
                headers=sent_headers,
                allow_redirects=False,
                timeout=self._timeout,
            ) as response:
                body = await self._read_bounded(response)
                return HttpResponse(response.status, parse_json(body))
        except TransportError:
            raise
        except TimeoutError as exc:
            raise TransportError("timed out") from exc
        except aiohttp.ClientError as exc:
            # the exception text of a connection error names host and port, never the query
            raise TransportError(f"{type(exc).__name__}: {_without_url(exc)}") from exc

    async def _read_bounded(self, response: aiohttp.ClientResponse) -> bytes:
        """The body, or ``TransportError`` as soon as it passes the bound (declared or read):
        a provider's answer is small, and an endless one must not hold a worker or its memory."""
        limit = self._max_response_bytes
        if response.content_length is not None and response.content_length > limit:
            raise TransportError(f"response larger than {limit} bytes")
        chunks: list[bytes] = []
        size = 0
        while True:
            chunk = await response.content.read(65_536)
            if not chunk:
                return b"".join(chunks)
            size += len(chunk)
            if size > limit:
                raise TransportError(f"response larger than {limit} bytes")
            chunks.append(chunk)

    async def close(self) -> None:
        if self._session is not None and self._owns_session and not self._session.closed:
            await self._session.close()
        self._session = None


def _without_url(exc: BaseException) -> str:
    """A transport error's message, cut before any URL (which may hold an access token)."""
    text = str(exc)
    for marker in ("http://", "https://"):
        cut = text.find(marker)
        if cut != -1:
            text = text[:cut].rstrip(" ,:'\"") + " <url>"
    return text[:200]


def client_from_settings(settings: object) -> AiohttpClient:
    """The default transport with the service's ``NOTIFY_CHANNEL_HTTP_*`` limits."""
    return AiohttpClient(
        timeout_s=getattr(settings, "channel_http_timeout_s", 10.0),
        connect_timeout_s=getattr(settings, "channel_http_connect_timeout_s", 5.0),
        max_response_bytes=getattr(settings, "channel_http_max_response_bytes", DEFAULT_MAX_RESPONSE_BYTES),
    )
