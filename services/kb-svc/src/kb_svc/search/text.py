"""Text processing for search, without I/O beyond the shipped dictionaries.

Chinese and English are handled side by side: a text is split into runs of CJK characters and
runs of everything else. Latin runs are left whole for PostgreSQL's ``english`` configuration
(stemming, stop words) to turn into lexemes; CJK runs are segmented with jieba in search mode
(a product dictionary teaches it 退款, 发票, 订单号 ...) and indexed as ``simple`` lexemes, plus
character bigrams of each run as a fallback for words the segmenter does not know.

At query time, synonyms (per language, from ``dict/synonyms.json``) widen each query term into
alternatives, and English words missing from the index vocabulary are corrected to the nearest
vocabulary words (:func:`choose_corrections`). :func:`snippet` cuts the best window of an
article's text around the matches and marks them, HTML-escaped.
"""

from __future__ import annotations

import html
import json
import logging
import re
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

log = logging.getLogger(__name__)

DICT_DIR = Path(__file__).parent / "dict"
Language = Literal["zh", "en"]

#: CJK unified ideographs (with extension A and the compatibility block), kana and hangul are
#: written without spaces between words, so they are segmented rather than split on spaces
_CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3040-\u30ff\uac00-\ud7af"
_CJK_RUN = re.compile(f"[{_CJK}]+")
_IDEOGRAPH = re.compile(f"^[{_CJK}]+$")
_LATIN_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_HAS_WORD_CHAR = re.compile(r"[^\W_]", re.UNICODE)

#: query-side limits: longer queries are refused (422), extra terms ignored
MAX_QUERY_CHARS = 200
MAX_QUERY_TERMS = 12
#: words longer than this are not words (hashes, base64): neither indexed in the vocabulary
#: nor corrected
MAX_WORD_CHARS = 40

#: question words and particles that say nothing about the topic; dropped from queries and
#: from the indexed Chinese terms (the English ones are dropped by PostgreSQL's ``english``)
ZH_STOPWORDS = frozenset(
    "如何 怎么 怎样 怎么样 什么 为什么 为何 哪里 哪儿 哪个 哪些 可以 能否 是否 能不能 可不可以 "
    "我们 你们 他们 我的 你的 请问 一下 一个 这个 那个 没有 还是 或者 以及 已经 需要 时候 "
    "进行 关于 问题 请 了 的 吗 呢 吧 啊 我 你 在 是 和 与 及".split()
)
EN_STOPWORDS = frozenset(
    "a an and are as at be but by can could do does did for from has have how i if in into is it "
    "its me my no not of on or our please should so than that the their them then there these "
    "they this to was we were what when where which who why will with would you your".split()
)


@dataclass(frozen=True)
class Run:
    """A stretch of text in one script: ``zh`` (CJK, no spaces between words) or ``en``."""

    language: Language
    text: str
    start: int


def split_runs(text: str) -> list[Run]:
    """Split ``text`` into CJK runs and the Latin (non-CJK) runs between them.

    Latin runs keep their spaces and punctuation (PostgreSQL's parser needs them); runs with no
    letter or digit at all are dropped."""
    runs: list[Run] = []
    pos = 0
    for m in _CJK_RUN.finditer(text):
        if m.start() > pos:
            _add_latin(runs, text, pos, m.start())
        runs.append(Run("zh", m.group(), m.start()))
        pos = m.end()
    if pos < len(text):
        _add_latin(runs, text, pos, len(text))
    return runs


def _add_latin(runs: list[Run], text: str, start: int, end: int) -> None:
    chunk = text[start:end]
    if _HAS_WORD_CHAR.search(chunk):
        stripped = chunk.strip()
        runs.append(Run("en", stripped, start + chunk.index(stripped[0])))


def detect_language(text: str) -> Language | None:
    """The dominant script of ``text`` by characters: ``zh`` if CJK characters are at least a
    third of its letters (Chinese packs a word into two characters), else ``en``; None for no
    letters at all."""
    cjk = sum(len(m.group()) for m in _CJK_RUN.finditer(text))
    latin = sum(len(m.group()) for m in _LATIN_WORD.finditer(_CJK_RUN.sub(" ", text)))
    if cjk == 0 and latin == 0:
        return None
    return "zh" if cjk * 3 >= latin else "en"


# --- Chinese segmentation -----------------------------------------------------------------------

_segmenter_lock = threading.Lock()
_segmenter: Any = None
#: how long the one-time load of jieba's model and the product dictionary took (seconds)
segmenter_load_seconds: float | None = None


