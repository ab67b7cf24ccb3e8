"""one_line and the OneLine type: what a subject or a name may carry (table tests)."""

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from helpdesk_common.text import BIDI_CONTROLS, LINE_BREAKERS, OneLine, one_line


@pytest.mark.parametrize(("raw", "clean"), [
    ("Printer broken", "Printer broken"),
    ("  padded   and\tspaced  ", "padded and spaced"),
    ("Hello\r\nBcc: victim@example.com", "Hello Bcc: victim@example.com"),  # header injection
    ("line\none", "line one"),
    ("a\x0bb\x0cc\x1cd\x1de\x1ef\x85g", "a b c d e f g"),  # vertical tab, form feed, file/group/record sep, NEL
    ("C1\x80\x9fcontrols", "C1 controls"),
    ("del\x7fete", "del ete"),
    ("sep\u2028line\u2029para", "sep line para"),
    ("invoice\u202efdp.exe", "invoicefdp.exe"),  # RLO: Trojan Source
    ("\u202a\u202b\u202c\u202d\u202eall gone", "all gone"),
    ("\u2066iso\u2067late\u2068d\u2069", "isolated"),
    ("\ufeffBOM first", "BOM first"),
    ("退款\u3000申请", "退款 申请"),  # ideographic space collapses like any space
    ("non\u00a0breaking", "non breaking"),
    ("שלום?\u200f", "שלום?\u200f"),  # RLM kept: a mark without scope, needed by RTL titles
    ("\u200eLTR mark", "\u200eLTR mark"),
    ("family 👨\u200d👩\u200d👧", "family 👨\u200d👩\u200d👧"),  # ZWJ kept
    ("ｐｒｉｎｔｅｒ", "ｐｒｉｎｔｅｒ"),  # letters never change
    ("\r\n\t ", ""),
    ("\u202e\u2066", ""),
])
def test_one_line(raw: str, clean: str) -> None:
    assert one_line(raw) == clean


@given(st.text())
def test_one_line_leaves_no_breaker_and_is_idempotent(raw: str) -> None:
    clean = one_line(raw)
    assert not (set(clean) & (LINE_BREAKERS | BIDI_CONTROLS))
    assert clean == clean.strip() and "  " not in clean
    assert one_line(clean) == clean


class Named(BaseModel):
    name: OneLine(10)
    other: OneLine(10) | None = None


@pytest.mark.parametrize(("raw", "ok"), [
    ("Team A", "Team A"),
    ("  Team\r\n A ", "Team A"),
    ("0123456789", "0123456789"),
    ("   0123456789   ", "0123456789"),  # the limit applies to what is kept
])
def test_type_cleans(raw: str, ok: str) -> None:
    assert Named(name=raw).name == ok


@pytest.mark.parametrize("raw", ["", "   ", "\r\n", "\u202e", "\u2066\u2069\t", "01234567890"])
def test_type_refuses_empty_or_long(raw: str) -> None:
    with pytest.raises(ValidationError) as info:
        Named(name=raw)
    error = info.value.errors()[0]
    assert error["loc"] == ("name",)
    assert error["type"] == ("string_too_long" if raw.startswith("0") else "string_too_short")


def test_optional_and_schema() -> None:
    assert Named(name="x", other=" y\n").other == "y"
    schema = Named.model_json_schema()["properties"]["name"]
    assert (schema["type"], schema["minLength"], schema["maxLength"]) == ("string", 1, 10)
