"""Full-text search that works for Chinese and English alike, on stock PostgreSQL.

PostgreSQL's parsers split text on spaces and punctuation, which leaves a Chinese sentence as
one "word": ``退款`` would never find ``申请退款``. Instead of a server extension (zhparser,
pg_jieba: not on a stock or embedded PostgreSQL) the application computes the lexemes itself:

- runs of CJK characters become their single characters plus overlapping bigrams
  (``申请退款`` → 申, 请, 退, 款, 申请, 请退, 退款), so any Chinese query of one or more characters
  is an AND of bigrams (or one unigram) the document must contain;
- other text becomes lower-cased words of letters and digits; the last English query word
  matches as a prefix (``refun`` finds ``refund``).

Text is NFKC-normalised and lower-cased first, at index and at query time alike, so
full-width Latin letters and digits (``ｐｒｉｎｔｅｒ``, ``１２３``, what Chinese and Japanese input
methods type) and half-width katakana find their ordinary forms and the other way round.

Lexemes go into a ``tsvector`` as a literal (``document``) with a GIN index, and queries are
built as quoted ``tsquery`` literals, so PostgreSQL never re-parses them. Each lexeme carries a
weight for where it came from: ``A`` the subject, ``B`` what the customer may read (the
description, public messages and their attachments' names), ``C`` internal notes. Two things
follow, each one SQL expression on the stored vector:

- a channel key's search (``tsquery(..., public_only=True)``) matches ``A`` and ``B`` only, so
  it cannot learn the words of an internal note by searching for them;
- a subject change drops the ``A`` positions (``ts_filter(search, '{b,c,d}')``) before adding the
  new subject's, so a ticket stops matching its old subject's words unless they also occur
  elsewhere in it.

Weights live on positions, so every lexeme gets one (1 for the subject, 2 public, 3 internal);
appending shifts the new positions past the old ones, and PostgreSQL caps them at 16,383 and
256 per lexeme. A ticket beyond that (thousands of messages) can miss a word in a channel's
search or keep an old subject word; it never shows a channel an internal note's word, because
a ``B`` position is only ever written for public text.
"""

from __future__ import annotations

import functools
import operator
import re
import unicodedata
from collections.abc import Iterable, Mapping

_CJK = (
    "\u3040-\u30ff"  # Hiragana, Katakana
    "\u3400-\u4dbf"  # CJK extension A
    "\u4e00-\u9fff"  # CJK unified ideographs
    "\uf900-\ufaff"  # compatibility ideographs
    "\uac00-\ud7af"  # Hangul syllables
    "\U00020000-\U0002ffff"  # extensions B-F
)
#: one scan of the folded text: a CJK run (group 1) or a word of the other letters and digits
#: (group 2; the same words as in the text with every CJK run made a space)
_RUN_OR_WORD = re.compile(f"([{_CJK}]+)|([^\\W_{_CJK}]+)")
MAX_WORD = 64
#: lexemes kept per document; a tsvector is capped at 1 MB and long mails repeat themselves
MAX_LEXEMES = 4000


SUBJECT, PUBLIC, INTERNAL = "A", "B", "C"
_POSITION = {SUBJECT: 1, PUBLIC: 2, INTERNAL: 3}
#: the weights everything but the subject is stored with (``ts_filter`` keeps these on a subject change)
NOT_SUBJECT = "{b,c,d}"


def fold(text: str) -> str:
    """The comparison form of text: NFKC (full-width → ASCII, half-width katakana → full
    width, compatibility ideographs → unified), lower-cased."""
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text)
    return text.lower()


def _split(text: str) -> tuple[list[str], list[str]]:
    """(CJK runs, other words), both in order of appearance."""
    runs: list[str] = []
    words: list[str] = []
    for run, word in _RUN_OR_WORD.findall(fold(text)):
        if run:
            runs.append(run)
        else:
            words.append(word if len(word) <= MAX_WORD else word[:MAX_WORD])
    return runs, words


