"""Stored HTML is sanitised once, on the way in, so no reader can be handed script.

osTicket's stored-XSS advisories (CVE-2019-14748/-14750) came from ticket HTML rendered as
received. We keep a conservative allow-list (ammonia, through nh3): formatting, links, tables,
images by http(s) or cid: (inline e-mail images); no script, style, event handlers or forms.
"""

from __future__ import annotations

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
_SCHEMES = {"http", "https", "mailto", "cid", "tel"}
MAX_HTML = 1_000_000


def sanitize_html(html: str | None) -> str | None:
    if not html:
        return None
    return nh3.clean(html[:MAX_HTML], tags=_TAGS, attributes=_ATTRIBUTES, url_schemes=_SCHEMES,
                     link_rel="noopener noreferrer nofollow", strip_comments=True)
