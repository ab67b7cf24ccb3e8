"""Search lexemes and queries, Chinese and English (pure)."""

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ticket_svc.tickets import search


def matches(document: str, query: str) -> bool:
    """Evaluate a tsquery of ANDed terms against a document's lexemes the way PostgreSQL does."""
    lexemes = set(search.lexemes(document))
    q = search.tsquery(query)
    assert q is not None
    for term in q.split(" & "):
        prefix = term.endswith(":*")
        word = term.removesuffix(":*").strip("'").replace("''", "'")
        if not (any(lexeme.startswith(word) for lexeme in lexemes) if prefix else word in lexemes):
            return False
    return True


def test_chinese_substring_finds_the_longer_phrase():
    assert matches("申请退款", "退款")
    assert matches("我想申请退款，订单号 12345", "申请退款")
    assert matches("退款", "退")
    assert not matches("申请退货", "退款")


def test_english_words_and_prefixes():
    assert matches("Refund request for order 12345", "refund")
    assert matches("Refund request for order 12345", "REFUN")
    assert matches("Refund request for order 12345", "order 12345")
    assert not matches("Refund request", "invoice")


def test_mixed_text():
    doc = "VIP客户 complains: 打印机 offline since Monday"
    assert matches(doc, "打印机 offline")
    assert matches(doc, "vip")


def test_punctuation_never_reaches_the_query_syntax():
    assert search.tsquery("o'brien \\ '; drop table tickets; --") == "'o' & 'brien' & 'drop' & 'table' & 'tickets':*"
    assert search.tsquery("   ,,, ") is None
    assert search.tsquery("a:*|b") == "'a' & 'b':*"


def test_estimated_share_is_bounded_by_the_rarest_term():
    freqs = {"申请": 0.09, "请退": 0.04, "退款": 0.09, "refund": 0.05, "refunded": 0.02, "b": 1.0}
    assert search.estimated_share("申请退款", freqs) == 0.04  # not 0.09 * 0.04 * 0.09
    assert search.estimated_share("refu", freqs) == 0.05  # a prefix is as common as its commonest word
    assert search.estimated_share("B-4242", freqs) == 0.0  # "4242" is not among the common lexemes
    assert search.estimated_share("退款", {}) == 0.0


# --- issue 9, "Also fix" 4: full-width Latin and digits fold (NFKC) at index and query time ------


def test_full_width_latin_and_digits_fold_both_ways():
    assert search.lexemes("ｐｒｉｎｔｅｒ ＯＦＦＬＩＮＥ １２３") == ["printer", "offline", "123"]
    assert search.terms("ｐｒｉｎｔｅｒ") == search.terms("printer")
    assert matches("ｐｒｉｎｔｅｒ broken", "printer")
    assert matches("printer broken", "ｐｒｉｎｔｅｒ")
    assert matches("订单１２３４５", "12345")
    assert matches("ﾌﾟﾘﾝﾀｰ", "プリンター")  # half-width katakana fold to full width


def test_document_weights_subject_public_and_internal_text():
    """A tsvector literal: the subject at weight A, public text B, internal notes C (channel
    searches see A and B only; a subject change drops exactly the A positions)."""
    doc = search.document(subject="Printer", public=["printer jam", None], internal=["secret"])
    assert doc == "'printer':1A,2B 'jam':2B 'secret':3C"
    assert search.document(public=["o'brien \\ 退款"], internal=["退款"]) == \
        "'退':2B,3C '款':2B,3C '退款':2B,3C 'o':2B 'brien':2B"
    assert search.document() == ""


def test_public_only_queries_are_restricted_to_subject_and_public_text():
    assert search.tsquery("jam printer", public_only=True) == "'jam':AB & 'printer':*AB"
    assert search.tsquery("退款", public_only=True) == "'退款':AB"
    assert search.tsquery("jam printer") == "'jam' & 'printer':*"


@given(st.dictionaries(st.text(alphabet="abcpr退款申请", min_size=1, max_size=5), st.floats(0, 1), max_size=40),
       st.lists(st.text(alphabet="abcpr退款申请 ", max_size=8), min_size=1, max_size=6))
def test_remembered_prefix_frequencies_answer_like_the_plain_statistics(plain, queries):
    """The memo of ``LexemeFrequencies`` changes no answer: the share and the walk key of every
    query, asked twice, are the plain mapping's, with the memo cleared when full."""
    remembered = search.LexemeFrequencies(plain)
    remembered.MEMO = 3
    for query in queries * 2:
        assert search.estimated_share(query, remembered) == search.estimated_share(query, plain)
        assert search.walk_key(query, None, remembered) == search.walk_key(query, None, plain)
        assert len(remembered._prefix_max) <= 3
    assert remembered == plain


def test_a_prefix_term_takes_its_most_common_word():
    freqs = search.LexemeFrequencies({"printer": 0.2, "print": 0.3, "prism": 0.01, "refund": 0.05})
    assert search.frequency(freqs, "pri", prefix=True) == 0.3
    assert search.frequency(freqs, "pri", prefix=False) == 0.0
    assert search.frequency(freqs, "zzz", prefix=True) == 0.0
    assert search.estimated_share("refund printe", freqs) == 0.05


def _document_one_lexeme_at_a_time(subject, public, internal, cap):  # type: ignore[no-untyped-def]
    """The document's definition, one lexeme at a time: each part's lexemes in order, a lexeme
    seen in an earlier part gains this part's weight, a new one is kept while fewer than ``cap``
    are (the reference for ``document``'s dict operations)."""
    weights: dict[str, list[str]] = {}
    for weight, position, texts in (("A", 1, [subject]), ("B", 2, public), ("C", 3, internal)):
        seen: dict[str, None] = {}
        for text in texts:
            if not text:
                continue
            folded = search.fold(text)
            cjk = f"[{search._CJK}]+"
            for run in re.findall(cjk, folded):
                seen.update(dict.fromkeys([*run, *(run[i:i + 2] for i in range(len(run) - 1))]))
            seen.update(dict.fromkeys(w[:search.MAX_WORD] for w in re.findall(r"[^\W_]+", re.sub(cjk, " ", folded))))
            if len(seen) >= cap:
                break
        for lexeme in list(seen)[:cap]:
            if lexeme in weights:
                weights[lexeme].append(f"{position}{weight}")
            elif len(weights) < cap:
                weights[lexeme] = [f"{position}{weight}"]
    return " ".join("'" + lexeme.replace("\\", "\\\\").replace("'", "''") + "':" + ",".join(found)
                    for lexeme, found in weights.items())


_TEXT = st.one_of(st.none(), st.text(max_size=60), st.text(alphabet="ab退款申请 ｐ１'\\_-，。ﾌﾟ²あ한", max_size=60))


@given(_TEXT, st.lists(_TEXT, max_size=3), st.lists(_TEXT, max_size=3), st.sampled_from([3, 10, 4000]))
def test_the_document_is_its_definition_under_the_cap(subject, public, internal, cap):
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(search, "MAX_LEXEMES", cap)
        assert search.document(subject=subject, public=public, internal=internal) == \
            _document_one_lexeme_at_a_time(subject, public, internal, cap)
