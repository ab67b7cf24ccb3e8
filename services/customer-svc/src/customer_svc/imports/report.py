"""The error report as CSV (pure): UTF-8 with a BOM so that Excel shows Chinese messages, and
cells that a spreadsheet would run as a formula (=, +, -, @) made text."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from typing import Any

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def csv_lines(rows: Iterable[tuple[Any, ...]], *, bom: bool = False) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    for row in rows:
        writer.writerow([safe_cell(v) for v in row])
    return (b"\xef\xbb\xbf" if bom else b"") + out.getvalue().encode("utf-8")
