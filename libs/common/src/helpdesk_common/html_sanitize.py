"""Stored HTML is sanitised once, on the way in, so no reader can be handed script.

One allow-list (ammonia, through nh3) for every service that stores HTML someone else reads:
ticket-svc's messages and kb-svc's articles. Formatting, links, tables and images are kept; script,
style, event handlers, forms, frames, objects, media and SVG are removed, and links keep http(s),
mailto, tel and relative targets, never ``javascript:``.

osTicket's stored-XSS advisories (CVE-2019-14748/-14750) came from ticket HTML rendered as
received.

What an image may load is the caller's policy (``image_source``): a customer's mail must load
nothing when an agent opens it (a remote image is a read receipt for whoever sent it), so
ticket-svc keeps only ``cid:`` and small ``data:`` raster images (``mail_image_source``); a
knowledge-base article, written by the company's own editors for readers, may show images from
http(s) URLs and its own attachments. Nothing else can load anything whatever the policy:
``srcset``, ``background`` and ``style`` attributes are not on the allow-list (so neither is CSS
``url()``), and ``<style>``, ``<link>``, media, frames, objects, forms and SVG are removed.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import nh3

_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "code", "div", "em", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i",
    "img", "li", "ol", "p", "pre", "s", "span", "strong", "sub", "sup", "table", "tbody", "td", "tfoot", "th",
    "thead", "tr", "u", "ul", "font", "center", "small", "big", "dl", "dt", "dd",
}
_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title", "width", "height"},
    "td": {"colspan", "rowspan", "align"},
    "th": {"colspan", "rowspan", "align"},
    "font": {"color"},
    "*": {"dir", "lang"},
}
#: schemes a URL may have at all; the attribute filter then decides per attribute (data: only for images)
_SCHEMES = {"http", "https", "mailto", "cid", "tel", "data"}
MAX_HTML = 1_000_000
#: the longest ``data:`` image kept, in characters of the URI (about 24 KiB of image)
MAX_DATA_IMAGE = 32_768
_DATA_IMAGE = re.compile(r"data:image/(?:png|gif|jpeg|jpg|webp);base64,[A-Za-z0-9+/=\s]*", re.IGNORECASE)
LINK_REL = "noopener noreferrer nofollow"


def mail_image_source(src: str) -> bool:
    """An image source that loads nothing from the network: ``cid:`` (an inline image of the same
    mail) or a small base64 ``data:`` URI of a raster type (PNG, GIF, JPEG, WebP; not SVG, which
    can carry script and references of its own)."""
    src = src.strip()
    scheme = src[:5].lower()
    if scheme.startswith("cid:"):
        return True
    if scheme == "data:":
        return len(src) <= MAX_DATA_IMAGE and _DATA_IMAGE.fullmatch(src) is not None
    return False


#: CSS properties a notification e-mail's ``style`` attributes may set (``sanitize_html(styles=...)``):
#: type, colour, spacing and alignment, nothing that can load or position anything
EMAIL_STYLE_PROPERTIES = frozenset({
    "color", "background-color", "font-size", "font-weight", "font-style", "font-family", "text-align",
    "text-decoration", "line-height", "margin", "margin-top", "margin-bottom", "margin-left", "margin-right",
    "padding", "padding-top", "padding-bottom", "padding-left", "padding-right", "border", "border-top",
    "border-bottom", "border-left", "border-right", "border-collapse", "border-radius", "width", "max-width",
    "vertical-align", "white-space",
})
#: a declaration's value: words, numbers, units, colours, quotes, commas; ``rgb()``/``rgba()`` of
#: numbers. No other function (``url()``, ``expression()``, ``var()``), no backslash escapes, no
#: ``@``, ``:``, ``;``, ``<``, ``>`` or ``&``
_STYLE_VALUE = re.compile(r"(?:[#\w\s.,%'\"+-]|rgba?\([\d\s.,%]*\))*")
_STYLE_WORDS = re.compile(r"expression|javascript|vbscript|behavior|binding", re.IGNORECASE)


def clean_style(value: str, allowed: frozenset[str]) -> str | None:
    """The declarations of ``value`` whose property is in ``allowed`` and whose value is plain
    (``_STYLE_VALUE``); None when none is left."""
    kept = []
    for declaration in value.split(";"):
        name, colon, val = declaration.partition(":")
        name, val = name.strip().lower(), val.strip()
        if colon and name in allowed and val and _STYLE_VALUE.fullmatch(val) and not _STYLE_WORDS.search(val):
            kept.append(f"{name}:{val}")
    return ";".join(kept) or None


def _link_allowed(value: str) -> bool:
    # a data: document is a page of the sender's making; cid: means nothing as a link
    return not value.strip()[:5].lower().startswith(("data:", "cid:"))


def sanitize_html(html: str | None, *, image_source: Callable[[str], bool] = mail_image_source,
                  styles: frozenset[str] = frozenset()) -> str | None:
    """The HTML with only the allow-list left; None for empty input.

    ``image_source(src)`` decides which ``<img src>`` stay (the ``<img>`` keeps its ``alt``
    otherwise). ``styles``: CSS properties ``style`` attributes may keep (``clean_style``); none
    by default (stored messages and articles keep no ``style``)."""
    if not html:
        return None

    def attribute_filter(element: str, attribute: str, value: str) -> str | None:
        if attribute == "src":
            return value if image_source(value) else None
        if attribute == "href" and not _link_allowed(value):
            return None
        if attribute == "style":
            return clean_style(value, styles)
        return value

    attributes = _ATTRIBUTES if not styles else {**_ATTRIBUTES, "*": _ATTRIBUTES["*"] | {"style"}}
    return nh3.clean(html[:MAX_HTML], tags=_TAGS, attributes=attributes, url_schemes=_SCHEMES,
                     attribute_filter=attribute_filter, link_rel=LINK_REL, strip_comments=True)
