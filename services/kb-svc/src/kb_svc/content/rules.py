"""Pure rules of the content model: locales, caching by visibility, labels, the article HTML
policy and the text of a published body (who may read what is access.py's). No I/O: table and
property tests in tests/content/test_rules.py."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from html.parser import HTMLParser

from helpdesk_common.events import KB_LABEL_MAX_CHARS
from helpdesk_common.html_sanitize import mail_image_source, sanitize_html
from helpdesk_common.validation import WHITESPACE

# ---------------------------------------------------------------------------------------------
# Locales: BCP 47 language tags (RFC 5646), stored in their canonical case so that ``zh-cn`` and
# ``zh-CN`` are one translation: language lower case, script title case, region upper case.

_TAG = re.compile(
    r"(?P<language>[A-Za-z]{2,3}(?:-[A-Za-z]{3}){0,3}|[A-Za-z]{4,8})"
    r"(?:-(?P<script>[A-Za-z]{4}))?"
    r"(?:-(?P<region>[A-Za-z]{2}|[0-9]{3}))?"
    r"(?P<variants>(?:-(?:[A-Za-z0-9]{5,8}|[0-9][A-Za-z0-9]{3}))*)"
    r"(?P<extensions>(?:-[0-9A-WY-Za-wy-z](?:-[A-Za-z0-9]{2,8})+)*)"
    r"(?P<private>-[Xx](?:-[A-Za-z0-9]{1,8})+)?"
)
LOCALE_MAX_CHARS = 35
#: the same tags as a JSON Schema pattern (ECMA-262, no named groups; whitespace spelled out as
#: Python strips it), for the API documents and the query checks: ``_`` or ``-`` between subtags
#: and whitespace around, as :func:`canonical_locale` accepts them
LOCALE_PATTERN = (f"^[{WHITESPACE}]*" + re.sub(r"\(\?P<\w+>", "(?:", _TAG.pattern).replace("(?:-", "(?:[-_]")
                  + f"[{WHITESPACE}]*$")


def canonical_locale(tag: str) -> str | None:
    """The canonical spelling of a BCP 47 tag (``zh-cn`` → ``zh-CN``, ``zh-hant-tw`` →
    ``zh-Hant-TW``, ``EN`` → ``en``), or None when ``tag`` is not a well-formed tag. ``_`` is
    accepted for ``-`` (``zh_CN``, as POSIX locales spell it)."""
    tag = tag.strip().replace("_", "-")
    if not tag or len(tag) > LOCALE_MAX_CHARS or not tag.isascii():
        return None
    match = _TAG.fullmatch(tag)
    if match is None:
        return None
    parts = [match["language"].lower()]
    if match["script"]:
        parts.append(match["script"].title())
    if match["region"]:
        parts.append(match["region"].upper())
    rest = (match["variants"] or "") + (match["extensions"] or "") + (match["private"] or "")
    if rest:
        parts.append(rest[1:].lower())
    return "-".join(parts)


def first_accepted(accept_language: str | None) -> str | None:
    """The reader's most wanted language tag (canonical) from ``Accept-Language``, or None."""
    wanted = _accepted(accept_language)
    return wanted[0] if wanted else None


def _accepted(accept_language: str | None) -> list[str]:
    """The acceptable tags of ``Accept-Language`` (canonical), best first (ties in order)."""
    wanted: list[tuple[float, int, str]] = []
    for index, part in enumerate((accept_language or "").split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        canonical = canonical_locale(tag) if tag.strip() != "*" else None
        if canonical and quality > 0:
            wanted.append((-quality, index, canonical))
    return [tag for _, _, tag in sorted(wanted)]


def preferred_locale(available: Iterable[str], accept_language: str | None) -> str | None:
    """The translation to show a reader who named no locale: the best ``Accept-Language`` match
    (exact tag, then same language: ``zh`` and ``zh-TW`` pick ``zh-CN`` when that is all there
    is), else ``en``, else the first in sort order; None when nothing is available."""
    choices = sorted(available)
    if not choices:
        return None
    for tag in _accepted(accept_language):
        if tag in choices:
            return tag
        language = tag.split("-")[0]
        same = [c for c in choices if c.split("-")[0] == language]
        if same:
            return same[0]
    return "en" if "en" in choices else choices[0]


# ---------------------------------------------------------------------------------------------
# Caching


def cache_control(visibility: str) -> str:
    """Public articles may sit in shared caches for a few minutes; anything else is per reader
    and revalidated every time (a revoked token or a visibility change must show at once)."""
    return "public, max-age=300" if visibility == "public" else "private, no-cache"


# ---------------------------------------------------------------------------------------------
# Labels: trimmed, NFKC-folded (full-width → ASCII), de-duplicated case-insensitively, order kept


def normalise_labels(labels: Iterable[str]) -> list[str]:
    seen: set[str] = set()
    out: list[str] = []
    for label in labels:
        value = unicodedata.normalize("NFKC", label).strip()
        key = value.casefold()
        if value and key not in seen:
            seen.add(key)
            out.append(value[:KB_LABEL_MAX_CHARS])
    return out


# ---------------------------------------------------------------------------------------------
# Article HTML: the shared allow-list (helpdesk_common.html_sanitize); an article may show images
# from https/http URLs, its own attachments and small data: raster images.

_ATTACHMENT_PATH = re.compile(
    r"/v1/kb/(?:public/)?articles/[0-9a-fA-F-]{36}/attachments/[0-9a-fA-F-]{36}(?:/content)?")


def article_image_source(src: str) -> bool:
    src = src.strip()
    lowered = src[:8].lower()
    if lowered.startswith(("https://", "http://")):
        return len(src) <= 2048
    if _ATTACHMENT_PATH.fullmatch(src):
        return True
    return mail_image_source(src) and not lowered.startswith("cid:")


def sanitize_article_html(html: str) -> str:
    return sanitize_html(html, image_source=article_image_source) or ""


_BLOCKS = {"p", "div", "br", "li", "tr", "td", "th", "h1", "h2", "h3", "h4", "h5", "h6", "pre", "blockquote",
           "hr", "ul", "ol", "table", "dt", "dd"}


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag in _BLOCKS:
            self.parts.append("\n")
        elif tag == "img":
            alt = dict(attrs).get("alt")
            if alt:
                self.parts.append(f" {alt} ")

    def handle_endtag(self, tag: str) -> None:
        if tag in _BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


_SPACES = re.compile(r"[^\S\n]+")
_LINES = re.compile(r"\s*\n\s*")


def body_text(html: str) -> str:
    """The readable text of (sanitised) article HTML, for search and snippets: entities decoded,
    one line per block, runs of blanks collapsed, image alt text kept."""
    parser = _Text()
    parser.feed(html)
    parser.close()
    text = _SPACES.sub(" ", "".join(parser.parts))
    return _LINES.sub("\n", text).strip()