def segmenter() -> Any:
    """jieba's tokenizer, loaded once per process on first use (thread-safe: concurrent first
    callers wait for the one load), with the product dictionary and the Chinese synonyms added
    so that 订单号 or 退钱 stay one word."""
    global _segmenter, segmenter_load_seconds
    if _segmenter is not None:
        return _segmenter
    with _segmenter_lock:
        if _segmenter is None:
            import jieba

            jieba.setLogLevel(logging.WARNING)
            started = time.perf_counter()
            tokenizer = jieba.Tokenizer()
            tokenizer.initialize()
            tokenizer.load_userdict(str(DICT_DIR / "products.txt"))
            for group in synonyms()["zh"]:
                for word in group:
                    if _IDEOGRAPH.match(word):
                        tokenizer.add_word(word, freq=500)
            segmenter_load_seconds = time.perf_counter() - started
            log.info("jieba loaded", extra={"seconds": round(segmenter_load_seconds, 3)})
            _segmenter = tokenizer
    return _segmenter


def segment(run: str) -> list[str]:
    """jieba's search-mode words of a CJK run (long words also yield their shorter words:
    订单号 gives 订单 and 订单号), in text order."""
    return [w for w in segmenter().cut_for_search(run, HMM=True) if w.strip()]


def chinese_terms(run: str) -> list[str]:
    """The words of a CJK run worth indexing or searching: two characters or more, no stop
    words."""
    return [w for w in segment(run) if len(w) >= 2 and w not in ZH_STOPWORDS and _IDEOGRAPH.match(w)]


def bigrams(run: str) -> list[str]:
    """Overlapping character pairs of a CJK run (a run of one character is its own term)."""
    if len(run) < 2:
        return [run] if run else []
    return [run[i:i + 2] for i in range(len(run) - 1)]


def latin_words(text: str) -> list[str]:
    """Lower-cased words of Latin text, as the vocabulary keeps them (no stop words, no
    single characters, nothing longer than :data:`MAX_WORD_CHARS`)."""
    return [w for w in (m.group().lower() for m in _LATIN_WORD.finditer(text))
            if 2 <= len(w) <= MAX_WORD_CHARS and w not in EN_STOPWORDS and not _CJK_RUN.search(w)]


@dataclass
class FieldTerms:
    """One field's text ready for ``to_tsvector``: the Latin runs joined (for ``english``),
    the Chinese words and the Chinese bigrams (for ``simple``), and its vocabulary."""

    latin: str = ""
    chinese: list[str] = field(default_factory=list)
    bigrams: list[str] = field(default_factory=list)
    en_words: set[str] = field(default_factory=set)
    zh_words: set[str] = field(default_factory=set)

    @property
    def chinese_text(self) -> str:
        return " ".join(self.chinese)

    @property
    def bigram_text(self) -> str:
        return " ".join(self.bigrams)


def analyze(text: str) -> FieldTerms:
    """Split one field (title, labels, body) into what the search document is built from."""
    out = FieldTerms()
    latin: list[str] = []
    for run in split_runs(text or ""):
        if run.language == "zh":
            words = chinese_terms(run.text)
            out.chinese.extend(words)
            out.zh_words.update(words)
            out.bigrams.extend(bigrams(run.text))
        else:
            latin.append(run.text)
            out.en_words.update(latin_words(run.text))
    out.latin = " ".join(latin)
    return out


# --- synonyms and queries -----------------------------------------------------------------------

@lru_cache(maxsize=1)
def synonyms() -> dict[str, list[list[str]]]:
    """The synonym groups per language (``{"zh": [[...], ...], "en": [[...], ...]}``)."""
    data = json.loads((DICT_DIR / "synonyms.json").read_text(encoding="utf-8"))
    return {lang: [[w.lower() for w in group] for group in data.get(lang, [])] for lang in ("zh", "en")}


@lru_cache(maxsize=1)
def _synonym_index() -> dict[str, dict[str, tuple[str, ...]]]:
    index: dict[str, dict[str, tuple[str, ...]]] = {"zh": {}, "en": {}}
    for lang, groups in synonyms().items():
        for group in groups:
            for word in group:
                known = index[lang].get(word, ())
                index[lang][word] = tuple(dict.fromkeys(known + tuple(group)))
    return index


def synonyms_of(term: str, language: Language) -> tuple[str, ...]:
    """``term`` and its synonyms (``term`` first); an English phrase is space-separated words."""
    group = _synonym_index()[language].get(term.lower(), ())
    return (term,) + tuple(w for w in group if w != term)


@dataclass(frozen=True)
class QueryTerm:
    """One term of a query and the alternatives any of which matches it.

    ``source`` is what the user typed (a word, an English phrase found in the synonym table,
    or a Chinese word); ``alternatives`` holds ``source`` first, then synonyms and
    corrections. English alternatives are space-separated words (a phrase); Chinese ones may be
    unknown words, which :func:`tsquery_text` splits into bigrams."""

    language: Language
    source: str
    alternatives: tuple[str, ...]


