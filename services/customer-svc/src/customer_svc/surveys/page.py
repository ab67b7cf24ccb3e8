"""The survey's answer page, rendered as one small self-contained HTML document (pure).

It must work in any browser a customer opens a mail in, including ones without JavaScript and
behind strict mail proxies: no script, no external asset, one inline style allowed by its hash
in the Content-Security-Policy, a plain ``<form method="post">`` back to the same URL with the
field names ``rating`` (CSAT, 1-5) or ``score`` (NPS, 0-10) and ``comment``. Every text that
comes from elsewhere (the ticket's subject) is escaped.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from helpdesk_common import link_pages
from helpdesk_common.events import SURVEY_COMMENT_MAX_CHARS

_STYLE = (
    "body{font-family:system-ui,-apple-system,'PingFang SC','Microsoft YaHei',sans-serif;margin:0;"
    "background:#f5f6f8;color:#1f2328}main{max-width:36rem;margin:2rem auto;background:#fff;padding:1.5rem;"
    "border-radius:8px}h1{font-size:1.25rem}fieldset{border:0;padding:0;margin:1rem 0}"
    ".scale{display:flex;flex-wrap:wrap;gap:.4rem}.scale label{border:1px solid #c9ced6;border-radius:6px;"
    "padding:.4rem .6rem;cursor:pointer}textarea{width:100%;box-sizing:border-box;min-height:6rem}"
    "button{margin-top:1rem;padding:.6rem 1.4rem;font-size:1rem}.hint{color:#59636e;font-size:.9rem}"
    ".error{color:#b42318}"
)
#: headers of every answer of the public survey routes: the token is in the URL, so nothing may
#: leak it onwards (Referer), keep it (caches, search engines) or frame the page (clickjacking an
#: answer) (``link_pages``, shared with ticket-svc's confirmation link)
SECURITY_HEADERS = link_pages.security_headers(_STYLE)

_TEXT = {
    "en": {
        "csat_question": "How satisfied are you with how we handled your request?",
        "nps_question": "How likely are you to recommend us to a friend or colleague?",
        "ticket": "Request #{number}: {subject}",
        "ticket_no_number": "Request: {subject}",
        "csat_labels": ["Very unsatisfied", "Unsatisfied", "Neutral", "Satisfied", "Very satisfied"],
        "nps_hint": "0 = not at all likely, 10 = extremely likely",
        "comment": "Anything you would like to tell us? (optional)",
        "submit": "Send",
        "title": "Your feedback",
        "thanks": "Thank you for your feedback.",
        "answered": "This survey has already been answered. Thank you!",
        "expired": "This survey link has expired.",
        "invalid": "This survey link is not valid.",
        "choose": "Please choose a rating.",
        "too_long": "The comment is too long.",
    },
    "zh-CN": {
        "csat_question": "您对本次服务满意吗？",
        "nps_question": "您向朋友或同事推荐我们的可能性有多大？",
        "ticket": "工单 #{number}：{subject}",
        "ticket_no_number": "工单：{subject}",
        "csat_labels": ["非常不满意", "不满意", "一般", "满意", "非常满意"],
        "nps_hint": "0 = 完全不可能，10 = 极有可能",
        "comment": "还有什么想告诉我们的吗？（选填）",
        "submit": "提交",
        "title": "您的反馈",
        "thanks": "感谢您的反馈！",
        "answered": "此问卷已经提交过了，感谢您！",
        "expired": "此问卷链接已过期。",
        "invalid": "此问卷链接无效。",
        "choose": "请选择一个评分。",
        "too_long": "留言太长了。",
    },
}


@dataclass(frozen=True, slots=True)
class FormView:
    kind: str
    language: str
    number: int | None = None
    subject: str | None = None
    error: str | None = None
    comment: str = ""


def text(language: str, key: str) -> str:
    return _TEXT.get(language, _TEXT["en"])[key]  # type: ignore[return-value]


def _document(language: str, title: str, body: str) -> str:
    return link_pages.document(language=language, title=title, style=_STYLE, body=body)


def form(view: FormView) -> str:
    t = _TEXT.get(view.language, _TEXT["en"])
    parts = []
    if view.kind == "csat":
        parts.append(f"<h1>{escape(t['csat_question'])}</h1>")  # type: ignore[arg-type]
        if view.subject:
            line = (t["ticket"].format(number=view.number, subject=view.subject) if view.number is not None  # type: ignore[union-attr]
                    else t["ticket_no_number"].format(subject=view.subject))  # type: ignore[union-attr]
            parts.append(f'<p class="hint">{escape(line)}</p>')
        name, choices = "rating", [(str(i), f"{i} {label}") for i, label in enumerate(t["csat_labels"], 1)]
    else:
        parts.append(f"<h1>{escape(t['nps_question'])}</h1>")  # type: ignore[arg-type]
        parts.append(f'<p class="hint">{escape(t["nps_hint"])}</p>')  # type: ignore[arg-type]
        name, choices = "score", [(str(i), str(i)) for i in range(11)]
    if view.error:
        parts.append(f'<p class="error" role="alert">{escape(view.error)}</p>')
    radios = "".join(f'<label><input type="radio" name="{name}" value="{value}" required> {escape(label)}</label>'
                     for value, label in choices)
    parts.append(
        '<form method="post" accept-charset="utf-8">'
        f'<fieldset class="scale">{radios}</fieldset>'
        f'<label for="comment">{escape(t["comment"])}</label>'  # type: ignore[arg-type]
        f'<textarea id="comment" name="comment" maxlength="{SURVEY_COMMENT_MAX_CHARS}">{escape(view.comment)}</textarea>'
        f'<button type="submit">{escape(t["submit"])}</button></form>')  # type: ignore[arg-type]
    return _document(view.language, t["title"], "".join(parts))  # type: ignore[arg-type]


def message(language: str, key: str) -> str:
    """A page that only says something: thanks, already answered, expired, not valid."""
    t = _TEXT.get(language, _TEXT["en"])
    return _document(language, t["title"], f"<h1>{escape(t[key])}</h1>")  # type: ignore[arg-type]
