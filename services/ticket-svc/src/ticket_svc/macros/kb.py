"""Reply snippets of knowledge-base articles for macro placeholders (render.py ``kb.article.*``).

ticket-svc asks kb-svc ``GET /v1/kb/articles/{id}/reply-snippet?locale=`` with the acting agent's
own signed identity forwarded, so kb-svc answers exactly what it would answer the agent (its
visibility rules apply; ticket-svc holds no credential of its own). Each request is bounded by
``TICKET_KB_TIMEOUT_S`` and the references of one reply are fetched concurrently. Nothing here
fails a macro: an article kb-svc does not answer for (unpublished, not visible, kb-svc down or
slow) is simply absent from the result, and the renderer reports its placeholders as warnings.

A reference without a locale asks in the ticket's language first and, when that translation is
not published, for the article's first published translation. A relative link from kb-svc is
made absolute with ``PUBLIC_BASE_URL`` (the gateway's address as customers reach it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from typing import Any
from urllib.parse import quote

import aiohttp
from fastapi import FastAPI, Request

from helpdesk_common.identity import IDENTITY_HEADER
from helpdesk_common.observability import request_id_var

from .render import KbRef

log = logging.getLogger(__name__)


class KbSnippets:
    def __init__(self, *, kb_url: str, public_base_url: str, session: Callable[[], aiohttp.ClientSession],
                 timeout_s: float) -> None:
        self._base = kb_url.rstrip("/")
        self._public_base = public_base_url.rstrip("/")
        self._session = session
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)

    async def fetch(self, refs: Iterable[KbRef], *, token: str,
                    language: str | None) -> dict[KbRef, Mapping[str, Any] | None]:
        """Each reference's snippet, or None where kb-svc gave none."""
        refs = list(refs)
        if not refs or not token:
            return dict.fromkeys(refs)
        answers = await asyncio.gather(*(self._one(ref, token=token, language=language) for ref in refs))
        return dict(zip(refs, answers, strict=True))

    async def _one(self, ref: KbRef, *, token: str, language: str | None) -> Mapping[str, Any] | None:
        try:
            async with asyncio.timeout(self._timeout.total):
                if ref.locale is not None:
                    return await self._get(ref.article_id, ref.locale, token)
                if language:
                    found = await self._get(ref.article_id, language, token)
                    if found is not None:
                        return found
                return await self._get(ref.article_id, None, token)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            log.warning("kb-svc did not answer a reply snippet",
                        extra={"article_id": str(ref.article_id), "error": repr(exc)})
            return None

    async def _get(self, article_id: uuid.UUID, locale: str | None, token: str) -> Mapping[str, Any] | None:
        headers = {IDENTITY_HEADER: token, "accept": "application/json"}
        rid = request_id_var.get()
        if rid:
            headers["x-request-id"] = rid
        url = f"{self._base}/v1/kb/articles/{article_id}/reply-snippet"
        if locale:
            url += f"?locale={quote(locale, safe='')}"
        async with self._session().get(url, headers=headers, timeout=self._timeout) as r:
            if r.status != 200:
                return None
            body = await r.json(content_type=None)
        if not isinstance(body, dict) or not isinstance(body.get("title"), str):
            return None
        link = body.get("url")
        if not isinstance(link, str) or not link:
            link = None
        elif link.startswith("/"):
            link = self._public_base + link
        return {"title": body["title"], "url": link}


def snippets_of(request: Request) -> KbSnippets:
    return request.app.state.kb_snippets


def identity_token(request: Request) -> str:
    """The caller's signed identity as it reached ticket-svc, forwarded to kb-svc unchanged."""
    return request.headers.get(IDENTITY_HEADER, "")


def kb_snippets_hook(settings: Any) -> Callable[[FastAPI], Any]:
    """Lifespan hook: one aiohttp session per process for the snippet requests."""

    @contextlib.asynccontextmanager
    async def hook(app: FastAPI) -> AsyncIterator[None]:
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=20))
        app.state.kb_snippets = KbSnippets(kb_url=settings.kb_url, public_base_url=settings.public_base_url,
                                           session=lambda: session, timeout_s=settings.kb_timeout_s)
        try:
            yield
        finally:
            await session.close()

    return hook
