"""Name search for Chinese and English names on stock PostgreSQL (pure: lexemes and queries).

PostgreSQL's parser keeps a Chinese name as one word and a trigram index cannot serve a
two-character pattern (``张三`` has no trigram of its own), so the application computes the
lexemes, as ticket-svc does for tickets (docs/ARCHITECTURE.md, "Search"): text is NFKC-folded
and lower-cased; runs of CJK characters give their single characters and overlapping bigrams
(``欧阳娜娜`` → 欧, 阳, 娜, 欧阳, 阳娜, 娜娜); other text gives words. They are stored as a
``tsvector`` literal in ``customers.search`` (GIN). A query is an AND of its bigrams (a single
character: itself) and its words, the last word as a prefix (``zha`` finds ``Zhang``), so a
two-character name finds exactly the names containing it.
"""

from __future__ import annotations

import re
import unicodedata

_CJK = (
    "\u3040-\u30ff"  # Hiragana, Katakana
    "\u3400-\u4dbf"  # CJK extension A
    "\u4e00-\u9fff"  # CJK unified ideographs
    "\uf900-\ufaff"  # compatibility ideographs
    "\uac00-\ud7af"  # Hangul syllables
    "\U00020000-\U0002ffff"  # extensions B-F
)
_CJK_RUN = re.compile(f"[{_CJK}]+")
_WORD = re.compile(r"[^\W_]+")
MAX_WORD = 64
MAX_TERMS = 16


def fold(text: str) -> str:
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text)
    return text.lower()


def _split(text: str) -> tuple[list[str], list[str]]:
    text = fold(text)
    return _CJK_RUN.findall(text), [w[:MAX_WORD] for w in _WORD.findall(_CJK_RUN.sub(" ", text))]


def _quote(lexeme: str) -> str:
    return "'" + lexeme.replace("\\", "\\\\").replace("'", "''") + "'"


def lexemes(*texts: str | None) -> list[str]:
    seen: dict[str, None] = {}
    for text in texts:
        if not text:
            continue
        runs, words = _split(text)
        for run in runs:
            for char in run:
                seen.setdefault(char, None)
            for i in range(len(run) - 1):
                seen.setdefault(run[i : i + 2], None)
        for word in words:
            seen.setdefault(word, None)
    return list(seen)


def document(name: str | None) -> str:
    """The ``tsvector`` literal of a name (``""`` for none); cast with ``$n::text::tsvector``."""
    return " ".join(_quote(lexeme) for lexeme in lexemes(name))


def words(name: str | None) -> list[str]:
    """The non-CJK words of a name, folded (what a prefix query can match)."""
    return _split(name)[1] if name else []


def query_parts(query: str) -> list[tuple[str, bool]]:
    """The terms a name must contain to match ``query``, each with whether it is a prefix: CJK
    runs as their bigrams (a single character: itself), words whole, the last word as a prefix
    unless it is a number; at most ``MAX_TERMS``."""
    runs, found = _split(query[:200])
    terms: list[tuple[str, bool]] = []
    for run in runs:
        grams = [run] if len(run) == 1 else [run[i : i + 2] for i in range(len(run) - 1)]
        terms.extend((g, False) for g in dict.fromkeys(grams))
    for index, word in enumerate(found):
        terms.append((word, index == len(found) - 1 and not word.isdigit()))
    return terms[:MAX_TERMS]


def tsquery(query: str) -> str | None:
    """A ``tsquery`` literal matching names that contain every term of ``query``; None when the
    query has no term (punctuation only). Plaintext lexemes: what rows written before the
    encryption of names hold (``pii/codec.py`` makes the opaque form)."""
    return " & ".join(_quote(text) + (":*" if prefix else "") for text, prefix in query_parts(query)) or None
