"""Readable plain text from e-mail HTML, for HTML-only mail.

Agents read, search and quote ``body_text``, so HTML-only mail (many webmail and mobile
clients, most Outlook forwards) is turned into text that keeps its paragraphs and line breaks.
Script, style and head content is dropped, entities are decoded, and ``<blockquote>`` content is
prefixed with ``> `` so the quote stripper treats quoted history the same way it does in
plain-text replies. The stdlib ``html.parser`` copes with the broken markup mail is full of;
should it ever fail, nh3 strips the tags instead.
"""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser
from urllib.parse import unquote

import nh3

_SKIP = {"script", "style", "head", "title", "noscript", "template", "xml"}
_PARAGRAPH = {"p", "h1", "h2", "h3", "h4", "h5", "h6", "table", "ul", "ol", "dl", "pre", "blockquote", "hr"}
_LINE = {"br", "div", "tr", "li", "dt", "dd", "section", "article", "header", "footer", "address", "center",
         "form", "fieldset", "caption", "tbody", "thead", "tfoot"}
_VOID = {"br", "hr", "img", "meta", "link", "input", "area", "base", "col", "embed", "source", "wbr"}


class _TextCollector(HTMLParser):
    """Collect lines of text; each line remembers how deep in blockquotes it started."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[tuple[int, str]] = []
        self._line: list[str] = []
        self._line_depth = 0
        self._skip_depth = 0
        self._quote_depth = 0
        self._pre_depth = 0
        self._link: str | None = None
        self._link_text: list[str] = []
        self._p_classes: list[bool] = []

    def _has_text(self) -> bool:
        # a line holding only &nbsp; is Outlook's way of writing an empty line: it counts
        return bool("".join(self._line).strip(" \t\r\n\f"))

    def _break(self) -> None:
        """End the current line (an empty one too, for <br><br>)."""
        self.lines.append((self._line_depth, "".join(self._line)))
        self._line = []
        self._line_depth = self._quote_depth

    def _paragraph(self) -> None:
        """End the current line and make sure a blank line follows."""
        if self._has_text():
            self._break()
        if self.lines and self.lines[-1][1].strip():
            self.lines.append((self._quote_depth, ""))

    def _block(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        # Outlook writes every line as <p class=MsoNormal> with zero margins: a line, not a paragraph
        msonormal = "msonormal" in (dict(attrs).get("class") or "").lower()
        if tag == "br":
            self._break()
        elif tag in _PARAGRAPH and not msonormal:
            self._paragraph()
        elif self._has_text():
            self._break()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        tag = tag.lower()
        if tag == "body":
            self._skip_depth = 0  # an unclosed <head> must not swallow the body
        if tag in _SKIP:
            if tag not in _VOID:
                self._skip_depth += 1
            return
        if self._skip_depth:
            return
        if tag in _PARAGRAPH or tag in _LINE:
            self._block(tag, attrs)
            if tag == "p":
                self._p_classes.append("msonormal" in (dict(attrs).get("class") or "").lower())
        if tag == "blockquote":
            self._quote_depth += 1
            self._line_depth = self._quote_depth
        elif tag == "pre":
            self._pre_depth += 1
        elif tag == "li":
            self._line.append("- ")
        elif tag in ("td", "th"):
            if self._has_text():
                self._line.append("  ")
        elif tag == "a":
            self._link = dict(attrs).get("href") or None
            self._link_text = []

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag.lower() not in _VOID:
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        tag = tag.lower()
        if tag in _SKIP:
            if tag not in _VOID:
                self._skip_depth = max(0, self._skip_depth - 1)
            return
        if self._skip_depth:
            return
        if tag == "a" and self._link:
            shown = "".join(self._link_text).strip()
            href = self._link.strip()
            if href.lower().startswith(("http://", "https://")) and shown and href.rstrip("/") != shown.rstrip("/"):
                self._line.append(f" <{href}>")
            self._link = None
        if tag == "blockquote":
            if self._has_text():
                self._break()
            self._quote_depth = max(0, self._quote_depth - 1)
            self._line_depth = self._quote_depth
        if tag in _PARAGRAPH or tag in _LINE:
            msonormal = self._p_classes.pop() if tag == "p" and self._p_classes else False
            if tag in _PARAGRAPH and not msonormal:
                self._paragraph()
            elif self._has_text():
                self._break()
        if tag == "pre":
            self._pre_depth = max(0, self._pre_depth - 1)

    def handle_data(self, data: str) -> None:
        if self._skip_depth:
            return
        if self._pre_depth:
            chunks = data.replace("\r\n", "\n").split("\n")
            for index, chunk in enumerate(chunks):
                if index:
                    self._break()
                self._line.append(chunk)
        else:
            text = re.sub(r"[ \t\r\n\f]+", " ", data)
            if not self._has_text():
                self._line_depth = self._quote_depth
            self._line.append(text)
        if self._link is not None:
            self._link_text.append(data)

    def close(self) -> None:
        super().close()
        if self._has_text():
            self._break()


def _render(lines: list[tuple[int, str]]) -> str:
    """Join collected lines: prefix quote depth, trim spaces, at most one blank line in a row."""
    out: list[str] = []
    for depth, text in lines:
        text = text.replace("\xa0", " ").replace("\u200b", "").strip()
        line = ("> " * depth + text).rstrip()
        if not line and (not out or not out[-1]):
            continue
        if out and line == out[-1] and not line.strip("> "):
            continue  # no runs of empty quoted lines either
        out.append(line)
    while out and not out[-1]:
        out.pop()
    return "\n".join(out)


def html_to_text(markup: str) -> str:
    """Plain text of an HTML body: paragraphs as blank lines, ``<br>`` as line breaks."""
    if not markup:
        return ""
    collector = _TextCollector()
    try:
        collector.feed(markup)
        collector.close()
    except Exception:  # noqa: BLE001 - html.parser has had assertion bugs on hostile markup
        stripped = nh3.clean(markup, tags=set(), clean_content_tags={"script", "style"})
        return html.unescape(stripped).replace("\xa0", " ").strip()
    return _render(collector.lines)


def cid_references(markup: str | None) -> set[str]:
    """Content-IDs the HTML refers to as ``cid:`` URLs (lower-cased, percent-decoded)."""
    if not markup:
        return set()
    return {unquote(m).strip().lower() for m in re.findall(r"cid:([^\"'\s>)]+)", markup, flags=re.IGNORECASE)}