def parse_query(q: str) -> list[QueryTerm]:
    """The terms of a query: English words (and multi-word synonyms like ``money back``),
    Chinese words from jieba; stop words dropped, duplicates merged, at most
    :data:`MAX_QUERY_TERMS`. Synonyms are added; corrections come later (they need the
    vocabulary)."""
    terms: list[QueryTerm] = []
    seen: set[tuple[str, str]] = set()

    def add(language: Language, source: str) -> None:
        if (language, source) not in seen and len(terms) < MAX_QUERY_TERMS:
            seen.add((language, source))
            terms.append(QueryTerm(language, source, synonyms_of(source, language)))

    for run in split_runs(q):
        if run.language == "zh":
            words = chinese_terms(run.text)
            if not words:  # only stop words or single characters: search the run itself
                stripped = "".join(ch for ch in run.text if ch not in ZH_STOPWORDS)
                words = [stripped] if len(stripped) >= 2 else []
            # search mode yields both 订单号 and 订单: keep the longest, the parts are inside it
            for word in words:
                if not any(word != other and word in other for other in words):
                    add("zh", word)
        else:
            words = [m.group().lower() for m in _LATIN_WORD.finditer(run.text)]
            index = _synonym_index()["en"]
            i = 0
            while i < len(words):
                for size in (3, 2):  # a known phrase: "money back", "sign in", "two step verification"
                    phrase = " ".join(words[i:i + size])
                    if len(words) - i >= size and phrase in index:
                        add("en", phrase)
                        i += size
                        break
                else:
                    word = words[i]
                    if word not in EN_STOPWORDS and len(word) <= MAX_WORD_CHARS and (len(word) >= 2 or word.isdigit()):
                        add("en", word)
                    i += 1
    return terms


def with_corrections(term: QueryTerm, corrections: Sequence[str]) -> QueryTerm:
    """``term`` with spelling corrections (and their synonyms) added to its alternatives."""
    extra: list[str] = []
    for word in corrections:
        extra.extend(synonyms_of(word, term.language))
    return QueryTerm(term.language, term.source, tuple(dict.fromkeys(term.alternatives + tuple(extra))))


def needs_correction(term: QueryTerm) -> bool:
    """Only English single words of four letters or more are spell-corrected."""
    return term.language == "en" and " " not in term.source and term.source.isalpha() and len(term.source) >= 4


def max_edits(word: str) -> int:
    """Edits tolerated for a word: 2 from five letters, 1 for four, none below."""
    return 2 if len(word) >= 5 else 1 if len(word) == 4 else 0


def edit_distance(a: str, b: str, limit: int = 3) -> int:
    """Optimal string alignment distance (insert, delete, substitute, swap neighbours), or
    ``limit + 1`` as soon as it is known to exceed ``limit``."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        if min(cur) > limit:
            return limit + 1
        prev2, prev = prev, cur
    return min(prev[-1], limit + 1)


def choose_corrections(word: str, candidates: Iterable[tuple[str, int]], *, limit: int = 2) -> list[str]:
    """The vocabulary words (``(word, document frequency)`` candidates, e.g. the trigram-similar
    ones) nearest to a misspelt ``word``: the smallest edit distance within :func:`max_edits`,
    ties by frequency then alphabetically; at most ``limit``."""
    allowed = max_edits(word)
    if allowed == 0:
        return []
    scored = []
    for candidate, df in candidates:
        if candidate == word:
            continue
        distance = edit_distance(word, candidate, allowed)
        if distance <= allowed:
            scored.append((distance, -df, candidate))
    if not scored:
        return []
    best = min(s[0] for s in scored)
    return [c for d, _, c in sorted(scored) if d == best][:limit]


_TSQUERY_UNSAFE = re.compile(r"[^\w]+", re.UNICODE)


def _lexeme(word: str, weight: str = "") -> str:
    return "'" + word.replace("'", "''").replace("\\", "") + "'" + (":" + weight if weight else "")


def tsquery_text(term: QueryTerm, unknown: frozenset[str] | set[str] = frozenset(), *, weight: str = "") -> str:
    """The ``to_tsquery`` input for one term: alternatives OR-ed; an English phrase's words
    followed by each other (``<->``); a Chinese word the index does not know (in ``unknown``)
    also as its bigrams AND-ed, so a word jieba cut differently in the articles still matches
    (only then: bigram conjunctions make ranking several times slower). Run through
    ``english`` for English terms and ``simple`` for Chinese ones. ``weight="A"`` restricts
    every lexeme to the title."""
    parts: list[str] = []
    for alt in term.alternatives:
        if term.language == "en":
            words = [w for w in _TSQUERY_UNSAFE.split(alt.lower()) if w]
            if words:
                parts.append(" <-> ".join(_lexeme(w, weight) for w in words))
        else:
            words = [w for w in _CJK_RUN.findall(alt)] or [w for w in _TSQUERY_UNSAFE.split(alt.lower()) if w]
            for word in words:
                parts.append(_lexeme(word, weight))
                if len(word) >= 3 and word in unknown:
                    parts.append("(" + " & ".join(_lexeme(b, weight) for b in bigrams(word)) + ")")
    return " | ".join(dict.fromkeys(parts))


def phrase_text(terms: Sequence[QueryTerm]) -> str:
    """The query's own words one after the other (for the title-phrase boost), or ``""``."""
    words: list[str] = []
    for term in terms:
        if term.language == "en":
            words.extend(_lexeme(w) for w in _TSQUERY_UNSAFE.split(term.source.lower()) if w)
        else:
            words.append(_lexeme(term.source))
    return " <-> ".join(words) if len(words) >= 2 else ""


