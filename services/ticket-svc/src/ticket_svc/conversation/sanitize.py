"""Stored HTML is sanitised once, on the way in, so no reader can be handed script, and nothing
in it loads from the network when an agent opens the message.

osTicket's stored-XSS advisories (CVE-2019-14748/-14750) came from ticket HTML rendered as
received. We keep a conservative allow-list (ammonia, through nh3): formatting, links, tables,
images; no script, style, event handlers or forms.

Remote content is blocked (issue 9): an ``<img src="https://…">`` in a customer's mail is a read
receipt for whoever sent it (a tracking pixel tells them when, from which address and with which
client an agent opened the ticket), and a relative or protocol-relative URL would resolve
against whatever page shows the message. So an image keeps its ``src`` only when it is

- ``cid:`` — an inline image of the same mail, stored as an attachment of the message, or
- a ``data:`` URI of a raster image type (PNG, GIF, JPEG, WebP), base64, at most
  ``MAX_DATA_IMAGE`` characters: small inline images some mailers embed that way. SVG is not
  one of them: it can carry script and references of its own.

Any other ``src`` is dropped and the ``<img>`` keeps its ``alt`` (and title, size), which the
reader shows instead. Nothing else can load anything: ``srcset``, ``background`` and ``style``
attributes are not on the allow-list (so neither is CSS ``url()``), ``<style>``, ``<link>``,
media, frames, objects, forms and SVG are removed, and links (``<a href>``), which load nothing
until clicked, keep http(s), mailto and tel targets only.
"""

from __future__ import annotations

import re

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
#: schemes a URL may have at all; ``_filter`` then decides per attribute (data: only for images)
_SCHEMES = {"http", "https", "mailto", "cid", "tel", "data"}
MAX_HTML = 1_000_000
#: the longest ``data:`` image kept, in characters of the URI (about 24 KiB of image)
MAX_DATA_IMAGE = 32_768
_DATA_IMAGE = re.compile(r"data:image/(?:png|gif|jpeg|jpg|webp);base64,[A-Za-z0-9+/=\s]*", re.IGNORECASE)


def image_source_allowed(src: str) -> bool:
    """Is ``src`` an image source that loads nothing from the network (see the module doc)?"""
    src = src.strip()
    scheme = src[:5].lower()
    if scheme.startswith("cid:"):
        return True
    if scheme == "data:":
        return len(src) <= MAX_DATA_IMAGE and _DATA_IMAGE.fullmatch(src) is not None
    return False


def _filter(element: str, attribute: str, value: str) -> str | None:
    if attribute == "src":
        return value if image_source_allowed(value) else None
    if attribute == "href" and value.strip()[:5].lower().startswith(("data:", "cid:")):
        return None  # a data: document is a page of the sender's making; cid: means nothing as a link
    return value


def sanitize_html(html: str | None) -> str | None:
    if not html:
        return None
    return nh3.clean(html[:MAX_HTML], tags=_TAGS, attributes=_ATTRIBUTES, url_schemes=_SCHEMES,
                     attribute_filter=_filter, link_rel="noopener noreferrer nofollow", strip_comments=True)
