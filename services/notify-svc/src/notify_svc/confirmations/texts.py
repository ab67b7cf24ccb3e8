"""The words of a confirmation request, in zh-CN and English (pure).

Built in rather than admin-edited templates for the reason survey invitations are: the message's
one job is to carry the signed link and say how to answer, and an edited template that lost the
link or the reply word would leave the step to its timeout. The subject carries ``[#<number>]``
and the ticket's subject, so an e-mail answer threads back onto the ticket, where ticket-svc
reads "确认" / "confirm" as the confirmation and anything else as "not resolved".
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import UTC, datetime

from helpdesk_common.text import one_line

from ..surveys.texts import language_of, quote_subject

__all__ = ["Request", "language_of", "request"]


@dataclass(frozen=True, slots=True)
class Request:
    subject: str
    body_text: str
    body_html: str


def _parts(language: str, *, name: str, number: int | None, subject: str,
           expires: str) -> tuple[str, str, str, list[str], str]:
    """(subject line, greeting, the paragraph before the choices, the choices, the line after the link)."""
    tag = f"[#{number}]" if number is not None else ""
    if language == "zh-CN":
        about = (f"我们认为您的工单 #{number}「{subject}」已经解决，请您确认：" if number is not None
                 else f"我们认为您的请求「{subject}」已经解决，请您确认：")
        return (" ".join(p for p in (tag, f"请确认问题是否已解决：{subject}" if subject else "请确认问题是否已解决") if p),
                f"{name}，您好：" if name else "您好：", about,
                ["如已解决：直接回复“确认”，或打开下面的链接确认；",
                 "如仍未解决：回复说明仍存在的问题，或打开链接选择“未解决”。"],
                f"请在 {expires} 前答复，链接在此之前有效。")
    about = (f"We believe your request #{number} \"{subject}\" is resolved. Please let us know:" if number is not None
             else f"We believe your request \"{subject}\" is resolved. Please let us know:")
    return (" ".join(p for p in (tag, f"Please confirm your request is resolved: {subject}" if subject
                                 else "Please confirm your request is resolved") if p),
            f"Hello {name}," if name else "Hello,", about,
            ["Resolved? Reply \"confirm\" to this message, or open the link below to confirm.",
             "Not resolved? Reply and tell us what is still wrong, or open the link and choose \"Not resolved\"."],
            f"Please answer by {expires}; the link works until then.")


def request(*, language: str | None, link: str, expires_at: datetime, name: str | None = None,
            number: int | None = None, subject: str | None = None) -> Request:
    """The subject, text and HTML of a request to confirm a resolution."""
    lang = language_of(language)
    expires = expires_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    title, greeting, about, choices, after = _parts(lang, name=one_line(name or ""), number=number,
                                                    subject=quote_subject(subject), expires=expires)
    text = "\n\n".join([greeting, about, "\n".join(f"- {c}" for c in choices), link, after]) + "\n"
    button = "确认或反馈未解决" if lang == "zh-CN" else "Confirm, or tell us it is not resolved"
    escaped = html.escape(link, quote=True)
    body_html = (f'<!DOCTYPE html><html lang="{lang}"><head><meta charset="utf-8"></head><body>'
                 f"<p>{html.escape(greeting)}</p><p>{html.escape(about)}</p>"
                 f"<ul>{''.join(f'<li>{html.escape(c)}</li>' for c in choices)}</ul>"
                 f'<p><a href="{escaped}">{html.escape(button)}</a></p>'
                 f'<p style="font-size:small">{escaped}</p>'
                 f"<p>{html.escape(after)}</p></body></html>")
    return Request(subject=title, body_text=text, body_html=body_html)
