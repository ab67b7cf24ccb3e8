"""Pure rules of erasure (helpdesk_common.erasure, pii_scan.encoded_forms): the needles of a
person, redaction of text and JSON, the base64 forms the scanner looks for."""

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from helpdesk_common import erasure
from helpdesk_common.pii_scan import encoded_forms


@pytest.mark.parametrize(("name", "identities", "expected"), [
    ("王小明", [("email", "Wang.XM@Example.cn")], ["Wang.XM@Example.cn", "wang.xm@example.cn", "王小明"]),
    ("Li", [("wechat_openid", "oWx_123")], ["oWx_123"]),  # a 2-character name would redact every "li"
    (None, [("phone", "+86 138-1234-5678")],
     ["+86 138-1234-5678", "+8613812345678", "8613812345678", "13812345678"]),
    (None, [("phone", "13812345678")], ["+8613812345678", "8613812345678", "13812345678"]),
    ("Erased customer", [], []),  # the tombstone is not a person
    ("  ", [("email", " ")], []),
])
def test_needles(name, identities, expected):
    assert erasure.needles(name=name, identities=identities) == expected


@pytest.mark.parametrize(("text", "found", "expected"), [
    ("Call 王小明 on 13812345678", ["13812345678", "王小明"], "Call [redacted] on [redacted]"),
    ("Mail WANG.XM@example.cn now", ["wang.xm@example.cn"], "Mail [redacted] now"),
    ("nothing here", ["王小明"], "nothing here"),
    (None, ["x" * 5], None),
    ("abc", [], "abc"),
    ("a.b*c", ["a.b*c"], "[redacted]"),  # needles are literal, never patterns
])
def test_redact(text, found, expected):
    assert erasure.redact(text, found) == expected


def test_redact_json_reaches_keys_lists_and_nested_values():
    value = {"to": ["wang@example.cn", "other@example.cn"], "wang@example.cn": {"n": 1, "note": "cc wang@example.cn"}}
    assert erasure.redact_json(value, ["wang@example.cn"]) == {
        "to": ["[redacted]", "other@example.cn"], "[redacted]": {"n": 1, "note": "cc [redacted]"}}


_WORDS = st.characters(whitelist_categories=("Ll", "Lu", "Lo", "Nd"))


@given(st.text(_WORDS, min_size=3, max_size=40), st.text(max_size=60), st.text(max_size=60))
def test_a_redacted_needle_is_gone(needle, before, after):
    """Letters and digits (a name, the parts of an address): every occurrence goes, wherever it is."""
    found = erasure.needles(name=needle, identities=())
    if not found:
        return
    text = before + needle + after
    assert erasure.mentions(text, found)
    out = erasure.redact(text, found)
    assert not erasure.mentions(out, found) or erasure.mentions(erasure.REDACTED, found)


@given(st.text(min_size=9, max_size=40), st.binary(max_size=10), st.binary(max_size=10))
def test_the_scanner_finds_a_needle_inside_base64_at_any_alignment(needle, before, after):
    """From 9 bytes on, every alignment has a core of 8+ characters (shorter needles are found
    only where their core is long enough: documented)."""
    forms = encoded_forms(needle)
    assert len(forms) == 3
    blob = base64.b64encode(before + needle.encode() + after).decode()
    assert any(form in blob for form in forms)
