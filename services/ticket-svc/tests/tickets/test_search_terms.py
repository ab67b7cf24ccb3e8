"""Search lexemes and queries, Chinese and English (pure)."""

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
