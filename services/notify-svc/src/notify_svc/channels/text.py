"""Fitting a reply into a chat provider's text limit (pure functions).

WeChat customer-service messages and WeCom customer-contact messages take at most 2048 bytes of
UTF-8 text per message (about 680 Chinese characters), DingTalk a few thousand. Agents' replies
are sometimes longer, and silently cutting an answer off loses the part the customer needed, so a
long reply is **split** into consecutive messages, cut preferably at a line break, else after a
sentence or a space, never inside a character. Every message also costs the recipient's quota
(WeChat allows a bounded number of customer-service messages per customer message), so the number
of parts is capped: the last allowed part is truncated and ends with a note saying so, in the
reply's language.
"""

from __future__ import annotations

#: where a cut may fall, best first: after a line break, after a sentence, after a space
_BREAKS = ("\n", "。", "！", "？", ". ", "! ", "? ", "；", "; ", "，", "、", ", ", " ")

TRUNCATION_NOTES = {
    "zh": "…（回复过长，后续内容已省略）",
    "en": "… (reply too long, the rest was left out)",
}
#: the same for a notification, which is not a reply (and whose note must read well in markdown)
NOTIFICATION_TRUNCATION_NOTES = {
    "zh": "…（通知过长，后续内容已省略）",
    "en": "… (notification too long, the rest was left out)",
}


def truncation_note(language: str | None, *, notification: bool = False) -> str:
    """The note that ends a truncated reply (or notification): Chinese for ``zh*``, English
    otherwise."""
    notes = NOTIFICATION_TRUNCATION_NOTES if notification else TRUNCATION_NOTES
    if language and language.lower().startswith("zh"):
        return notes["zh"]
    return notes["en"]


def utf8_len(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def _prefix_within(text: str, max_bytes: int) -> str:
    """The longest prefix of ``text`` whose UTF-8 form fits in ``max_bytes`` (whole characters)."""
    return text.encode("utf-8", "surrogatepass")[:max_bytes].decode("utf-8", "ignore")


def _cut_point(prefix: str) -> int:
    """Where to cut ``prefix``: after the last preferred break in its second half, else its end."""
    floor = len(prefix) // 2
    for mark in _BREAKS:
        at = prefix.rfind(mark)
        if at >= floor:
            return at + len(mark)
    return len(prefix)


def split_text(text: str, *, max_bytes: int, max_parts: int, note: str) -> list[str]:
    """``text`` as at most ``max_parts`` pieces of at most ``max_bytes`` UTF-8 bytes each.

    Pieces are trimmed of the whitespace at their cut; joined, they give back the text (up to that
    whitespace) unless it did not fit in ``max_parts``, in which case the last piece ends with
    ``note``. An empty or blank text gives no pieces.
    """
    if max_bytes <= utf8_len(note):
        raise ValueError("max_bytes must leave room for the truncation note")
    if max_bytes < 4:
        raise ValueError("max_bytes must hold at least one character (4 bytes)")
    if max_parts < 1:
        raise ValueError("max_parts must be at least 1")
    parts: list[str] = []
    rest = text.strip()
    while rest:
        if utf8_len(rest) <= max_bytes:
            parts.append(rest)
            break
        if len(parts) == max_parts - 1:
            room = max_bytes - utf8_len(note)
            head = _prefix_within(rest, room)
            head = head[: _cut_point(head)].rstrip()
            parts.append(head + note)
            break
        head = _prefix_within(rest, max_bytes)
        cut = _cut_point(head)
        piece = head[:cut].rstrip()
        parts.append(piece)
        rest = rest[cut:].lstrip()
    return parts