# --- snippets -----------------------------------------------------------------------------------

SNIPPET_CHARS = 160


def _en_matches(token: str, needle: str) -> bool:
    """A text word matches a query word or stem: the same word, or the stem's inflections
    (``refund`` → refunds, refunded; stem ``polici`` → policy, policies)."""
    if token == needle:
        return True
    if len(needle) < 4:
        return token in (needle + "s", needle + "es")
    return token.startswith(needle[:-1]) and len(token) - len(needle) <= 4


def find_matches(text: str, words: Iterable[str]) -> list[tuple[int, int, str]]:
    """``(start, end, word)`` spans of ``text`` matching the query ``words`` (English words and
    stems matched per word, Chinese words as substrings), non-overlapping, in order."""
    en = [w.lower() for w in words if w and not _CJK_RUN.search(w)]
    zh = sorted({w for w in words if w and _CJK_RUN.fullmatch(w)}, key=len, reverse=True)
    spans: list[tuple[int, int, str]] = []
    if en:
        for m in _LATIN_WORD.finditer(text):
            token = m.group().lower()
            for needle in en:
                if _en_matches(token, needle):
                    spans.append((m.start(), m.end(), needle))
                    break
    for needle in zh:
        start = text.find(needle)
        while start >= 0:
            spans.append((start, start + len(needle), needle))
            start = text.find(needle, start + len(needle))
    spans.sort(key=lambda s: (s[0], -(s[1] - s[0])))
    merged: list[tuple[int, int, str]] = []
    for span in spans:
        if merged and span[0] < merged[-1][1]:
            continue
        merged.append(span)
    return merged


def best_window(length: int, spans: Sequence[tuple[int, int, str]], width: int) -> tuple[int, int]:
    """The ``width``-character window of a text holding the most distinct matched words (then
    the most matches, then the earliest), starting a little before its first match."""
    if length <= width or not spans:
        return 0, min(length, width)
    lead = width // 5
    best: tuple[int, int, int] | None = None
    best_start = 0
    for i, (start, _, _) in enumerate(spans):
        inside = [s for s in spans[i:] if s[1] <= start + width - lead]
        score = (len({s[2] for s in inside}), len(inside), -start)
        if best is None or score > best:
            best, best_start = score, start
    begin = max(0, min(best_start - lead, length - width))
    return begin, begin + width


def snippet(text: str, words: Iterable[str], *, width: int = SNIPPET_CHARS) -> str:
    """An HTML snippet of ``text``: the best window around the matches of ``words``, each match
    in ``<mark>…</mark>``, everything else escaped, ``…`` where the text was cut."""
    text = " ".join((text or "").split())
    spans = find_matches(text, list(words))
    begin, end = best_window(len(text), spans, width)
    if begin > 0:  # do not start in the middle of an English word
        space = text.find(" ", begin, begin + 15)
        if space >= 0 and not _CJK_RUN.match(text[begin]):
            begin = space + 1
    if end < len(text):
        space = text.rfind(" ", end - 15, end)
        if space > begin and not _CJK_RUN.match(text[end - 1]):
            end = space
    out: list[str] = ["…"] if begin > 0 else []
    pos = begin
    for start, stop, _ in spans:
        if start < begin or stop > end:
            continue
        out.append(html.escape(text[pos:start]))
        out.append("<mark>" + html.escape(text[start:stop]) + "</mark>")
        pos = stop
    out.append(html.escape(text[pos:end]))
    if end < len(text):
        out.append("…")
    return "".join(out)
