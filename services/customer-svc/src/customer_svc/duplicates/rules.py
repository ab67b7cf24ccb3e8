"""Duplicate reasons and their confidence (pure).

Each reason is a key two customers share. The confidence says how often such a pair turned out
to be one person: a WeChat unionid is one person's across every app of a company, a phone number
nearly so (shared family or office numbers exist), an e-mail local part with the same name is
likely (``zhangwei@qq.com`` and ``zhangwei@163.com``), a name within one organisation the
weakest (two 张伟 in one company happen). Several reasons together are stronger than any one:
``1 − Π(1 − c)``, as if each were independent evidence."""

from __future__ import annotations

import math
from collections.abc import Iterable
from fractions import Fraction

#: reason → confidence, strongest first: the order of the list across the base
REASONS: dict[str, Fraction] = {
    "same_wechat_unionid": Fraction(95, 100),
    "same_phone": Fraction(90, 100),
    "same_email_local_part_and_name": Fraction(75, 100),
    "same_name_and_organization": Fraction(60, 100),
}
RANK = {reason: index for index, reason in enumerate(REASONS)}
#: digits of a phone number compared (the national significant part of most numbers): an E.164 key
#: and a legacy key without the country code still meet
PHONE_DIGITS = 10
#: shorter numbers (extensions, service numbers) are not evidence of one person
PHONE_MIN_DIGITS = 7


def combined(reasons: Iterable[str]) -> float:
    """The confidence of a pair from its distinct reasons, two decimals rounded down: evidence
    never adds up to certainty (three reasons give 0.99, not 1.0)."""
    doubt = Fraction(1)
    for reason in set(reasons):
        doubt *= 1 - REASONS[reason]
    return math.floor((1 - doubt) * 100) / 100


def strongest(reasons: Iterable[str]) -> str:
    return min(reasons, key=RANK.__getitem__)


def ordered_pair(first, second):
    """A pair as ``duplicate_dismissals`` stores it (``first_id < second_id``)."""
    return (first, second) if first < second else (second, first)
