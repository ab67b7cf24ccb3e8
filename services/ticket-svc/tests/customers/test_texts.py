"""The words of care and follow-up tickets (pure)."""

import pytest

from helpdesk_common.events import ChurnReason
from ticket_svc.customers import texts
from ticket_svc.customers.service import bad_csat, detractor


@pytest.mark.parametrize(("tag", "language"), [
    ("zh-CN", "zh-CN"), ("zh", "zh-CN"), ("zh_TW", "zh-CN"), ("ZH-hans", "zh-CN"),
    ("en", "en"), ("en-GB", "en"), ("fr", "en"), (None, "en"), ("", "en"), ("zhx", "en"),
])
def test_language_of(tag, language):
    assert texts.language_of(tag) == language


REASONS = [ChurnReason(factor="sla_breaches", points=20, en="2 tickets breached", zh_cn="2个工单超时"),
           ChurnReason(factor="order_overdue", points=50, en="No order for 200 days", zh_cn="已200天未下单"),
           ChurnReason(factor="bad_csat", points=5, en="A bad rating", zh_cn="差评")]


def test_a_care_ticket_names_the_score_and_the_top_reasons_largest_first():
    subject, body = texts.care_ticket(score=75, reasons=REASONS, language="en")
    assert subject == "Customer care: churn risk 75/100 (No order for 200 days; 2 tickets breached)"
    assert body.splitlines()[-3:] == ["- No order for 200 days (+50)", "- 2 tickets breached (+20)",
                                      "- A bad rating (+5)"]
    subject, body = texts.care_ticket(score=75, reasons=REASONS, language="zh-CN")
    assert subject == "客户关怀：流失风险 75/100（已200天未下单；2个工单超时）"
    assert "- 差评 (+5)" in body
    assert texts.care_ticket(score=70, reasons=[], language="en")[0] == "Customer care: churn risk 70/100"


def test_subjects_stay_one_bounded_line():
    long = [ChurnReason(factor="x", points=1, en="line\nbreak\u202e" + "w" * 480, zh_cn="z")] * 2
    subject, _ = texts.care_ticket(score=71, reasons=long, language="en")
    assert "\n" not in subject and "\u202e" not in subject and len(subject) == texts.SUBJECT_MAX
    subject, body = texts.follow_up_ticket(rating=1, comment=None, number=7, subject="s" * 600, language="en")
    assert len(subject) == texts.SUBJECT_MAX and subject.startswith("Follow-up: CSAT 1/5 on #7 — ")
    assert body.endswith("Their comment: (none)")


@pytest.mark.parametrize(("kind", "rating", "ticket", "expected"), [
    ("csat", 1, "t", True), ("csat", 2, "t", True), ("csat", 3, "t", False), ("csat", 5, "t", False),
    ("csat", 1, None, False), ("nps", 1, "t", False), ("csat", None, "t", False),
])
def test_which_answers_ask_for_a_follow_up(kind, rating, ticket, expected):
    assert bad_csat(kind, rating, ticket) is expected


@pytest.mark.parametrize(("kind", "score", "expected"), [
    ("nps", 0, True), ("nps", 3, True), ("nps", 6, True), ("nps", 7, False), ("nps", 10, False),
    ("nps", None, False), ("csat", 1, False),
])
def test_which_nps_answers_ask_for_a_follow_up(kind, score, expected):
    assert detractor(kind, score) is expected


def test_an_nps_follow_up_names_the_score_and_the_ticket_when_there_is_one():
    subject, body = texts.nps_follow_up_ticket(score=3, comment="太慢了", number=12, subject="发票问题",
                                               language="zh-CN")
    assert subject == "NPS 回访：推荐意愿 3/10（贬损者） —— 工单 #12 发票问题"
    assert "3/10" in body and "#12" in body and body.endswith("客户留言：太慢了")
    subject, body = texts.nps_follow_up_ticket(score=0, comment=None, number=None, subject=None, language="en")
    assert subject == "Follow-up: NPS 0/10 (detractor)"
    assert "#" not in body and body.endswith("Their comment: (none)")
    subject, _ = texts.nps_follow_up_ticket(score=6, comment=None, number=7, subject="s\n" * 400, language="en")
    assert len(subject) == texts.SUBJECT_MAX and "\n" not in subject and subject.startswith("Follow-up: NPS 6/10")
