"""A cheap language guess, good enough to route a ticket to a Chinese- or English-speaking team.

One Chinese character carries about as much as an English word, so even mixed text such as
"VIP客户 complains: 打印机 offline" is Chinese for routing purposes when ideographs make up a
tenth of the letters. Text with kana or hangul is not guessed as Chinese (Japanese and Korean
use ideographs too); anything else that is not mostly ASCII letters gets no guess.
"""

from __future__ import annotations


def _is_ideograph(ch: str) -> bool:
    code = ord(ch)
    return (0x4E00 <= code <= 0x9FFF or 0x3400 <= code <= 0x4DBF or 0xF900 <= code <= 0xFAFF
            or 0x20000 <= code <= 0x2FA1F)


def guess_language(text: str) -> str | None:
    """"zh", "en" or None for ``text``."""
    ideographs = kana_hangul = ascii_letters = letters = 0
    for ch in text[:20000]:
        if not ch.isalpha():
            continue
        letters += 1
        code = ord(ch)
        if _is_ideograph(ch):
            ideographs += 1
        elif 0x3040 <= code <= 0x30FF or 0xAC00 <= code <= 0xD7AF or 0x1100 <= code <= 0x11FF:
            kana_hangul += 1
        elif ch.isascii():
            ascii_letters += 1
    if letters < 2:
        return None
    if kana_hangul >= 0.05 * letters:
        return None
    if ideographs >= 0.1 * letters:
        return "zh"
    if ascii_letters >= 0.9 * letters:
        return "en"
    return None
