"""The words of a survey invitation, in zh-CN and English (pure).

Built in rather than admin-edited templates: the message's one job is to carry the signed link,
and an edited template that dropped or mangled ``{link}`` would silently end the survey loop.
The link is inserted as the full URL in the text part and as an escaped ``href`` in the HTML part,
because mail clients and WeChat make a bare https URL clickable but not a relative one.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import UTC, datetime

from helpdesk_common.text import one_line

LANGUAGES = ("en", "zh-CN")
#: a ticket subject is quoted in the invitation; a long one is cut so the question stays visible
SUBJECT_QUOTE_MAX = 120


@dataclass(frozen=True, slots=True)
class Invitation:
    subject: str
    body_text: str
    body_html: str


def language_of(tag: str | None) -> str:
    """``zh-CN`` for any Chinese tag (zh, zh-CN, zh-Hans, zh_TW ...), else ``en``."""
    return "zh-CN" if tag and tag.replace("_", "-").lower().split("-")[0] == "zh" else "en"


def quote_subject(subject: str | None) -> str:
    """A ticket subject as a message quotes it: one line, cut so what follows stays visible."""
    text = one_line(subject or "")
    return text if len(text) <= SUBJECT_QUOTE_MAX else text[: SUBJECT_QUOTE_MAX - 1] + "…"


def _expiry(expires_at: datetime) -> str:
    return expires_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _lines(kind: str, language: str, *, name: str, number: int | None, subject: str,
           expires: str) -> tuple[str, str, list[str], str]:
    """(subject line, greeting, paragraphs before the link, line after it)."""
    tag = f" [#{number}]" if number is not None else ""
    if language == "zh-CN":
        greeting = f"{name}，您好：" if name else "您好："
        after = f"该链接仅可使用一次，有效期至 {expires}。"
        if kind == "csat":
            about = f"您的工单 #{number}「{subject}」已解决。" if number is not None else "您的工单已解决。"
            return (f"您对本次服务满意吗？{tag.strip()}", greeting,
                    [about, "请为本次服务打分（1 = 非常不满意，5 = 非常满意），也欢迎留下您的意见："], after)
        return ("您向朋友推荐我们的可能性有多大？", greeting,
                ["您有多大可能向朋友或同事推荐我们？请按 0-10 打分（0 = 完全不可能，10 = 非常可能），也欢迎留下您的意见："],
                after)
    greeting = f"Hello {name}," if name else "Hello,"
    after = f"The link works once and expires on {expires}."
    if kind == "csat":
        about = (f"Your request #{number} \"{subject}\" has been solved." if number is not None
                 else "Your request has been solved.")
        return (f"How did we do?{tag}", greeting,
                [about, "How did we do? Rate our service from 1 (very dissatisfied) to 5 (very satisfied) "
                        "and tell us what we could do better:"], after)
    return ("How likely are you to recommend us?", greeting,
            ["How likely are you to recommend us to a friend or colleague, 0-10 (0 = not at all likely, "
             "10 = extremely likely)? Tell us why, too:"], after)


def invitation(*, kind: str, language: str | None, link: str, expires_at: datetime, name: str | None = None,
               number: int | None = None, subject: str | None = None) -> Invitation:
    """The subject, text and HTML of a CSAT (``kind`` ``csat``) or NPS (``nps``) invitation."""
    lang = language_of(language)
    title, greeting, before, after = _lines(kind, lang, name=one_line(name or ""), number=number,
                                             subject=quote_subject(subject), expires=_expiry(expires_at))
    text = "\n\n".join([greeting, *before, link, after]) + "\n"
    button = "去评价" if lang == "zh-CN" else ("Rate our service" if kind == "csat" else "Answer the survey")
    escaped = html.escape(link, quote=True)
    paragraphs = "".join(f"<p>{html.escape(p)}</p>" for p in (greeting, *before))
    body_html = (f'<!DOCTYPE html><html lang="{lang}"><head><meta charset="utf-8"></head><body>{paragraphs}'
                 f'<p><a href="{escaped}">{html.escape(button)}</a></p>'
                 f'<p style="font-size:small">{escaped}</p>'
                 f"<p>{html.escape(after)}</p></body></html>")
    return Invitation(subject=title, body_text=text, body_html=body_html)
