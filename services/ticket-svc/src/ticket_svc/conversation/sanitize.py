"""Stored HTML is sanitised once, on the way in, so no reader can be handed script, and nothing
in it loads from the network when an agent opens the message.

The allow-list is shared with kb-svc (``helpdesk_common.html_sanitize``, where the rules are
described). Remote content is blocked (issue 9): an ``<img src="https://…">`` in a customer's
mail is a read receipt for whoever sent it, and a relative or protocol-relative URL would resolve
against whatever page shows the message. So an image keeps its ``src`` only when it is ``cid:``
(an inline image of the same mail) or a small base64 ``data:`` URI of a raster type
(``mail_image_source``); any other ``src`` is dropped and the ``<img>`` keeps its ``alt``.
"""

from __future__ import annotations

from helpdesk_common.html_sanitize import MAX_DATA_IMAGE, MAX_HTML, mail_image_source
from helpdesk_common.html_sanitize import sanitize_html as _sanitize

__all__ = ["MAX_DATA_IMAGE", "MAX_HTML", "image_source_allowed", "sanitize_html"]

image_source_allowed = mail_image_source


def sanitize_html(html: str | None) -> str | None:
    return _sanitize(html, image_source=mail_image_source)
