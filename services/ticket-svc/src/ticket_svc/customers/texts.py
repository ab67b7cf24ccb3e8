"""The words of the tasks ticket-svc opens for customer-svc's insights and surveys (pure).

A care or follow-up ticket is read by an agent who did not see the event: its subject and
description say what happened (score and reasons, rating and comment) in the customer's language
when it is one we write (zh-CN or English), since the agent serves that customer in it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from helpdesk_common.text import one_line

SUBJECT_MAX = 500
#: reasons named in a care ticket's subject (all of them are in the description)
SUBJECT_REASONS = 2


def language_of(tag: str | None) -> str:
    """``zh-CN`` for any Chinese tag (zh, zh-CN, zh-Hans, zh_TW ...), else ``en``."""
    return "zh-CN" if tag and tag.replace("_", "-").lower().split("-")[0] == "zh" else "en"


def _reason_text(reason: Any, language: str) -> str:
    return one_line(reason.zh_cn if language == "zh-CN" else reason.en) or reason.factor


def _cut(subject: str) -> str:
    subject = one_line(subject)
    return subject if len(subject) <= SUBJECT_MAX else subject[: SUBJECT_MAX - 1] + "…"


def care_ticket(*, score: int, reasons: Sequence[Any], language: str) -> tuple[str, str]:
    """(subject, description) of a care ticket: the score and the top reasons, largest first."""
    ranked = sorted(reasons, key=lambda r: -r.points)
    top = [_reason_text(r, language) for r in ranked[:SUBJECT_REASONS]]
    lines = [f"- {_reason_text(r, language)} (+{r.points})" for r in ranked]
    if language == "zh-CN":
        subject = f"客户关怀：流失风险 {score}/100" + (f"（{'；'.join(top)}）" if top else "")
        body = [f"该客户的流失风险评分升至 {score}/100，请主动联系客户。", "", "主要原因："] + (lines or ["- （无）"])
    else:
        subject = f"Customer care: churn risk {score}/100" + (f" ({'; '.join(top)})" if top else "")
        body = [f"This customer's churn risk rose to {score}/100: reach out to them.", "",
                "Reasons:"] + (lines or ["- (none given)"])
    return _cut(subject), "\n".join(body)


def care_ended_note(*, score: int, language: str) -> str:
    """The internal note on the open care ticket when the risk episode ends (no auto-close)."""
    if language == "zh-CN":
        return f"流失风险已降至 {score}/100，本次风险期结束。工单未自动关闭：处理完毕后请手动解决。"
    return (f"Churn risk fell to {score}/100: the risk episode has ended. The ticket stays open; solve it "
            "when the care work is done.")


def follow_up_ticket(*, rating: int, comment: str | None, number: int, subject: str,
                     language: str) -> tuple[str, str]:
    """(subject, description) of the follow-up of a bad CSAT answer on ticket ``number``."""
    if language == "zh-CN":
        head = f"满意度回访：工单 #{number} 评分 {rating}/5 —— {subject}"
        body = [f"客户对工单 #{number} 的满意度评分为 {rating}/5，请跟进。", "",
                "客户留言：" + (comment if comment else "（无）")]
    else:
        head = f"Follow-up: CSAT {rating}/5 on #{number} — {subject}"
        body = [f"The customer rated ticket #{number} {rating}/5: follow up with them.", "",
                "Their comment: " + (comment if comment else "(none)")]
    return _cut(head), "\n".join(body)


def nps_follow_up_ticket(*, score: int, comment: str | None, number: int | None, subject: str | None,
                         language: str) -> tuple[str, str]:
    """(subject, description) of the follow-up of an NPS detractor (0-6), naming the ticket that
    triggered the survey when there is one."""
    if language == "zh-CN":
        head = f"NPS 回访：推荐意愿 {score}/10（贬损者）" + (f" —— 工单 #{number} {subject or ''}" if number else "")
        body = [f"客户在“向朋友或同事推荐我们的可能性”一项中评分 {score}/10（贬损者），请跟进。"]
        if number:
            body.append(f"触发本次调查的工单：#{number}")
        body += ["", "客户留言：" + (comment if comment else "（无）")]
    else:
        head = f"Follow-up: NPS {score}/10 (detractor)" + (f" after #{number} — {subject or ''}" if number else "")
        body = [f"Asked how likely they are to recommend us, the customer answered {score}/10 (a detractor): "
                "follow up with them."]
        if number:
            body.append(f"The survey followed ticket #{number}.")
        body += ["", "Their comment: " + (comment if comment else "(none)")]
    return _cut(head), "\n".join(body)
