"""Pure parts of imports and money: encodings, cells, headers, amounts per currency."""

from decimal import Decimal

import pytest

from customer_svc.imports import files
from customer_svc.imports.report import csv_lines
from customer_svc.orders.money import InvalidMoney, currency_code, format_amount, parse_amount


@pytest.mark.parametrize(("content", "expected"), [
    ("编号,姓名\r\n".encode("gbk"), "gb18030"),
    ("编号,姓名\r\n".encode("gb18030"), "gb18030"),
    ("编号,姓名\r\n".encode("utf-8"), "utf-8"),
    ("\ufeff编号,姓名\r\n".encode("utf-8"), "utf-8-sig"),
    (b"name,email\r\n", "utf-8"),
    ("姓名".encode("utf-16"), "utf-16"),
])
def test_detect_encoding(content, expected):
    assert files.detect_encoding(content) == expected


def test_a_multibyte_character_across_chunks_is_still_utf8():
    content = ("a" * 5 + "张三") .encode("utf-8")
    assert files.detect_encoding(content, chunk=6) == "utf-8"


def test_csv_rows_gbk_and_sniffed_delimiters():
    content = "编号;姓名\r\nC1;张三\r\n".encode("gbk")
    assert list(files.rows(content, "csv")) == [["编号", "姓名"], ["C1", "张三"]]


@pytest.mark.parametrize(("value", "text"), [
    (None, None), ("", None), ("  x ", "x"), (13800138000.0, "13800138000"), (12.5, "12.5"), (0.1, "0.1"),
    (7, "7"), (True, "true"),
])
def test_cell_text(value, text):
    assert files.cell_text(value) == text


def test_headers_fold_and_aliases():
    assert files.map_columns("customers", ["编号", " 姓名 ", "E-Mail", "手机号码", None, "备注"], {}) == {
        0: "external_id", 1: "name", 2: "email", 3: "phone"}
    assert files.map_columns("customers", ["ＩＤ", "Full Name"], {"full name": "name"}) == {0: "external_id", 1: "name"}
    with pytest.raises(files.FileError, match="external_id"):
        files.map_columns("customers", ["name"], {})
    with pytest.raises(files.FileError, match="two columns"):
        files.map_columns("customers", ["external_id", "编号"], {})
    assert files.check_mapping("orders", {"a": "amount", "b": "password"}) == ["password"]


def test_format_detection():
    assert files.detect_format("a.csv", b"PK\x03\x04") == "xlsx"
    assert files.detect_format("a.txt", b"a,b") == "csv"
    with pytest.raises(files.FileError):
        files.detect_format("a.xlsx", b"a,b")


@pytest.mark.parametrize(("value", "currency", "expected"), [
    ("12.5", "CNY", Decimal("12.50")), ("12.500", "CNY", Decimal("12.50")), (7, "USD", Decimal("7.00")),
    ("1200", "JPY", Decimal("1200")), ("1.25", "KWD", Decimal("1.250")), ("0", "EUR", Decimal("0.00")),
])
def test_amounts(value, currency, expected):
    assert parse_amount(value, currency) == expected


@pytest.mark.parametrize(("value", "currency"), [
    ("12.345", "CNY"), ("1.5", "JPY"), ("-1", "CNY"), ("1e2", "CNY"), ("NaN", "CNY"), ("Infinity", "CNY"),
    ("", "CNY"), ("abc", "CNY"), (12.5, "CNY"), (True, "CNY"), ("1000000000000000", "CNY"),
])
def test_bad_amounts(value, currency):
    with pytest.raises(InvalidMoney):
        parse_amount(value, currency)


def test_currencies():
    assert currency_code(" cny ") == "CNY"
    for bad in ("RMB", "XXX", "US", "usd1"):
        with pytest.raises(InvalidMoney):
            currency_code(bad)
    assert format_amount(Decimal("1200.000"), "JPY") == "1200" and format_amount(Decimal("1.2"), "BHD") == "1.200"


def test_report_cells_never_run_as_formulas():
    assert csv_lines([(2, "金额", "=HYPERLINK(\"x\")")], bom=True) == (
        "\ufeff2,金额,\"'=HYPERLINK(\"\"x\"\")\"\r\n".encode("utf-8"))
