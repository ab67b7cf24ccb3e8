"""One-line text: subjects and names as they may safely go into a mail header or a list row.

A ticket subject becomes the ``Subject:`` of every reply we send, and a name the display part of
a ``From:`` or ``To:``; a CR or LF in either is a header injection (issue 9), a TAB or another
control character breaks the line some other way. Unicode bidi controls are the other hazard:
an override or isolate (U+202A-U+202E, U+2066-U+2069) reorders everything after it on screen, so
``invoice\\u202Efdp.exe`` shows as ``invoiceexe.pdf`` and one unterminated override garbles the rest
of an agent's ticket list (the "Trojan Source" trick, CVE-2021-42574).

``one_line`` is the one normalisation every entry point applies (API bodies through the
``OneLine`` pydantic type, channel parsers' subjects in intake):

- C0 controls (CR, LF, TAB, ...), DEL and C1 controls (U+0080-U+009F, NEL included) and the
  Unicode line and paragraph separators become a space;
- bidi embeddings, overrides and isolates and the BOM / zero-width no-break space are removed;
- runs of whitespace (any Unicode space, e.g. U+3000) collapse to one ASCII space, and the ends
  are trimmed.

Kept on purpose: the implicit direction marks U+200E LRM, U+200F RLM and U+061C ALM. They have no
scope (they cannot reorder a run, only attach neutral characters such as "?" or digits to one
side), and right-to-left text needs them to show a title such as "?<Hebrew>" or "<Arabic> 2"
the right way round. ZWJ / ZWNJ (emoji sequences, Indic and Persian spelling) and tag characters
(flag sequences) stay too. Letters are never changed (no NFKC here: a subject keeps its
full-width or compatibility characters; search folds them separately).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, WithJsonSchema
from pydantic_core import PydanticCustomError

#: explicit bidi formatting (embeddings, overrides, isolates) and the BOM: removed
BIDI_CONTROLS = frozenset(
    [chr(c) for c in range(0x202A, 0x202F)] + [chr(c) for c in range(0x2066, 0x206A)] + ["\ufeff"]
)
#: control characters and line separators: each becomes a space
LINE_BREAKERS = frozenset(
    [chr(c) for c in range(0x00, 0x20)] + ["\x7f"] + [chr(c) for c in range(0x80, 0xA0)] + ["\u2028", "\u2029"]
)
#: what the document states of a one-line value: at least one character that is none of those,
#: nor whitespace (an ECMA-262 regex, unanchored: "contains one")
VISIBLE_PATTERN = r"[^\s\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069\ufeff]"
_TABLE = str.maketrans({**{c: " " for c in LINE_BREAKERS}, **{c: None for c in BIDI_CONTROLS}})


def one_line(value: str) -> str:
    """``value`` as one clean line (see the module docstring); may be empty.

    Printable ASCII, most of what arrives, costs one ``isascii``/``isprintable`` pair and the
    whitespace collapse; only other text goes through the translation table."""
    if not (value.isascii() and value.isprintable()):
        value = value.translate(_TABLE)
    return " ".join(value.split())


class _OneLineValidator:
    """Clean, then refuse what is empty or too long once cleaned (the length a user sees)."""

    __slots__ = ("max_length",)

    def __init__(self, max_length: int) -> None:
        self.max_length = max_length

    def __call__(self, value: str) -> str:
        cleaned = one_line(value)
        # pydantic's own error codes, so clients see the same ones as for any other string field
        if not cleaned:
            raise PydanticCustomError("string_too_short", "String should have at least 1 visible character "
                                      "(control characters, bidi controls and spaces are removed)")
        if len(cleaned) > self.max_length:
            raise PydanticCustomError("string_too_long", "String should have at most {max_length} characters",
                                      {"max_length": self.max_length})
        return cleaned


def OneLine(max_length: int) -> Any:  # noqa: N802 - used like a type: ``name: OneLine(128)``
    """A pydantic type for a subject or a name: ``one_line``-normalised, 1 to ``max_length``
    characters after cleaning, else a 422 naming the field."""
    return Annotated[
        str,
        AfterValidator(_OneLineValidator(max_length)),
        WithJsonSchema({"type": "string", "minLength": 1, "maxLength": max_length, "pattern": VISIBLE_PATTERN,
                        "description": "one line: control and bidi characters are removed, spaces collapsed; "
                                       "at least one other character"}),
    ]
