"""The confirmation page a customer opens from the link: one small self-contained HTML document
(pure).

It has to work in whatever browser a mail or chat app opens, with no script and no external
asset: one inline style allowed by its hash in the Content-Security-Policy, and one
``<form method="post">`` back to the same URL with two submit buttons named ``answer``
(``confirm`` / ``reject``) and an optional ``comment``. Nothing changes on GET, so a mail
scanner that follows the link answers nothing. Every text from elsewhere (the subject) is escaped.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from helpdesk_common import link_pages
from helpdesk_common.events import STEP_COMMENT_MAX_CHARS

STYLE = (
    "body{font-family:system-ui,-apple-system,'PingFang SC','Microsoft YaHei',sans-serif;margin:0;background:#f5f6f8;"
    "color:#1f2328}main{max-width:36rem;margin:2rem auto;background:#fff;padding:1.5rem;border-radius:8px}"
    "h1{font-size:1.25rem}.hint{color:#59636e;font-size:.9rem}textarea{width:100%;box-sizing:border-box;"
    "min-height:5rem}.buttons{display:flex;gap:.8rem;flex-wrap:wrap;margin-top:1rem}button{padding:.6rem 1.2rem;"
    "font-size:1rem;border-radius:6px;border:1px solid #c9ced6}button.yes{background:#1a7f37;color:#fff;"
    "border-color:#1a7f37}.error{color:#b42318}"
)
#: every answer of the public routes (``link_pages.security_headers``: no Referer, no cache, no
#: index, no frame, nothing loaded but this style)
SECURITY_HEADERS = link_pages.security_headers(STYLE)

WORDS = {
    "en": {
        "title": "Is your request resolved?",
        "ticket": "Request #{number}: {subject}",
        "intro": "We believe your request has been resolved. Please let us know whether it is.",
        "comment": "Anything you would like to add? (optional)",
        "confirm": "Yes, it is resolved",
        "reject": "No, it is not resolved",
        "confirmed": "Thank you for confirming. Your request is now closed.",
        "rejected": "Thank you. We have reopened your request and will get back to you.",
        "answered": "This request has already been answered. Thank you!",
        "expired": "This link has expired. If you still need help, simply reply to our message.",
        "invalid": "This link is not valid.",
        "choose": "Please choose one of the two answers.",
        "too_long": "The comment is too long.",
    },
    "zh-CN": {
        "title": "您的问题解决了吗？",
        "ticket": "工单 #{number}：{subject}",
        "intro": "我们认为您的问题已经解决，请告诉我们是否如此。",
        "comment": "还有什么想补充的吗？（选填）",
        "confirm": "是的，已解决",
        "reject": "没有，还未解决",
        "confirmed": "感谢您的确认，您的工单已关闭。",
        "rejected": "谢谢，我们已重新打开您的工单，会尽快回复您。",
        "answered": "此工单已经确认过了，谢谢！",
        "expired": "此链接已过期。如仍需帮助，请直接回复我们的消息。",
        "invalid": "此链接无效。",
        "choose": "请选择一个答案。",
        "too_long": "补充说明太长了。",
    },
}


@dataclass(frozen=True, slots=True)
class View:
    language: str
    number: int | None
    subject: str | None
    error: str | None = None
    comment: str = ""


def words(language: str) -> dict[str, str]:
    return WORDS.get(language, WORDS["en"])


def _html(language: str, body: str) -> str:
    return link_pages.document(language=language, title=words(language)["title"], style=STYLE, body=body)


def ticket_line(language: str, number: int | None, subject: str | None) -> str:
    return words(language)["ticket"].format(number="" if number is None else number, subject=subject or "")


def form(view: View) -> str:
    """The question with the ticket's number and subject and the two answers."""
    w = words(view.language)
    error = f'<p class="error" role="alert">{escape(view.error)}</p>' if view.error else ""
    return _html(view.language, (
        f"<h1>{escape(w['title'])}</h1>"
        f'<p class="hint">{escape(ticket_line(view.language, view.number, view.subject))}</p>'
        f"<p>{escape(w['intro'])}</p>{error}"
        '<form method="post" accept-charset="utf-8">'
        f'<label for="comment">{escape(w["comment"])}</label>'
        f'<textarea id="comment" name="comment" maxlength="{STEP_COMMENT_MAX_CHARS}">{escape(view.comment)}</textarea>'
        '<div class="buttons">'
        f'<button class="yes" type="submit" name="answer" value="confirm">{escape(w["confirm"])}</button>'
        f'<button type="submit" name="answer" value="reject">{escape(w["reject"])}</button>'
        "</div></form>"))


def message(language: str, key: str, *, number: int | None = None, subject: str | None = None) -> str:
    """A page that only says something: thanks, already answered, expired, not valid."""
    line = (f'<p class="hint">{escape(ticket_line(language, number, subject))}</p>'
            if subject is not None else "")
    return _html(language, f"<h1>{escape(words(language)[key])}</h1>{line}")
