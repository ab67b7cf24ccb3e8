"""Remove quoted history and signatures from replies, so a ticket shows what was newly said.

Mail clients append the whole conversation to every reply. Stored as-is, each message of a
ticket repeats all earlier ones and agents cannot see the new text. The markers recognised are
the ones the big clients actually write, in English and Chinese:

* Gmail / Apple Mail / Thunderbird: ``On <date>, <name> wrote:`` (possibly wrapped over
  lines), Chinese ``<name> 于2026年1月2日周五 10:00写道：`` and Foxmail's ``在 2026年1月2日 ... 写道：``;
* Outlook: ``-----Original Message-----`` / ``-----原始邮件-----`` and the header block
  ``From: / Sent: / To: / Subject:`` (``发件人: / 发送时间: / 收件人: / 主题:``), often after a
  line of underscores;
* Foxmail / QQ Mail: ``------------------ Original ------------------`` (or ``原始邮件``);
* lines starting with ``>`` (removed line by line, so inline answers between quotes survive);
* a signature after the ``-- `` delimiter.

Forwarded mail is left alone: when someone forwards a conversation to open a ticket, the
forwarded content *is* the request.
"""

from __future__ import annotations

import re

_FORWARD_SUBJECT = re.compile(r"^\s*(?:fwd?|wg|tr|rv|转发|轉寄|转寄|轉發)\s*[:：]", re.IGNORECASE)
_FORWARD_MARKER = re.compile(
    r"^\s*(?:-{2,}\s*(?:forwarded message|original message follows|转发的邮件|转发邮件信息|轉寄的郵件|轉寄郵件)\s*-{2,}"
    r"|begin forwarded message:|-{2,}\s*forwarded by\b.*)\s*$",
    re.IGNORECASE,
)
_ORIGINAL = re.compile(
    r"^\s*-{2,}\s*(?:original message|original|原始邮件|原始郵件|邮件原件|原始信件)\s*-{2,}\s*$", re.IGNORECASE
)
_HEADER_FROM = re.compile(r"^\s*\*?\s*(?:from|发件人|寄件者|寄件人)\s*\*?\s*[:：]", re.IGNORECASE)
_HEADER_DATE = re.compile(
    r"^\s*\*?\s*(?:sent|date|发送时间|日期|时间|寄件日期|傳送時間|時間)\s*\*?\s*[:：]", re.IGNORECASE
)
_HEADER_OTHER = re.compile(r"^\s*\*?\s*(?:to|cc|subject|收件人|抄送|主题|主旨|副本)\s*\*?\s*[:：]", re.IGNORECASE)
_SEPARATOR = re.compile(r"^\s*(?:_{5,}|-{5,}|={5,})\s*$")
_WROTE_EN = re.compile(r"\bwrote\s*:\s*$", re.IGNORECASE)
_WROTE_ZH = re.compile(r"(?:写道|寫道)\s*[:：]\s*$")
_SIGNATURE = re.compile(r"^--\s?$")


def _norm(line: str) -> str:
    return line.replace("\xa0", " ").replace("\u3000", " ")


def _quoted(line: str) -> bool:
    return line.lstrip(" ").startswith(">")


def is_forward(subject: str | None, text: str) -> bool:
    """A forward: ``Fwd:`` / ``转发:`` subject, or a forwarded-message marker before any quote."""
    if subject and _FORWARD_SUBJECT.match(subject):
        return True
    lines = text.splitlines()
    for index, line in enumerate(lines):
        if _FORWARD_MARKER.match(_norm(line)):
            return True
        if _reply_marker(lines, index) is not None:
            return False
    return False


def _header_block(lines: list[str], index: int) -> bool:
    """Whether an Outlook-style ``From:`` header block of a quoted message starts here."""
    if not _HEADER_FROM.match(_norm(lines[index])):
        return False
    following = [_norm(line) for line in lines[index + 1:index + 7] if line.strip()]
    return any(_HEADER_DATE.match(line) for line in following) and any(_HEADER_OTHER.match(line) for line in following)


def _attribution(lines: list[str], index: int) -> int | None:
    """Length in lines of a "... wrote:" attribution starting at ``index``, if there is one."""
    line = _norm(lines[index]).strip()
    if not line or _quoted(line) or len(line) > 400:
        return None
    if _WROTE_ZH.search(line):
        return 1
    starts_on = line.lower().startswith("on ")
    joined = line
    for extra in range(3):
        if extra:
            if index + extra >= len(lines) or not lines[index + extra].strip():
                return None
            joined += " " + _norm(lines[index + extra]).strip()
        if _WROTE_EN.search(joined):
            # "On Monday my colleague wrote:" in someone's own text is no attribution: a real one
            # is followed by the quote
            following = next((x for x in lines[index + extra + 1:index + extra + 4] if x.strip()), "")
            return extra + 1 if _quoted(following) else None
        if not starts_on:
            return None
    return None


def _reply_marker(lines: list[str], index: int) -> tuple[str, int] | None:
    """The kind and length of a quoted-history marker at ``index`` (signature not included)."""
    line = _norm(lines[index])
    if _ORIGINAL.match(line):
        return "original", 1
    if _header_block(lines, index):
        return "header", 1
    length = _attribution(lines, index)
    if length is not None:
        return "attribution", length
    return None


def _interleaving(lines: list[str]) -> list[bool]:
    """For each line: does the text from there on answer between quoted lines (inline replies)?

    Computed backwards in one pass, so that many attributions cost no more than one; the scan
    of a position stops at the next signature or history marker.
    """
    result = [False] * (len(lines) + 1)
    unquoted_after = False
    for index in range(len(lines) - 1, -1, -1):
        line = lines[index]
        if _SIGNATURE.match(line) or _reply_marker(lines, index) is not None:
            unquoted_after = False
        elif _quoted(line):
            result[index] = result[index + 1] or unquoted_after
        else:
            result[index] = result[index + 1]
            unquoted_after = unquoted_after or bool(line.strip())
    return result


def strip_quoted(text: str) -> str:
    """The new part of a reply: cut at the first history marker, drop ``>`` lines and signature.

    Falls back to the whole text when nothing would be left, so a message is never emptied by
    a misread marker.
    """
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    interleaved = _interleaving(lines)
    keep: list[str] = []
    has_content = False
    index = 0
    while index < len(lines):
        line = lines[index]
        if _SIGNATURE.match(line) and has_content:
            break
        marker = _reply_marker(lines, index)
        if marker is not None:
            kind, length = marker
            if kind == "attribution" and interleaved[min(index + length, len(lines))]:
                index += length
                continue
            if kind == "header":
                while keep and (not keep[-1].strip() or _SEPARATOR.match(_norm(keep[-1]))):
                    keep.pop()
            break
        if not _quoted(line):
            keep.append(line)
            has_content = has_content or bool(line.strip())
        index += 1
    result = _tidy(keep)
    return result or _tidy(lines)


def _tidy(lines: list[str]) -> str:
    """Trim trailing spaces, edge blank lines and runs of more than one blank line."""
    out: list[str] = []
    for line in lines:
        line = line.rstrip()
        if not line and (not out or not out[-1]):
            continue
        out.append(line)
    while out and not out[-1]:
        out.pop()
    return "\n".join(out)
