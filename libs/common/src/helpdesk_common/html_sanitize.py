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


def _link_allowed(value: str) -> bool:
    # a data: document is a page of the sender's making; cid: means nothing as a link
    return not value.strip()[:5].lower().startswith(("data:", "cid:"))


def sanitize_html(html: str | None, *, image_source: Callable[[str], bool] = mail_image_source) -> str | None:
    """The HTML with only the allow-list left; None for empty input.

    ``image_source(src)`` decides which ``<img src>`` stay (the ``<img>`` keeps its ``alt``
    otherwise)."""
    if not html:
        return None

    def attribute_filter(element: str, attribute: str, value: str) -> str | None:
        if attribute == "src":
            return value if image_source(value) else None
        if attribute == "href" and not _link_allowed(value):
            return None
        return value

    return nh3.clean(html[:MAX_HTML], tags=_TAGS, attributes=_ATTRIBUTES, url_schemes=_SCHEMES,
                     attribute_filter=attribute_filter, link_rel=LINK_REL, strip_comments=True)