def _add_lexemes(seen: dict[str, None], text: str) -> None:
    """``text``'s lexemes into ``seen`` (insertion-ordered), each once, in order of appearance:
    every CJK run's characters then its bigrams, then the other words. The loops are dict
    updates from iterators (C), not a ``setdefault`` per lexeme: a ticket's document is built on
    every intake (round 19, with ``document``'s own: 79 → 41 µs for the bench's ticket)."""
    runs, words = _split(text)
    for run in runs:
        if len(run) == 1:
            seen[run] = None
        else:
            seen.update(dict.fromkeys(run))
            seen.update(dict.fromkeys(map(operator.add, run, run[1:])))
    seen.update(dict.fromkeys(words))


def lexemes(*texts: str | None) -> list[str]:
    """Distinct lexemes of a document (subject, description, messages), capped."""
    seen: dict[str, None] = {}
    for text in texts:
        if not text:
            continue
        _add_lexemes(seen, text)
        if len(seen) >= MAX_LEXEMES:
            break
    return list(seen)[:MAX_LEXEMES]


def _quote(lexeme: str) -> str:
    return "'" + lexeme.replace("\\", "\\\\").replace("'", "''") + "'"


#: a weight's position and letter in a tsvector literal (``1A``), by weight
_MARK = {weight: f"{position}{weight}" for weight, position in _POSITION.items()}


def document(*, subject: str | None = None, public: Iterable[str | None] = (),
             internal: Iterable[str | None] = ()) -> str:
    """A ``tsvector`` literal of a document's lexemes, each with the weights of the parts it
    occurs in (subject ``A``, public text ``B``, internal notes ``C``); at most ``MAX_LEXEMES``
    distinct lexemes. Cast in SQL with ``$n::text::tsvector``; ``""`` is the empty vector.

    Built with dict operations rather than a step per lexeme: every intake builds one (round
    19: 79 → 41 µs for the bench's ticket of a subject and a description)."""
    marks: dict[str, str] = {}
    for weight, texts in ((SUBJECT, (subject,)), (PUBLIC, public), (INTERNAL, internal)):
        mark = _MARK[weight]
        fresh = dict.fromkeys(lexemes(*texts), mark)  # distinct: the part's lexemes, once each
        if not fresh:
            continue
        both = marks.keys() & fresh.keys() if marks else ()
        room = MAX_LEXEMES - len(marks)
        if len(fresh) - len(both) > room:  # over the cap: only the first new ones fit
            kept = [lexeme for lexeme in fresh if lexeme in both or (room := room - 1) >= 0]
            fresh = dict.fromkeys(kept, mark)
        for lexeme in both:
            fresh[lexeme] = marks[lexeme] + "," + mark
        marks.update(fresh)  # a lexeme already there keeps its place
    if not marks:
        return ""
    if "'" in (keys := "".join(marks)) or "\\" in keys:  # never from _split's patterns
        return " ".join([_quote(lexeme) + ":" + found for lexeme, found in marks.items()])
    return " ".join([f"'{lexeme}':{found}" for lexeme, found in marks.items()])


@functools.lru_cache(maxsize=1024)
def terms(query: str) -> tuple[tuple[str, bool], ...]:
    """(lexeme, is_prefix) pairs a document must all contain to match ``query``. Cached: one
    search asks three or four times (the tsquery, its share, the walk key), and agents repeat
    their searches."""
    runs, words = _split(query[:500])
    found: list[tuple[str, bool]] = []
    for run in runs:
        grams = [run] if len(run) == 1 else [run[i : i + 2] for i in range(len(run) - 1)]
        found.extend((g, False) for g in dict.fromkeys(grams))
    for index, word in enumerate(words):
        found.append((word, index == len(words) - 1 and not word.isdigit()))
    return tuple(found[:32])


def tsquery(query: str, *, public_only: bool = False) -> str | None:
    """A tsquery literal matching documents that contain every term of ``query``; None if empty.
    ``public_only`` matches the subject and public text only (weights A and B): a channel key's
    search, which must not find words that occur only in internal notes."""
    weights = "AB" if public_only else ""
    return " & ".join(_quote(lexeme) + (":*" if prefix else (":" if weights else "")) + weights
                      for lexeme, prefix in terms(query)) or None


