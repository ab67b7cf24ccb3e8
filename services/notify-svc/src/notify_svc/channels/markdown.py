"""Plain text shown as written in chat markdown (WeCom application messages, DingTalk work
notifications). Pure functions.

A notification is rendered from its template as plain text (the e-mail's text part), and that
text carries what customers wrote: ticket subjects, requester names. Sent as markdown unchanged,
a subject such as ``[Reset your password](https://evil.example)`` would become a link in an
agent's client, ``![x](https://tracker.example/p.gif)`` an image that the client fetches (a read
receipt for whoever wrote it), ``<font color="warning">`` coloured text, ``**`` bold and a leading
``#`` a heading. So the text is escaped to show literally, and the one thing made clickable is a
bare ``http(s)`` URL, as ``[the URL](the URL)``: its visible text is its target, so it cannot
pretend to be something else.

How, and why this way rather than escaping every punctuation mark:

- both clients render a subset of markdown whose handling of backslash escapes is not documented
  in full, so escapes are spent only where a construct could otherwise form, and the common text
  of a notification (``[#42]``, ``first_response``, ``12:00``) stays free of them;
- a link or image needs ``](`` (or ``][`` / ``]:`` for the reference forms): that ``]`` is
  escaped; before a URL we turn into a link, every ``[`` of the line is escaped (a lenient
  renderer must not take ``[click here [URL](URL)`` for one link) and so is a ``]`` or ``!``
  right before it;
- emphasis, strike-through and code spans need a *pair* of ``*``, ``_``, ``~`` or backticks: a
  mark is escaped everywhere when the text holds two or more of it, and left alone otherwise;
- ``<`` becomes ``&lt;`` (no HTML tag, no ``<@userid>`` mention); a backslash is doubled;
- a line starting a heading, quote, list, rule or numbered item (``#``, ``>``, ``-``, ``+``,
  ``*``, ``=``, ``12.`` / ``12)``) has that character escaped, and leading blanks (an indented
  code block) are dropped.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

#: marks that emphasise (or strike, or quote as code) only in pairs
PAIRED_MARKS = "*_~`"
#: where a bare URL ends: blanks, quotes, brackets and braces, and CJK / full-width punctuation
_URL = re.compile(r"https?://[^\s<>\"'`\[\]{}|\\^\u3000-\u303f\uff00-\uffef]+", re.IGNORECASE)
_TRAILING = ".,;:!?"
_LINE_START = re.compile(r"([#>+=*-]|\d+[.)](?= |$))")
#: characters percent-encoded in a link's target, so that the target cannot end early
_TARGET_ESCAPES = {"(": "%28", ")": "%29"}


def pair_marks(texts: Iterable[str]) -> frozenset[str]:
    """The marks of ``PAIRED_MARKS`` that occur at least twice over all of ``texts`` together (a
    pair may span the title and the body, or two lines of one paragraph)."""
    joined = "".join(texts)
    return frozenset(mark for mark in PAIRED_MARKS if joined.count(mark) >= 2)


def _url_end(candidate: str) -> str:
    """``candidate`` without the punctuation that ends a sentence rather than the URL, and
    without a closing parenthesis it did not open (``(see https://x.example/a)``)."""
    while candidate:
        last = candidate[-1]
        if last in _TRAILING:
            candidate = candidate[:-1]
        elif last == ")" and candidate.count(")") > candidate.count("("):
            candidate = candidate[:-1]
        else:
            break
    return candidate


def _escape_plain(segment: str, marks: frozenset[str], *, link_follows: bool) -> str:
    out: list[str] = []
    for index, char in enumerate(segment):
        following = segment[index + 1] if index + 1 < len(segment) else ""
        at_end = index + 1 == len(segment)
        if char == "\\":
            out.append("\\\\")
        elif char == "<":
            out.append("&lt;")
        elif char in marks:
            out.append("\\" + char)
        elif char == "]" and ((following != "" and following in "([:") or (at_end and link_follows)):
            out.append("\\]")
        elif char == "[" and link_follows:
            out.append("\\[")
        elif char == "!" and at_end and link_follows:
            out.append("\\!")
        else:
            out.append(char)
    return "".join(out)


def _link(url: str, marks: frozenset[str]) -> str:
    target = "".join(_TARGET_ESCAPES.get(char, char) for char in url)
    return f"[{_escape_plain(url, marks, link_follows=False)}]({target})"


def escape_line(line: str, marks: frozenset[str]) -> str:
    """One line of plain text as markdown that shows it as written (URLs as links to themselves)."""
    line = line.replace("\t", " ").lstrip(" \u00a0")
    pieces: list[str] = []
    position = 0
    for match in _URL.finditer(line):
        url = _url_end(match.group(0))
        if not url.split("://", 1)[1]:
            continue  # a scheme and nothing else: plain text
        before = line[position:match.start()]
        pieces.append(_escape_plain(before, marks, link_follows=True))
        pieces.append(_link(url, marks))
        position = match.start() + len(url)
    pieces.append(_escape_plain(line[position:], marks, link_follows=False))
    escaped = "".join(pieces)
    start = _LINE_START.match(escaped)
    if start and not escaped.startswith("\\"):
        token = start.group(1)
        escaped = escaped[: len(token) - 1] + "\\" + escaped[len(token) - 1:]
    return escaped


def escape_text(text: str, marks: frozenset[str] | None = None) -> str:
    """Plain (multi-line) text as markdown that shows it as written; ``marks`` defaults to the
    paired marks of ``text`` itself."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    marks = pair_marks([text]) if marks is None else marks
    return "\n".join(escape_line(line, marks) for line in lines)


def notification_markdown(subject: str | None, body: str, *, line_break: str = "\n") -> str:
    """The subject in bold, a blank line, then the body's lines, all escaped; runs of blank lines
    become one. ``line_break`` is the client's: WeCom breaks lines on ``\\n``, DingTalk documents
    ``"  \\n  "`` (a hard break as markdown has it)."""
    subject = " ".join((subject or "").split())
    marks = pair_marks([subject, body])
    lines: list[str] = []
    if subject:
        lines += ["**" + escape_line(subject, marks | {"*"}) + "**", ""]
    for line in escape_text(body.strip(), marks).split("\n"):
        if line.strip() or (lines and lines[-1] != ""):
            lines.append(line if line.strip() else "")
    while lines and lines[-1] == "":
        lines.pop()
    return line_break.join(lines)


def plain_title(subject: str | None, *, fallback: str = "", max_chars: int = 64) -> str:
    """A one-line title of at most ``max_chars`` characters (DingTalk shows it in the conversation
    list and the push notification, as plain text)."""
    title = " ".join((subject or "").split()) or fallback
    if len(title) > max_chars:
        title = title[: max_chars - 1] + "…"
    return title
