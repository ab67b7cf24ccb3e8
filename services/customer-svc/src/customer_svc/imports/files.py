"""Reading import files (pure, no I/O but the bytes given): format, encoding, headers, rows.

Rows are streamed: openpyxl's read-only mode parses the sheet as it goes, the CSV reader decodes
as it goes, so memory stays at the stored file plus one batch of rows whatever the row count.
"""

from __future__ import annotations

import codecs
import csv
import io
import unicodedata
from collections.abc import Iterator
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

XLSX_MAGIC = b"PK\x03\x04"
FIELDS: dict[str, tuple[str, ...]] = {
    "customers": ("external_id", "name", "email", "phone", "tier", "organization"),
    "organizations": ("name", "domains", "tier"),
    "orders": ("external_id", "customer_external_id", "ordered_at", "amount", "currency", "status"),
}
REQUIRED: dict[str, tuple[str, ...]] = {
    "customers": ("external_id",),
    "organizations": ("name",),
    "orders": ("external_id", "customer_external_id", "ordered_at", "amount", "currency"),
}
#: header names understood without a mapping, besides the field names themselves (compared folded)
ALIASES: dict[str, dict[str, str]] = {
    "customers": {
        "姓名": "name", "名字": "name", "客户名称": "name", "客户姓名": "name", "名称": "name",
        "邮箱": "email", "电子邮件": "email", "电子邮箱": "email", "邮件": "email", "e-mail": "email",
        "手机": "phone", "手机号": "phone", "手机号码": "phone", "电话": "phone", "联系电话": "phone",
        "mobile": "phone",
        "等级": "tier", "客户等级": "tier", "级别": "tier", "会员等级": "tier",
        "公司": "organization", "组织": "organization", "企业": "organization", "所属公司": "organization",
        "company": "organization", "organisation": "organization",
        "编号": "external_id", "客户编号": "external_id", "外部编号": "external_id", "客户id": "external_id",
        "id": "external_id",
    },
    "organizations": {
        "名称": "name", "公司": "name", "公司名称": "name", "组织名称": "name", "企业名称": "name",
        "域名": "domains", "邮箱域名": "domains", "domain": "domains",
        "等级": "tier", "级别": "tier",
    },
    "orders": {
        "订单号": "external_id", "订单编号": "external_id", "订单id": "external_id", "order_id": "external_id",
        "客户编号": "customer_external_id", "客户id": "customer_external_id", "customer_id": "customer_external_id",
        "下单时间": "ordered_at", "订单时间": "ordered_at", "日期": "ordered_at", "时间": "ordered_at",
        "金额": "amount", "订单金额": "amount", "总金额": "amount", "total": "amount",
        "币种": "currency", "货币": "currency",
        "状态": "status", "订单状态": "status",
    },
}


class FileError(ValueError):
    """The file as a whole cannot be imported (the job fails with this message)."""


def detect_format(filename: str | None, head: bytes) -> str:
    if head.startswith(XLSX_MAGIC):
        return "xlsx"
    if filename and filename.lower().endswith((".xlsx", ".xlsm")):
        raise FileError("the file is named .xlsx but is not an xlsx workbook")
    return "csv"


def detect_encoding(content: bytes, *, chunk: int = 1 << 20) -> str:
    """UTF-8 (with or without BOM) when every byte decodes as UTF-8, else GB18030 (a superset of
    GBK and GB2312, what Excel on Chinese Windows saves as "CSV"). Checked in chunks, the text
    thrown away: no second copy of the file."""
    if content.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if content.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        for start in range(0, len(content), chunk):
            decoder.decode(content[start:start + chunk], final=start + chunk >= len(content))
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return "gb18030"
    return "utf-8"


def cell_text(value: Any) -> str | None:
    """A cell as text, as a user typed it: integers without ".0" (a phone number stored as a
    number), decimals exactly as shown, dates in ISO form; empty cells are None."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if value.is_integer():
            return str(int(value))
        return str(Decimal(repr(value)))
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    text = str(value).strip()
    return text or None


def rows(content: bytes, fmt: str) -> Iterator[list[str | None]]:
    """Every row of the first sheet (or the CSV), header included, cells as ``cell_text``."""
    if fmt == "xlsx":
        yield from _xlsx_rows(content)
    else:
        yield from _csv_rows(content)


def _xlsx_rows(content: bytes) -> Iterator[list[str | None]]:
    from openpyxl import load_workbook

    try:
        book = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for a broken archive
        raise FileError(f"not a readable xlsx workbook ({type(exc).__name__})") from None
    try:
        if not book.worksheets:
            return
        for row in book.worksheets[0].iter_rows(values_only=True):
            yield [cell_text(v) for v in row]
    finally:
        book.close()


def _csv_rows(content: bytes) -> Iterator[list[str | None]]:
    encoding = detect_encoding(content)
    text = io.TextIOWrapper(io.BytesIO(content), encoding=encoding, newline="")
    try:
        sample = text.read(8192)
        text.seek(0)
        try:
            dialect: Any = csv.Sniffer().sniff(sample, delimiters=",;\t")
        except csv.Error:
            dialect = csv.excel
        for row in csv.reader(text, dialect):
            yield [cell_text(v) for v in row]
    except UnicodeDecodeError as exc:
        raise FileError(f"the file is not valid {encoding}") from exc
    except csv.Error as exc:
        raise FileError(f"the CSV is malformed: {exc}") from exc


def clean_text(text: str, limit: int) -> str:
    """A file name or header as stored and reported: no control characters (PostgreSQL refuses
    NUL), no lone surrogates, at most ``limit`` characters."""
    cleaned = "".join(c for c in text if c >= " " and c != "\x7f")
    return cleaned.encode("utf-8", "replace").decode("utf-8")[:limit]


def fold_header(text: str | None) -> str:
    """Headers compare NFKC-folded, case-folded, with spaces and hyphens as underscores."""
    if not text:
        return ""
    folded = unicodedata.normalize("NFKC", text).strip().casefold()
    return "_".join(folded.replace("-", " ").split())


def map_columns(kind: str, header: list[str | None], mapping: dict[str, str]) -> dict[int, str]:
    """Column index → our field. ``mapping`` ({"<file column>": "<field>"}) wins over the
    default names and aliases; unknown columns are ignored; ``FileError`` when a required field
    has no column or two columns claim one field."""
    fields = FIELDS[kind]
    explicit = {fold_header(k): v for k, v in mapping.items()}
    aliases = {fold_header(k): v for k, v in ALIASES[kind].items()}
    found: dict[int, str] = {}
    for index, name in enumerate(header):
        key = fold_header(name)
        field = explicit.get(key) or (key if key in fields else None) or aliases.get(key)
        if field is None:
            continue
        if field in found.values():
            raise FileError(f"two columns are {field}")
        found[index] = field
    missing = [f for f in REQUIRED[kind] if f not in found.values()]
    if missing:
        raise FileError("no column for " + ", ".join(missing) + " (header: "
                        + ", ".join(h or "" for h in header[:30]) + ")")
    return found


def check_mapping(kind: str, mapping: dict[str, str]) -> list[str]:
    """The targets of a mapping that are no field of ``kind`` (pure; for a 422)."""
    return [v for v in mapping.values() if v not in FIELDS[kind]]