def estimated_share(query: str, frequencies: Mapping[str, float]) -> float:
    """An upper bound of the share of tickets matching ``query``, from PostgreSQL's lexeme
    statistics (``most_common_elems`` of the search column).

    PostgreSQL multiplies the frequencies of ANDed lexemes as if they were independent, but
    the bigrams of one Chinese word always come together (申请退款 = 申请 & 请退 & 退款), so it
    guesses hundreds of matches where there are tens of thousands and sorts them all. The
    rarest term bounds the AND from above, whatever the correlation; a lexeme absent from the
    statistics is rarer than every one listed.
    """
    share = 1.0
    for lexeme, prefix in terms(query):
        share = min(share, frequency(frequencies, lexeme, prefix=prefix))
    return share


class LexemeFrequencies(dict[str, float]):
    """Lexeme → document frequency (``repository.lexeme_frequencies``), remembering the largest
    frequency under each prefix asked for: a prefix term otherwise scans every listed lexeme
    (about 500 at a million tickets) twice per search, 5 % of a loaded search's CPU. The
    statistics are re-read as a new object (``service._LexemeStats``), so the memo never
    outlives them; it is cleared when full, so odd queries cannot grow it without bound."""

    MEMO = 4096

    def __init__(self, *args: object, **kwargs: float) -> None:
        super().__init__(*args, **kwargs)
        self._prefix_max: dict[str, float] = {}

    def prefix_max(self, prefix: str) -> float:
        found = self._prefix_max.get(prefix)
        if found is None:
            found = _prefix_max(self, prefix)
            if len(self._prefix_max) >= self.MEMO:
                self._prefix_max.clear()
            self._prefix_max[prefix] = found
        return found


def _prefix_max(frequencies: Mapping[str, float], prefix: str) -> float:
    return max((f for word, f in frequencies.items() if word.startswith(prefix)), default=0.0)


def frequency(frequencies: Mapping[str, float], lexeme: str, *, prefix: bool) -> float:
    """The share of tickets containing ``lexeme`` (as a prefix: the most common word it starts),
    0 when the statistics do not list it."""
    if not prefix:
        return frequencies.get(lexeme, 0.0)
    if isinstance(frequencies, LexemeFrequencies):
        return frequencies.prefix_max(lexeme)
    return _prefix_max(frequencies, lexeme)


#: characters of a lexeme that make its posting key: the SQL ``left(lexeme, 4)`` of migration
#: 0023's ``ticket_search_keys_of``. A CJK unigram or bigram is its own key; an English word
#: shares the key of its first four letters, so one key serves the word and every prefix of it
#: from four letters on.
KEY_LENGTH = 4


def posting_key(lexeme: str) -> str:
    return lexeme[:KEY_LENGTH]


def key_query(key: str) -> str:
    """The tsquery literal of the tickets a key's postings list: those with a lexeme whose
    first four characters are ``key`` (a prefix match), or exactly ``key`` when it is shorter."""
    return _quote(key) + (":*" if len(key) >= KEY_LENGTH else "")


def walk_key(query: str, ready: set[str] | frozenset[str] | None, frequencies: Mapping[str, float]) -> str | None:
    """The posting key whose tickets, newest first, a search for ``query`` can walk: one that
    every match contains (an exact term, or a prefix term of four characters or more), among
    the ``ready`` keys (None: any key, the one to ask for); the rarest such term's, so the walk
    rejects the fewest. None when no term has one (a short prefix such as ``ab``)."""
    best: tuple[float, str] | None = None
    for lexeme, prefix in terms(query):
        if prefix and len(lexeme) < KEY_LENGTH:
            continue
        key = posting_key(lexeme)
        if ready is not None and key not in ready:
            continue
        freq = frequency(frequencies, lexeme, prefix=prefix)
        if best is None or freq < best[0]:
            best = (freq, key)
    return best[1] if best else None
