"""Pure rules of deflection: the search query built from what a customer typed into the
new-ticket form, the privacy-preserving hash kept instead of that text, the per-address token bucket, and the
figures of the deflection report. No I/O."""

from __future__ import annotations

import hashlib
import math
import time
import unicodedata
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from ..search.text import MAX_QUERY_CHARS, MAX_QUERY_TERMS, chinese_terms, latin_words, split_runs

#: at most this many articles are suggested (Frappe Helpdesk's new-ticket form shows 5 too)
MAX_SUGGESTIONS = 5
#: the words taken from the description once the subject's are in
MAX_DESCRIPTION_TERMS = 6
#: only the first characters of a long description are read (the salient words of a ticket are
#: at its start; the cost of segmenting stays bounded)
MAX_DESCRIPTION_SCAN = 2000
OUTCOMES = ("deflected", "abandoned", "ticket_followed")

_EN_SUFFIXES = ("ies", "ing", "ed", "es", "s")


def english_stem(word: str) -> str:
    """A light stem to group inflections when counting words (refunds, refunded -> refund);
    PostgreSQL's ``english`` configuration does the real stemming at search time."""
    for suffix in _EN_SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            stem = word[: -len(suffix)]
            if suffix == "ies":
                return stem + "y"
            if suffix in ("ing", "ed") and len(stem) >= 4 and stem[-1] == stem[-2] and stem[-1] not in "aeiouslz":
                return stem[:-1]  # jammed, stopping -> jam, stop
            return stem
    return word


def salient_words(text: str) -> list[str]:
    """The words of ``text`` worth searching for, most frequent first (ties: first seen first):
    Chinese words from jieba (two characters or more, no stop words), English words without stop
    words, inflections of one stem counted together (shown in their first spelling)."""
    counts: dict[str, int] = {}
    first_form: dict[str, str] = {}
    order: dict[str, int] = {}
    for run in split_runs(text):
        if run.language == "zh":
            words = chinese_terms(run.text)
            # search mode yields 订单号 and 订单: the parts of a longer word are inside it
            words = [w for w in words if not any(w != o and w in o for o in words)]
            keys = [(w, w) for w in words]
        else:
            keys = [(english_stem(w), w) for w in latin_words(run.text) if not w.isdigit() or len(w) >= 3]
        for key, form in keys:
            counts[key] = counts.get(key, 0) + 1
            first_form.setdefault(key, form)
            order.setdefault(key, len(order))
    ranked = sorted(counts, key=lambda k: (-counts[k], order[k]))
    return [first_form[k] for k in ranked]


@dataclass(frozen=True)
class SuggestionQuery:
    #: the subject's words (the ranking that counts double)
    subject: str
    #: the subject's words, then the description's most salient ones
    full: str


def _joined(words: Iterable[str], limit: int = MAX_QUERY_CHARS) -> str:
    out: list[str] = []
    size = 0
    for word in words:
        if size + len(word) + (1 if out else 0) > limit:
            break
        out.append(word)
        size += len(word) + (1 if len(out) > 1 else 0)
    return " ".join(out)


def build_query(subject: str, description: str) -> SuggestionQuery:
    """The two search queries of a suggestion, each at most :data:`MAX_QUERY_CHARS` characters
    and :data:`MAX_QUERY_TERMS` words: the subject's words in their order, and those followed by
    the description's most salient words not already in the subject."""
    subject_words = list(dict.fromkeys(w for w in _words_in_order(subject)))[:MAX_QUERY_TERMS]
    taken = {english_stem(w.lower()) for w in subject_words}
    extra: list[str] = []
    room = max(0, min(MAX_DESCRIPTION_TERMS, MAX_QUERY_TERMS - len(subject_words)))
    for word in salient_words(description[:MAX_DESCRIPTION_SCAN]):
        if len(extra) >= room:
            break
        if english_stem(word.lower()) not in taken:
            taken.add(english_stem(word.lower()))
            extra.append(word)
    return SuggestionQuery(subject=_joined(subject_words), full=_joined(subject_words + extra))


def _words_in_order(text: str) -> list[str]:
    """The searchable words of a short text (a subject) in their order."""
    out: list[str] = []
    for run in split_runs(text[:MAX_DESCRIPTION_SCAN]):
        if run.language == "zh":
            words = chinese_terms(run.text)
            words = [w for w in words if not any(w != o and w in o for o in words)]
            if not words:  # only single characters: keep the run (search splits it into bigrams)
                words = [run.text] if len(run.text) >= 2 else []
            out.extend(words)
        else:
            out.extend(w for w in latin_words(run.text) if not w.isdigit() or len(w) >= 3)
    return out


def _normalised(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def query_hash(subject: str, description: str, language: str | None) -> str:
    """SHA-256 (hex) of the normalised subject, description and language: the same question asked
    twice has the same hash, and the text itself is never stored."""
    material = "\x1f".join((_normalised(subject), _normalised(description), (language or "").lower()))
    return hashlib.sha256(material.encode("utf-8")).hexdigest()


# --- the per-address limit -------------------------------------------------------------------


class TokenBuckets:
    """Token buckets keyed by client address: ``rate`` tokens a second up to ``burst``; at most
    ``max_keys`` addresses are remembered (the least recently seen is forgotten: a full bucket
    again, which errs on the side of serving). ``take`` answers 0 when a request may go ahead,
    else the seconds to wait."""

    def __init__(self, *, rate: float, burst: float, max_keys: int = 10_000,
                 clock=time.monotonic) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        self.rate, self.burst, self.max_keys, self._clock = rate, burst, max_keys, clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def take(self, key: str) -> float:
        now = self._clock()
        tokens, at = self._buckets.pop(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - at) * self.rate)
        wait = 0.0
        if tokens >= 1:
            tokens -= 1
        else:
            wait = (1 - tokens) / self.rate
        self._buckets[key] = (tokens, now)
        while len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        return wait


def retry_after(wait: float) -> str:
    """``Retry-After`` in whole seconds, at least 1."""
    return str(max(1, math.ceil(wait)))


# --- outcomes and the report -----------------------------------------------------------------


def outcome_after_window(*, viewed: bool) -> str:
    """A suggestion no ticket followed within the window: ``deflected`` when a suggested article
    was opened, ``abandoned`` otherwise."""
    return "deflected" if viewed else "abandoned"


def window_closed(created_at: datetime, now: datetime, window: timedelta) -> bool:
    """The sweep decides a suggestion once its window has passed."""
    return created_at + window <= now


def within_window(created_at: datetime, ticket_at: datetime, window: timedelta) -> bool:
    """A ticket created at ``ticket_at`` followed the suggestion created at ``created_at``
    (a ticket exactly at the window's end still counts)."""
    return ticket_at <= created_at + window


def report(*, suggestions: int, viewed: int, deflected: int, tickets_followed: int, abandoned: int) -> dict:
    """The deflection report's figures (docs/kb.md, "Suggestions and deflection"):
    ``self_service_rate`` = deflected / decided (deflected + abandoned + tickets_followed), None
    while nothing is decided; ``pending`` = suggestions whose window is still open."""
    decided = deflected + tickets_followed + abandoned
    return {
        "suggestions": suggestions, "viewed": viewed, "deflected": deflected, "tickets_followed": tickets_followed,
        "abandoned": abandoned, "pending": suggestions - decided,
        "self_service_rate": round(deflected / decided, 4) if decided else None,
    }
