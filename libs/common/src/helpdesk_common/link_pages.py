"""The pages and answers of public capability links (a survey to answer, a resolution to
confirm): the parts every such route shares, so each service writes only its own words.

The token is in the URL, so nothing may pass it on (``Referer``), keep it (caches, search
engines) or frame the page (clickjacking an answer), and the page loads nothing: no script, no
external asset, one inline style allowed by its hash. A browser (``Accept: text/html``) gets
pages; any other client JSON and problems, with the same headers.
"""

from __future__ import annotations

import base64
import hashlib
from html import escape
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from .problems import Problem
from .responses import dumps


def security_headers(style: str) -> dict[str, str]:
    """The headers of every answer of a link whose page has the inline ``style``."""
    digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    return {
        "Content-Security-Policy": (f"default-src 'none'; style-src 'sha256-{digest}'; form-action 'self'; "
                                    "base-uri 'none'; frame-ancestors 'none'"),
        "X-Frame-Options": "DENY",
        "Cache-Control": "no-store",
        "Referrer-Policy": "no-referrer",
        "X-Robots-Tag": "noindex, nofollow",
        "X-Content-Type-Options": "nosniff",
    }


def document(*, language: str, title: str, style: str, body: str) -> str:
    """A whole page around ``body`` (already escaped HTML); ``title`` is escaped here."""
    return (f'<!doctype html><html lang="{escape(language)}"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width,initial-scale=1">'
            '<meta name="referrer" content="no-referrer"><meta name="robots" content="noindex,nofollow">'
            f"<title>{escape(title)}</title><style>{style}</style></head><body><main>{body}</main></body></html>")


def wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


def html(body: str, headers: dict[str, str], status: int = 200) -> HTMLResponse:
    return HTMLResponse(body, status_code=status, headers=headers)


def json(body: Any, headers: dict[str, str], status: int = 200) -> Response:
    return Response(dumps(body), status_code=status, media_type="application/json", headers=headers)


def problem(found: Problem, headers: dict[str, str]) -> Problem:
    """``found`` with the link's headers, to raise."""
    found.headers = {**(found.headers or {}), **headers}
    return found
